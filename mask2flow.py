"""
Mask2Flow-TSE (Moon et al., arXiv 2603.12837) from scratch: target speaker extraction in two stages.
Stage 1, masking: a convolutional net conditioned on a speaker embedding of the enrollment predicts a
mask M in [0, 1]; x0 = M * Y is a coarse, over-suppressed estimate. Stage 2, flow matching: a DiT learns
the constant velocity of the straight path from x0 to the clean target x1: one step, x0 + v(x0, 0).

Dimensions: B batch, L samples, F frequency bins (n_fft/2 + 1), T frames, C channels, N tokens,
D transformer width, E speaker embedding size, p frames per token. Spectrograms are compressed
complex STFTs (B, 2, F, T): real and imaginary parts. In a zero-padded batch, `frames` (B, T) marks
the real frames; every layer and loss ignores the rest, so an example gives the same result alone.
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
    return 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(n_fft, device=device) / n_fft)


def first(lengths, L):
    """(B,) counts -> (B, L) bool, True on the first lengths[b] positions of row b."""
    return torch.arange(L, device=lengths.device) < lengths[:, None]


def frame_mask(lengths, T, hop):
    """(B,) sample counts -> (B, T) bool, True on frames of the real signal (1 + length // hop)."""
    return first(1 + lengths // hop, T)


def every_frame(X, frames=None):
    """frames (B, T) bool marks the real frames of X (B, C, F, T); None means all of them."""
    return torch.ones_like(X[:, 0, 0], dtype=torch.bool) if frames is None else frames


def stft(x, n_fft, hop):
    """(B, L) waveform -> (B, 2, F, T) with T = 1 + L // hop centred frames (zero padding)."""
    x = F.pad(x, (n_fft // 2, n_fft // 2))
    frames = x.unfold(-1, n_fft, hop)  # (B, T, n_fft)
    spec = torch.fft.rfft(frames * hann(n_fft, x.device), dim=-1)  # (B, T, F)
    return torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (B, 2, F, T)


def istft(X, n_fft, hop, length, frames=None):
    """Inverse of stft: overlap-add over the summed squared window of the real frames only (B, T; default all)."""
    w = hann(n_fft, X.device)
    m = every_frame(X, frames)[:, :, None].to(X.dtype)  # (B, T, 1)
    spec = torch.complex(X[:, 0], X[:, 1]).transpose(1, 2)  # (B, T, F)
    chunks = torch.fft.irfft(spec, n=n_fft, dim=-1) * w * m  # (B, T, n_fft)
    padded = n_fft + hop * (X.shape[-1] - 1)
    fold = lambda z: F.fold(z.transpose(1, 2), (1, padded), (1, n_fft), stride=(1, hop)).view(-1, padded)
    y = fold(chunks) / fold((w * w) * m).clamp_min(1e-8)  # (B, padded)
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


def si_sdr(est, ref, lengths=None, eps=1e-8, cap_db=None):
    """Scale-invariant SDR in dB, (B, L), (B, L) -> (B,), over the first lengths (B,) samples if given.
    cap_db bounds it softly for a loss: the error counts at least 10^(-cap_db / 10) of the target's energy."""
    valid = torch.ones_like(ref) if lengths is None else first(lengths, ref.shape[-1]).to(ref.dtype)
    n = valid.sum(-1, keepdim=True).clamp_min(1)
    est = (est - (est * valid).sum(-1, keepdim=True) / n) * valid
    ref = (ref - (ref * valid).sum(-1, keepdim=True) / n) * valid
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    floor = 0 if cap_db is None else 10 ** (-cap_db / 10) * proj.pow(2).sum(-1)
    return 10 * torch.log10((proj.pow(2).sum(-1) + eps) / ((est - proj).pow(2).sum(-1) + floor + eps))


def straight_path(x0, x1, t):
    """The flow's path and its velocity: x_t = (1 - t) x0 + t x1, u_t = d x_t / dt = x1 - x0."""
    return (1 - t) * x0 + t * x1, x1 - x0


def rms(x, lengths):
    """Root mean square of each (B, L) row over its first `lengths` samples -> (B, 1), at least 1e-8."""
    return (x.pow(2).sum(-1, keepdim=True) / lengths[:, None].clamp_min(1)).sqrt().clamp_min(1e-8)


def masked_mse(a, b, frames=None):
    """(B, C, F, T) twice, frames (B, T) -> MSE over each example's real frames, then over the batch."""
    m = every_frame(a, frames)[:, None, None, :].to(a.dtype)  # (B, 1, 1, T)
    return (((a - b).pow(2) * m).sum((1, 2, 3)) / (m.sum((1, 2, 3)) * a.shape[1] * a.shape[2])).mean()


def modulate(x, shift, scale):
    """adaLN: x * (1 + scale) + shift, broadcast over tokens. x (B, N, D), shift/scale (B, D)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def mel_filterbank(n_mels, n_fft, sample_rate):
    """(n_mels, F) triangular filters evenly spaced on the mel scale, m = 2595 log10(1 + f / 700) (HTK)."""
    mel = lambda f: 2595 * math.log10(1 + f / 700)
    edges = 700 * (10 ** (torch.linspace(0, mel(sample_rate / 2), n_mels + 2) / 2595) - 1)  # (M + 2,) Hz
    f = torch.arange(n_fft // 2 + 1) * sample_rate / n_fft  # (F,) Hz of each bin
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    return ((f - lo) / (mid - lo)).minimum((hi - f) / (hi - mid)).clamp_min(0)  # (M, F)


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
    """Conv net over the log-magnitude (or log-mel) spectrogram + attentive statistics pooling. Padded frames are
    zeroed after every layer and not pooled: a zero-padded enrollment has the embedding of the unpadded one."""

    def __init__(self, cfg):
        super().__init__()
        C, D, self.stride = cfg.spk_channels, cfg.spk_hidden, cfg.spk_stride
        mel = mel_filterbank(cfg.spk_mels, cfg.n_fft, cfg.sample_rate) if cfg.spk_mels else None
        self.register_buffer("mel", mel, persistent=False)  # fixed, so not in checkpoints
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else C, C, 3, stride=(2, self.stride), padding=1)
                                    for i in range(cfg.spk_layers)])  # stride 2 in frequency, spk_stride in time
        bins = math.ceil((cfg.spk_mels or cfg.n_freqs) / 2 ** cfg.spk_layers)  # each conv: ceil(F / 2) bins
        self.proj = nn.Conv1d(C * bins, D, 1)
        self.attention = nn.Sequential(nn.Conv1d(D, D // 4, 1), nn.Tanh(), nn.Conv1d(D // 4, 1, 1))
        self.out = nn.Linear(2 * D, cfg.spk_dim)

    def forward(self, logmag, mask):
        """logmag (B, 1, F, T) (F: mel bands when spk_mels), mask (B, T) bool -> (B, E) with ||e|| = 1."""
        h = logmag * mask[:, None, None, :]
        for conv in self.convs:
            mask = mask[:, ::self.stride]  # a frame is real if the centre of its window is
            h = F.relu(conv(h)) * mask[:, None, None, :]  # (B, C, F', T')
        h = F.relu(self.proj(h.flatten(1, 2)))  # (B, C * F', T) -> (B, D, T)
        w = torch.softmax(self.attention(h).masked_fill(~mask[:, None, :], float("-inf")), dim=-1)  # (B, 1, T), real frames
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


class FrameNorm(nn.Module):
    """Layer norm over one frame's values (channels, and bins if any), with a per-channel affine; unlike
    GroupNorm it never mixes frames, so padding cannot leak into real frames."""

    def __init__(self, C):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(C)), nn.Parameter(torch.zeros(C))

    def forward(self, h):
        x = h.transpose(1, -1)  # (B, T, F, C) or (B, T, C): one frame's values last
        shape = x.shape[2:]  # the affine is per channel, the same in every bin
        return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape)).transpose(1, -1)


class TCNBlock(nn.Module):
    """Conv-TasNet's block: FiLM, 1x1 conv up to 2H channels, depthwise conv dilated in time, 1x1 down, residual."""

    def __init__(self, H, E, dilation):
        super().__init__()
        self.film = FiLM(E, H)
        self.up = nn.Conv1d(H, 2 * H, 1)
        self.act1, self.norm1 = nn.PReLU(2 * H), FrameNorm(2 * H)
        self.depthwise = nn.Conv1d(2 * H, 2 * H, 3, padding=dilation, dilation=dilation, groups=2 * H)
        self.act2, self.norm2 = nn.PReLU(2 * H), FrameNorm(2 * H)
        self.down = nn.Conv1d(2 * H, H, 1)

    def forward(self, h, spk, m):
        """h (B, H, T), zero on padded frames; m (B, 1, T) float mask of the real frames."""
        x = self.norm1(self.act1(self.up(self.film(h, spk)))) * m  # zero padding for the next conv
        x = self.norm2(self.act2(self.depthwise(x)))
        return h + self.down(x) * m


class Masker(nn.Module):
    """Y (compressed) -> mask in [0, 1]: 2-D convs with FiLM over (F, T) (the first two halve F), a 1x1
    bottleneck to H channels per frame, a temporal conv net (TCN blocks), a 1x1 conv back to every bin."""

    def __init__(self, cfg):
        super().__init__()
        C, H, E = cfg.mask_channels, cfg.mask_hidden, cfg.spk_dim
        self.convs = nn.ModuleList([nn.Conv2d(3 if i == 0 else C, C, 3, stride=(2 if i < 2 else 1, 1),
                                              padding=(1, 2 ** i), dilation=(1, 2 ** i))
                                    for i in range(cfg.mask_layers)])  # F/4 after two layers; dilated in time
        self.norms = nn.ModuleList([FrameNorm(C) for _ in range(cfg.mask_layers)])
        self.films = nn.ModuleList([FiLM(E, C) for _ in range(cfg.mask_layers)])
        self.acts = nn.ModuleList([nn.PReLU(C) for _ in range(cfg.mask_layers)])
        self.bottleneck = nn.Conv1d(C * math.ceil(cfg.n_freqs / 2 ** min(2, cfg.mask_layers)), H, 1)
        self.blocks = nn.ModuleList([TCNBlock(H, E, 2 ** (i % 8)) for i in range(cfg.mask_blocks)])
        self.out = nn.Conv1d(H, cfg.n_freqs, 1)

    def forward(self, Y, spk, frames=None):
        """Y (B, 2, F, T), spk (B, E), frames (B, T) bool -> mask (B, 1, F, T)."""
        m = every_frame(Y, frames)[:, None, :].to(Y.dtype)  # (B, 1, T)
        h = torch.cat([Y, magnitude(Y)], dim=1)  # (B, 3, F, T) real, imag, magnitude
        for conv, norm, film, act in zip(self.convs, self.norms, self.films, self.acts):
            h = act(film(norm(conv(h)), spk)) * m[:, :, None]  # (B, C, F', T), padded frames zeroed
        h = self.bottleneck(h.flatten(1, 2)) * m  # (B, H, T)
        for block in self.blocks:
            h = block(h, spk, m)
        return torch.sigmoid(self.out(h)).unsqueeze(1)  # (B, 1, F, T)

# -----------------------------------------------------------------------------
# stage 2: the velocity network, a DiT over time tokens


class Attention(nn.Module):
    def __init__(self, D, heads):
        super().__init__()
        assert D % heads == 0, f"width {D} must divide into {heads} heads"
        self.heads, self.qkv, self.proj = heads, nn.Linear(D, 3 * D), nn.Linear(D, D)

    def forward(self, x, keep):
        """x (B, N, D); keep (B, N) bool: the tokens that may be attended to (not padding)."""
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, N, d)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])  # softmax(q k^T / sqrt d) v
        return self.proj(y.transpose(1, 2).reshape(B, N, D))


class DiTBlock(nn.Module):
    """Pre-norm transformer block whose norms are modulated by the condition c (adaLN-Zero)."""

    def __init__(self, D, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(D, heads)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        H = int(D * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(D, H), nn.GELU(approximate="tanh"), nn.Linear(H, D))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x, c, keep):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1), keep)
        return x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    def __init__(self, D, out):
        super().__init__()
        self.norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(D, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class Skip(nn.Module):
    """Ours, not the paper's: a per-bin linear map of [x_t, Y] straight to the velocity, its gains set by c.
    It can keep or subtract x_t exactly (the -x0 of x1 - x0), which a token of D < 2 F p numbers cannot."""

    def __init__(self, Fq, D):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2, 4, Fq))  # (out, in, F): zero, so v starts at 0
        self.gain = nn.Linear(D, 2 * 4)

    def forward(self, x, c):
        """x (B, 4, F, T), c (B, D) -> (B, 2, F, T)."""
        w = self.weight * (1 + self.gain(c).view(-1, 2, 4, 1))  # (B, 2, 4, F)
        return (w[..., None] * x[:, None]).sum(2)  # (B, 2, 4, F, T) summed over the inputs


