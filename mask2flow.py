"""
Mask2Flow-TSE: two-stage target speaker extraction with masking and flow matching.
Moon, Choi, Park, Kim, Shim, "Mask2Flow-TSE", arXiv 2603.12837. A from-scratch reference.

Stage 1, masking: a small conv + BiLSTM net, conditioned on a speaker embedding of the
enrollment, predicts a mask M in [0, 1]; x0 = M * Y is a coarse, over-suppressed estimate.
Stage 2, flow matching: a DiT learns the constant velocity of the straight path from x0 to the
clean target x1, so one Euler step x1 ~= x0 + v(x0, 0) is enough at inference.

Tensor dimensions: B batch, L samples, F frequency bins (n_fft/2 + 1), T frames, C channels,
N tokens, D transformer width, E speaker embedding size, p frames per token.
Spectrograms are compressed complex STFTs stored as (B, 2, F, T): real and imaginary parts.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# signal front end: STFT, its exact inverse, magnitude compression


def hann(n_fft, device=None):
    """Periodic Hann window, w[n] = 0.5 - 0.5 cos(2 pi n / N) (the STFT convention)."""
    n = torch.arange(n_fft, device=device, dtype=torch.float32)
    return 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)


def stft(x, n_fft, hop):
    """(B, L) waveform -> (B, 2, F, T) with T = 1 + L // hop centred frames (zero padding)."""
    x = F.pad(x, (n_fft // 2, n_fft // 2))
    frames = x.unfold(-1, n_fft, hop)  # (B, T, n_fft)
    spec = torch.fft.rfft(frames * hann(n_fft, x.device), dim=-1)  # (B, T, F)
    return torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, F, T)


def istft(X, n_fft, hop, length):
    """Inverse of stft: windowed overlap-add divided by the summed squared window."""
    B, _, _, T = X.shape
    w = hann(n_fft, X.device)
    spec = torch.complex(X[:, 0], X[:, 1]).transpose(1, 2)  # (B, T, F)
    frames = torch.fft.irfft(spec, n=n_fft, dim=-1) * w  # (B, T, n_fft)
    padded = n_fft + hop * (T - 1)
    fold = lambda z: F.fold(z.transpose(1, 2), (1, padded), (1, n_fft), stride=(1, hop)).view(-1, padded)
    y = fold(frames)  # (B, padded)
    wsum = fold((w * w).expand(1, T, n_fft))  # (1, padded)
    y = y / wsum.clamp_min(1e-8)
    return y[:, n_fft // 2: n_fft // 2 + length]


def magnitude(X, eps=1e-8):
    """|X| of a (B, 2, F, T) spectrogram -> (B, 1, F, T), at least eps (finite gradients at 0)."""
    return X.pow(2).sum(1, keepdim=True).clamp_min(eps * eps).sqrt()


def compress(X, alpha, beta, eps=1e-8):
    """c(X) = beta |X|^alpha e^{j angle X}: evens out loud and quiet bins (SGMSE convention)."""
    return beta * magnitude(X, eps) ** (alpha - 1) * X


def decompress(Xc, alpha, beta, eps=1e-8):
    """Inverse of compress: |X| = (|c| / beta)^(1 / alpha), phase unchanged."""
    mag = magnitude(Xc, eps)
    return (mag / beta) ** (1 / alpha) / mag * Xc


def si_sdr(est, ref, eps=1e-8):
    """Scale-invariant SDR in dB over the last dim: (B, L), (B, L) -> (B,)."""
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    noise = est - proj
    return 10 * torch.log10((proj.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def straight_path(x0, x1, t):
    """The flow's path and its velocity: x_t = (1 - t) x0 + t x1, u_t = d x_t / dt = x1 - x0."""
    return (1 - t) * x0 + t * x1, x1 - x0


def frame_mask(lengths, T, hop):
    """(B,) sample counts -> (B, T) bool, True on frames of the real signal (1 + length // hop)."""
    return torch.arange(T, device=lengths.device) < (1 + lengths // hop)[:, None]


def halved(n, times):
    """Length of an axis after `times` stride-2 convolutions with padding 1: ceil(n / 2) each time."""
    for _ in range(times):
        n = (n + 1) // 2
    return n


def modulate(x, shift, scale):
    """adaLN: x * (1 + scale) + shift, broadcast over tokens. x (B, N, D), shift/scale (B, D)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def timestep_embedding(t, dim, max_period=10000):
    """Sinusoidal embedding of (B,) times in [0, 1] (scaled by 1000 as in DiT) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = 1000 * t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def position_embedding(N, dim, device):
    """Fixed sinusoidal positions of N time tokens -> (1, N, dim); any length works."""
    return timestep_embedding(torch.arange(N, device=device) / 1000, dim)[None]

# -----------------------------------------------------------------------------
# speaker encoder: enrollment -> unit-norm embedding


class SpeakerEncoder(nn.Module):
    """Conv net over the log-magnitude spectrogram + attentive statistics pooling.
    Padded frames are zeroed after every layer and excluded from pooling, so the embedding
    of a zero-padded enrollment equals that of the unpadded one."""

    def __init__(self, cfg):
        super().__init__()
        C, D = cfg.spk_channels, cfg.spk_hidden
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else C, C, 3, stride=(2, 1), padding=1)
                                    for i in range(cfg.spk_layers)])  # stride 2 in frequency only
        self.proj = nn.Conv1d(C * halved(cfg.n_freqs, cfg.spk_layers), D, 1)
        self.attention = nn.Sequential(nn.Conv1d(D, D // 4, 1), nn.Tanh(), nn.Conv1d(D // 4, 1, 1))
        self.out = nn.Linear(2 * D, cfg.spk_dim)

    def forward(self, logmag, mask):
        """logmag (B, 1, F, T), mask (B, T) bool -> (B, E) with ||e|| = 1."""
        m = mask[:, None, None, :].float()  # (B, 1, 1, T)
        h = logmag * m
        for conv in self.convs:
            h = F.relu(conv(h)) * m
        h = h.flatten(1, 2)  # (B, C * F', T)
        h = F.relu(self.proj(h))  # (B, D, T)
        score = self.attention(h).masked_fill(~mask[:, None, :], float("-inf"))
        w = torch.softmax(score, dim=-1)  # (B, 1, T) attention over valid frames
        mu = (w * h).sum(-1)
        std = ((w * h * h).sum(-1) - mu * mu).clamp_min(1e-6).sqrt()
        return F.normalize(self.out(torch.cat([mu, std], dim=-1)), dim=-1)

# -----------------------------------------------------------------------------
# stage 1: the masker


class FiLM(nn.Module):
    """Feature-wise affine from the speaker embedding; zero-initialised, so it starts as identity."""

    def __init__(self, E, C):
        super().__init__()
        self.linear = nn.Linear(E, 2 * C)

    def forward(self, h, spk):
        gain, bias = self.linear(spk).chunk(2, dim=-1)  # (B, C) each
        shape = (h.shape[0], h.shape[1]) + (1,) * (h.dim() - 2)
        return h * (1 + gain.view(shape)) + bias.view(shape)


class Masker(nn.Module):
    """Y (compressed) -> mask in [0, 1]: 2-D convs with FiLM (the first two halve the frequency
    axis), then a BiLSTM over time and a linear layer back to every bin."""

    def __init__(self, cfg):
        super().__init__()
        C, H = cfg.mask_channels, cfg.mask_hidden
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else C, C, 3, stride=(2 if i < 2 else 1, 1),
                                              padding=(1, 2 ** i), dilation=(1, 2 ** i))
                                    for i in range(cfg.mask_layers)])  # F/4 after two layers; dilated in time
        self.norms = nn.ModuleList([nn.GroupNorm(1, C) for _ in range(cfg.mask_layers)])
        self.films = nn.ModuleList([FiLM(cfg.spk_dim, C) for _ in range(cfg.mask_layers)])
        self.acts = nn.ModuleList([nn.PReLU(C) for _ in range(cfg.mask_layers)])
        self.bottleneck = nn.Linear(C * halved(cfg.n_freqs, min(2, cfg.mask_layers)), H)
        self.film = FiLM(cfg.spk_dim, H)
        self.lstm = nn.LSTM(H, H, num_layers=cfg.mask_lstm_layers, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * H, cfg.n_freqs)

    def forward(self, Y, spk):
        """Y (B, 2, F, T), spk (B, E) -> mask (B, 1, F, T)."""
        h = torch.cat([Y, magnitude(Y)], dim=1)  # (B, 3, F, T) real, imag, magnitude
        for conv, norm, film, act in zip(self.convs, self.norms, self.films, self.acts):
            h = act(film(norm(conv(h)), spk))  # (B, C, F, T)
        h = h.flatten(1, 2).transpose(1, 2)  # (B, T, C * F/4)
        h = self.film(self.bottleneck(h).transpose(1, 2), spk).transpose(1, 2)  # (B, T, H)
        h, _ = self.lstm(h)  # (B, T, 2H)
        return torch.sigmoid(self.out(h)).transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)

