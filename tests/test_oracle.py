"""docs/research/oracle.py: its oracle starts and the DiT with a gain head."""
import importlib.util
from pathlib import Path

import torch

from mask2flow import CONFIGS, magnitude

spec = importlib.util.spec_from_file_location("oracle", Path(__file__).parents[1] / "docs" / "research" / "oracle.py")
oracle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(oracle)
CFG = CONFIGS["tiny"]


def test_oracle_starts_are_bounded_masks_and_polar_keeps_the_phase():
    g = torch.Generator().manual_seed(0)
    Y, S = torch.randn(2, 2, CFG.n_freqs, 9, generator=g), torch.randn(2, 2, CFG.n_freqs, 9, generator=g)
    assert torch.allclose(oracle.oracle(Y, S, 0), Y)
    for gamma in (1, 2):
        x0 = oracle.oracle(Y, S, gamma)
        assert (magnitude(x0) <= magnitude(Y) * (1 + 1e-6)).all()  # a mask in [0, 1] times Y
        assert torch.allclose(x0 / magnitude(x0), Y / magnitude(Y), atol=1e-5)  # the mixture's phase
    x = oracle.polar(magnitude(S), Y)
    assert torch.allclose(magnitude(x), magnitude(S), atol=1e-5) and torch.allclose(x / magnitude(x), Y / magnitude(Y), atol=1e-5)


def test_gain_dit_starts_at_zero_and_applies_complex_gains_per_bin():
    torch.manual_seed(0)
    dit = oracle.GainDiT(CFG)
    B, T = 2, 10  # T not a multiple of the patch
    xt, y, spk = torch.randn(B, 2, CFG.n_freqs, T), torch.randn(B, 2, CFG.n_freqs, T), torch.randn(B, CFG.spk_dim)
    frames = torch.arange(T) < torch.tensor([[T], [7]])  # the second example is padded after 7 frames
    assert dit(xt, torch.rand(B), y, spk, frames).abs().max() == 0  # zero-initialised, like adaLN-Zero
    N, p = -(-T // CFG.patch), CFG.patch
    tokens = torch.randn(B, N, 4 * CFG.n_freqs * p)
    del dit.final
    dit.final = lambda x, c: tokens  # known gains: (B, N, 4 F p) -> (B, 4, F, N p)
    g = tokens.view(B, N, 4, CFG.n_freqs, p).permute(0, 2, 3, 1, 4).reshape(B, 4, CFG.n_freqs, N * p)[..., :T]
    c = lambda z: torch.complex(z[:, 0], z[:, 1])
    want = c(g[:, :2]) * c(y) + c(g[:, 2:]) * c(xt)
    v = dit(xt, torch.rand(B), y, spk, frames)
    assert torch.allclose(c(v), want * frames[:, None, :], atol=1e-5)
    assert v[1, ..., 7:].abs().max() == 0  # no velocity on padding