class DiT(nn.Module):
    """v(xt, t | Y, e): [xt, Y] in tokens of p frames, conditioned on c = MLP(time) + W e by adaLN-Zero."""

    def __init__(self, cfg):
        super().__init__()
        D, Fq, self.p = cfg.dit_width, cfg.n_freqs, cfg.patch
        self.embed = nn.Linear(4 * Fq * self.p, D)  # one token = p frames of [xt, Y]
        self.t_embedder = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.spk_embedder = nn.Linear(cfg.spk_dim, D)
        self.blocks = nn.ModuleList([DiTBlock(D, cfg.dit_heads, cfg.mlp_ratio) for _ in range(cfg.dit_depth)])
        self.final = FinalLayer(D, 2 * Fq * self.p)
        self.skip = Skip(Fq, D)

    def forward(self, xt, t, y, spk, frames=None):
        """xt, y (B, 2, F, T), t (B,), spk (B, E), frames (B, T) bool -> velocity (B, 2, F, T)."""
        (B, _, Fq, T), p, D = xt.shape, self.p, self.embed.out_features
        inputs = torch.cat([xt, y], dim=1)  # (B, 4, F, T)
        x = F.pad(inputs, (0, -T % p))  # (B, 4, F, T') with T' = N p
        N = x.shape[-1] // p
        x = x.view(B, 4, Fq, N, p).permute(0, 3, 1, 2, 4).reshape(B, N, 4 * Fq * p)  # patchify
        x = self.embed(x) + position_embedding(N, D, x.device)  # (B, N, D)
        frames = every_frame(xt, frames)
        c = self.t_embedder(timestep_embedding(t, 256)) + self.spk_embedder(spk)  # (B, D)
        for block in self.blocks:
            x = block(x, c, frames[:, ::p])  # a token is real when its first frame is
        x = self.final(x, c)  # (B, N, 2 F p)
        x = x.view(B, N, 2, Fq, p).permute(0, 2, 3, 1, 4).reshape(B, 2, Fq, N * p)  # unpatchify
        return (x[..., :T] + self.skip(inputs, c)) * frames[:, None, None, :]  # no velocity on padding

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
    spk_stride: int = 1  # time stride of each conv layer: the embedding pools over time anyway
    spk_mels: int = 0  # > 0: log-mel bands in, not every STFT bin: a cheaper step (bench.py --train)
    # stage 1 masker
    mask_channels: int = 8  # C of the 2-D convs
    mask_layers: int = 2  # 2-D convs (the first two halve F); the TCN gives the time context
    mask_hidden: int = 64  # H per frame after the bottleneck
    mask_blocks: int = 8  # TCN blocks, dilations 1, 2, ... 128 frames
    mask_wave_loss: float = 0.0  # ours, not the paper's: weight of -SI-SDR (dB) of M * Y's waveform; 0: MSE alone
    # stage 2 DiT
    patch: int = 4  # frames per token (32 ms)
    dit_width: int = 64
    dit_depth: int = 2
    dit_heads: int = 4
    mlp_ratio: float = 4.0
    # flow matching
    start: str = "masked"  # x0: "masked" (Mask2Flow), "mixture" (flow-only) or "noise" (generative)
    noise_std: float = 0.5  # std of x0 when start == "noise", roughly that of compressed speech
    t_zero: float = 0.25  # share of each batch trained at exactly t = 0, where one step evaluates
    t_power: float = 2.0  # other t = u ** t_power, u ~ U[0, 1]: > 1 puts more mass near t = 0
    wave_loss: float = 0.0  # ours, not the paper's: weight of -SI-SDR (dB) of x_t + (1 - t) v; 0: flow loss alone

    @property
    def n_freqs(self):
        return self.n_fft // 2 + 1