# -----------------------------------------------------------------------------
# stage 2: the velocity network, a DiT over time tokens


class Attention(nn.Module):
    def __init__(self, D, heads, fast=True):
        super().__init__()
        assert D % heads == 0, f"width {D} must divide into {heads} heads"
        self.heads, self.fast = heads, fast
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, N, d)
        if self.fast:
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # the same thing, written out
            att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
            y = att @ v
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class DiTBlock(nn.Module):
    """Pre-norm transformer block whose norms are modulated by the condition c (adaLN-Zero)."""

    def __init__(self, D, heads, mlp_ratio, fast=True):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(D, heads, fast)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        hidden = int(D * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(D, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, D))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x, c):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        x = x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x


class FinalLayer(nn.Module):
    def __init__(self, D, out):
        super().__init__()
        self.norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(D, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """v(xt, t | Y, e): the channels [xt, Y] are cut into tokens of p frames (all bins),
    conditioned by c = MLP(time embedding) + W e through adaLN-Zero."""

    def __init__(self, cfg):
        super().__init__()
        D, p, Fq = cfg.dit_width, cfg.patch, cfg.n_freqs
        self.p = p
        self.embed = nn.Linear(4 * Fq * p, D)  # one token = p frames of [xt, Y]
        self.t_embedder = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.spk_embedder = nn.Linear(cfg.spk_dim, D)
        self.blocks = nn.ModuleList([DiTBlock(D, cfg.dit_heads, cfg.mlp_ratio, cfg.fast_attention)
                                     for _ in range(cfg.dit_depth)])
        self.final = FinalLayer(D, 2 * Fq * p)

    def forward(self, xt, t, y, spk):
        """xt, y (B, 2, F, T), t (B,), spk (B, E) -> velocity (B, 2, F, T)."""
        B, _, Fq, T = xt.shape
        p = self.p
        x = F.pad(torch.cat([xt, y], dim=1), (0, -T % p))  # (B, 4, F, T') with T' = N p
        N = x.shape[-1] // p
        x = x.view(B, 4, Fq, N, p).permute(0, 3, 1, 2, 4).reshape(B, N, 4 * Fq * p)  # patchify
        x = self.embed(x)  # (B, N, D)
        x = x + position_embedding(N, x.shape[-1], x.device)
        c = self.t_embedder(timestep_embedding(t, 256)) + self.spk_embedder(spk)  # (B, D)
        for block in self.blocks:
            x = block(x, c)
        x = self.final(x, c)  # (B, N, 2 F p)
        x = x.view(B, N, 2, Fq, p).permute(0, 2, 3, 1, 4).reshape(B, 2, Fq, N * p)  # unpatchify
        return x[..., :T]

# -----------------------------------------------------------------------------
# the configuration and the whole model


@dataclass
class Config:
    sample_rate: int = 16000
    n_fft: int = 512  # 32 ms at 16 kHz -> 257 bins
    hop: int = 128  # 8 ms
    alpha: float = 0.5  # compression exponent
    beta: float = 0.15  # compression gain
    # speaker encoder
    spk_channels: int = 16
    spk_layers: int = 3
    spk_hidden: int = 64
    spk_dim: int = 64  # E
    # stage 1 masker
    mask_channels: int = 8
    mask_layers: int = 4
    mask_hidden: int = 64
    mask_lstm_layers: int = 1
    # stage 2 DiT
    patch: int = 4  # frames per token (32 ms)
    dit_width: int = 64
    dit_depth: int = 2
    dit_heads: int = 4
    mlp_ratio: float = 4.0
    fast_attention: bool = True  # F.scaled_dot_product_attention instead of the written-out softmax
    # flow matching
    start: str = "masked"  # x0: "masked" (Mask2Flow), "mixture" (flow-only) or "noise" (generative)
    noise_std: float = 0.5  # std of x0 when start == "noise", roughly that of compressed speech
    t_zero: float = 0.25  # share of each batch trained at exactly t = 0, where one step evaluates
    t_power: float = 2.0  # other t = u ** t_power, u ~ U[0, 1]: > 1 puts more mass near t = 0

    @property
    def n_freqs(self):
        return self.n_fft // 2 + 1


CONFIGS = {
    "tiny": Config(),  # tests
    "small": Config(patch=1, dit_width=128, dit_depth=3),  # CPU demos: a DiT with room to beat the mask
    "paper": Config(spk_channels=32, spk_hidden=256, spk_dim=256,
                    mask_channels=16, mask_hidden=512, mask_lstm_layers=2,
                    patch=4, dit_width=640, dit_depth=9, dit_heads=8),
}


class Mask2Flow(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg.start in ("masked", "mixture", "noise"), f"unknown start {cfg.start!r}"
        self.cfg = cfg
        self.speaker = SpeakerEncoder(cfg)
        self.masker = Masker(cfg)
        self.dit = DiT(cfg)
        self.initialize_weights()

    def initialize_weights(self):
        def xavier(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.apply(xavier)
        for m in self.modules():  # zero FiLM and adaLN-Zero: start as identity / zero velocity
            if isinstance(m, FiLM):
                nn.init.zeros_(m.linear.weight)
                nn.init.zeros_(m.linear.bias)
            if isinstance(m, (DiTBlock, FinalLayer)):
                nn.init.zeros_(m.adaLN_modulation[-1].weight)
                nn.init.zeros_(m.adaLN_modulation[-1].bias)
        nn.init.normal_(self.dit.t_embedder[0].weight, std=0.02)
        nn.init.normal_(self.dit.t_embedder[2].weight, std=0.02)
        nn.init.zeros_(self.dit.final.linear.weight)
        nn.init.zeros_(self.dit.final.linear.bias)

    # --- front end: waveform <-> compressed spectrogram ---

    def spec(self, wav):
        return compress(stft(wav, self.cfg.n_fft, self.cfg.hop), self.cfg.alpha, self.cfg.beta)

    def wav(self, spec, length):
        return istft(decompress(spec, self.cfg.alpha, self.cfg.beta), self.cfg.n_fft, self.cfg.hop, length)

    def embed_speaker(self, ref, ref_lengths=None):
        """ref (B, Le) waveform, zero-padded past ref_lengths -> (B, E)."""
        if ref_lengths is None:
            ref_lengths = torch.full((ref.shape[0],), ref.shape[1], device=ref.device)
        valid = torch.arange(ref.shape[1], device=ref.device) < ref_lengths[:, None]  # (B, Le)
        rms = (ref.pow(2).sum(-1) / ref_lengths.clamp_min(1)).sqrt().clamp_min(1e-8)
        X = stft(ref * valid / rms[:, None], self.cfg.n_fft, self.cfg.hop)
        logmag = torch.log(X.pow(2).sum(1, keepdim=True) + 1e-5)  # (B, 1, F, T)
        return self.speaker(logmag, frame_mask(ref_lengths, X.shape[-1], self.cfg.hop))

    # --- stage 1: masking ---

    def mask(self, Y, spk):
        return self.masker(Y, spk) * Y  # x_m = M * Y, (B, 2, F, T)

    # --- stage 2: flow matching from x0 to x1 ---

    def start(self, Y, spk):
        """x0, where the flow starts: the masked spectrogram, the mixture, or Gaussian noise."""
        if self.cfg.start == "masked":
            return self.mask(Y, spk)
        if self.cfg.start == "mixture":
            return Y
        return self.cfg.noise_std * torch.randn_like(Y)

    def sample_t(self, B, device):
        """t in [0, 1]: a share at exactly 0 (the one-step evaluation point), the rest skewed to 0."""
        t = torch.rand(B, device=device) ** self.cfg.t_power
        return torch.where(torch.rand(B, device=device) < self.cfg.t_zero, torch.zeros_like(t), t)

    def forward(self, mix, target, ref, ref_lengths=None, stage=1):
        """Training loss. mix, target (B, L) waveforms, ref (B, Le). Stage 2 keeps stage 1 frozen."""
        scale = mix.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)  # loudness normalisation (RMS)
        Y, x1 = self.spec(mix / scale), self.spec(target / scale)
        if stage == 1:
            spk = self.embed_speaker(ref, ref_lengths)
            return F.mse_loss(self.mask(Y, spk), x1)
        with torch.no_grad():
            spk = self.embed_speaker(ref, ref_lengths)
            x0 = self.start(Y, spk)
        return self.flow_loss(x0, x1, Y, spk)

    def flow_loss(self, x0, x1, Y, spk):
        """|| v(x_t, t | Y, e) - (x1 - x0) ||^2 at random t on the straight path."""
        t = self.sample_t(Y.shape[0], Y.device)
        xt, ut = straight_path(x0, x1, t[:, None, None, None])
        return F.mse_loss(self.dit(xt, t, Y, spk), ut)

    @torch.no_grad()
    def sample(self, x0, Y, spk, steps=1):
        """Euler: x_{k+1} = x_k + (1/N) v(x_k, k/N). Returns the N + 1 states x_0 .. x_N."""
        xs = [x0]
        for k in range(steps):
            t = torch.full((x0.shape[0],), k / steps, device=x0.device)
            xs.append(xs[-1] + self.dit(xs[-1], t, Y, spk) / steps)
        return xs

    @torch.no_grad()
    def extract(self, mix, ref, ref_lengths=None, steps=1, return_states=False):
        """mix (B, L), ref (B, Le) -> the target's waveform (B, L). steps=0: stage 1 alone."""
        scale = mix.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)
        Y = self.spec(mix / scale)
        spk = self.embed_speaker(ref, ref_lengths)
        xs = self.sample(self.start(Y, spk), Y, spk, steps)
        wav = self.wav(xs[-1], mix.shape[-1]) * scale
        return (wav, xs) if return_states else wav


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


if __name__ == "__main__":
    for name, cfg in CONFIGS.items():
        model = Mask2Flow(cfg)
        parts = ", ".join(f"{part} {count_parameters(getattr(model, part)) / 1e6:.3f}M"
                          for part in ("speaker", "masker", "dit"))
        print(f"{name:6s} {count_parameters(model) / 1e6:7.3f}M parameters ({parts})")