CONFIGS = {
    "tiny": Config(),  # tests
    "small": Config(patch=1, dit_width=128, dit_depth=3),  # CPU demos: a DiT with room to beat the mask
    "paper": Config(spk_channels=32, spk_hidden=256, spk_dim=256, spk_stride=2, mask_channels=16, mask_hidden=320,
                    patch=8, dit_width=640, dit_depth=9, dit_heads=8),
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
        """As DiT: xavier linears, normal(0.02) time MLP, and zero every FiLM, adaLN modulation, the final
        layer and the skip's gains (its weight is zero too): FiLM starts as identity, the velocity at 0."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        zero = [m.linear for m in self.modules() if isinstance(m, FiLM)]
        zero += [m.adaLN_modulation[-1] for m in self.modules() if isinstance(m, (DiTBlock, FinalLayer))]
        for m in zero + [self.dit.final.linear, self.dit.skip.gain]:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        for m in self.dit.t_embedder[::2]:
            nn.init.normal_(m.weight, std=0.02)

    # --- front end: waveform <-> compressed spectrogram ---
    def spec(self, wav):
        return compress(stft(wav, self.cfg.n_fft, self.cfg.hop), self.cfg.alpha, self.cfg.beta)

    def wav(self, spec, length, frames=None):
        return istft(decompress(spec, self.cfg.alpha, self.cfg.beta), self.cfg.n_fft, self.cfg.hop, length, frames)

    def front(self, mix, lengths=None):
        """mix (B, L) zero-padded past lengths -> its loudness (B, 1), Y (B, 2, F, T) at unit loudness
        and zero past the real frames, those frames (B, T), and the lengths (B,)."""
        lengths = torch.full_like(mix[:, 0], mix.shape[1], dtype=torch.long) if lengths is None else lengths
        scale = rms(mix, lengths)
        Y = self.spec(mix / scale)
        frames = frame_mask(lengths, Y.shape[-1], self.cfg.hop)
        return scale, Y * frames[:, None, None, :], frames, lengths  # frames past the end hold a tail

    def embed_speaker(self, ref, ref_lengths=None):
        """ref (B, Le) waveform, zero-padded past ref_lengths -> (B, E)."""
        ref_lengths = torch.full_like(ref[:, 0], ref.shape[1], dtype=torch.long) if ref_lengths is None else ref_lengths
        X = stft(ref * first(ref_lengths, ref.shape[-1]) / rms(ref, ref_lengths), self.cfg.n_fft, self.cfg.hop)
        power = X.pow(2).sum(1, keepdim=True)  # (B, 1, F, T) at unit RMS
        if self.speaker.mel is not None:
            power = torch.einsum("mf,bcft->bcmt", self.speaker.mel, power)  # (B, 1, M, T)
        return self.speaker(torch.log(power + 1e-5), frame_mask(ref_lengths, X.shape[-1], self.cfg.hop))

    # --- stage 1: masking ---
    def mask(self, Y, spk, frames=None):
        return self.masker(Y, spk, frames) * Y  # x_m = M * Y, (B, 2, F, T)

    # --- stage 2: flow matching from x0 to x1 ---
    def start(self, Y, spk, frames=None):
        """x0, where the flow starts: the masked spectrogram, the mixture, or Gaussian noise (none on padding)."""
        if self.cfg.start == "noise":
            return self.cfg.noise_std * torch.randn_like(Y) * every_frame(Y, frames)[:, None, None, :]
        return self.mask(Y, spk, frames) if self.cfg.start == "masked" else Y

    def sample_t(self, B, device):
        """t in [0, 1]: a share at exactly 0 (the one-step evaluation point), the rest skewed to 0."""
        t = torch.rand(B, device=device) ** self.cfg.t_power
        return torch.where(torch.rand(B, device=device) < self.cfg.t_zero, torch.zeros_like(t), t)

    def forward(self, mix, target, ref, ref_lengths=None, stage=1, lengths=None):
        """Training loss of one stage; stage 2 keeps stage 1 frozen. mix, target (B, L), ref (B, Le)."""
        scale, Y, frames, lengths = self.front(mix, lengths)
        x1 = self.spec(target / scale) * frames[:, None, None, :]  # at the mixture's scale
        if stage == 1:
            spk = self.embed_speaker(ref, ref_lengths)
            xm = self.mask(Y, spk, frames)
            wave = self.wave_si_sdr(xm, x1, frames, lengths) if self.cfg.mask_wave_loss > 0 else 0
            return masked_mse(xm, x1, frames) - self.cfg.mask_wave_loss * wave
        with torch.no_grad():
            spk = self.embed_speaker(ref, ref_lengths)
            x0 = self.start(Y, spk, frames)
        return self.flow_loss(x0, x1, Y, spk, frames, lengths=lengths)

    def flow_loss(self, x0, x1, Y, spk, frames=None, t=None, lengths=None):
        """|| v(x_t, t | Y, e) - (x1 - x0) ||^2 at random t (or the t given) on the straight path, minus
        wave_loss times the SI-SDR of x_t + (1 - t) v (at t = 0 the one-step output) against x1."""
        t = self.sample_t(Y.shape[0], Y.device) if t is None else t
        xt, ut = straight_path(x0, x1, t[:, None, None, None])
        v = self.dit(xt, t, Y, spk, frames)
        x1_hat = xt + (1 - t[:, None, None, None]) * v  # where v leads from x_t in one step
        wave = self.wave_si_sdr(x1_hat, x1, frames, lengths) if self.cfg.wave_loss > 0 else 0
        return masked_mse(v, ut, frames) - self.cfg.wave_loss * wave

    def wave_si_sdr(self, est, ref, frames=None, lengths=None):
        """Batch mean SI-SDR (dB, capped at 30: lone targets must not outweigh mixtures) of the waveforms of two
        compressed spectrograms; a silent target (speaker absent) counts 0, its MSE pulls it to silence."""
        L = self.cfg.hop * (est.shape[-1] - 1) if lengths is None else int(lengths.max())
        present = (ref.abs().flatten(1).amax(1) > 0).to(ref.dtype)  # (B,)
        return (si_sdr(self.wav(est, L, frames), self.wav(ref, L, frames), lengths, cap_db=30) * present).mean()

    @torch.no_grad()
    def sample(self, x0, Y, spk, steps=1, frames=None):
        """Euler: x_{k+1} = x_k + (1/N) v(x_k, k/N). Returns the N + 1 states x_0 .. x_N."""
        xs = [x0]
        for k in range(steps):
            t = torch.full((x0.shape[0],), k / steps, device=x0.device)
            xs.append(xs[-1] + self.dit(xs[-1], t, Y, spk, frames) / steps)
        return xs

    @torch.no_grad()
    def extract(self, mix, ref, ref_lengths=None, steps=1, return_states=False, lengths=None):
        """mix (B, L) zero-padded past lengths, ref (B, Le) -> the target's waveform (B, L); steps=0: stage 1."""
        scale, Y, frames, lengths = self.front(mix, lengths)
        spk = self.embed_speaker(ref, ref_lengths)
        xs = self.sample(self.start(Y, spk, frames), Y, spk, steps, frames)
        wav = self.wav(xs[-1], mix.shape[-1], frames) * scale * first(lengths, mix.shape[-1])  # back to its loudness
        return (wav, xs) if return_states else wav


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


if __name__ == "__main__":
    for name, cfg in CONFIGS.items():
        model = Mask2Flow(cfg)
        parts = ", ".join(f"{p} {count_parameters(getattr(model, p)) / 1e6:.3f}M" for p in ("speaker", "masker", "dit"))
        print(f"{name:6s} {count_parameters(model) / 1e6:7.3f}M parameters ({parts})")
