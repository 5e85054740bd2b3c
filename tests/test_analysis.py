"""analysis.py computes what reading 6 says it computes: delete/insert against torch.stft, the floor of
over-suppression, oracle masks that are bounded and keep the phase they should, and its three commands
end to end on a small LibriMix-layout folder."""
import dataclasses
import json

import pytest
import torch

import analysis
from mask2flow import CONFIGS, Mask2Flow, magnitude


def speech_like(seed, n=16000):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    f0 = 100 + 150 * torch.rand(1, generator=g)
    x = sum(torch.sin(2 * torch.pi * f0 * k * t + k) / k for k in range(1, 12))
    return (x * (0.6 + 0.4 * torch.sin(2 * torch.pi * 3 * t)) + 0.05 * torch.randn(n, generator=g))[None]


def tiny(start="masked"):
    torch.manual_seed(0)
    return Mask2Flow(dataclasses.replace(CONFIGS["tiny"], start=start)).eval()


def test_delete_insert_properties():
    model = tiny()
    target, other, ref = speech_like(0), speech_like(1), speech_like(2)
    mix = target + other
    states, tgt = analysis.di_states(model, mix, target, ref, steps=4)
    assert len(states) == 5
    for D, I in states:  # adaLN-Zero: the untrained flow never moves, so every step is the mask
        assert torch.equal(D, states[0][0]) and torch.equal(I, states[0][1])
    assert states[0][1].item() == 0  # a mask in [0, 1] can only delete
    props = analysis.shares({"mask": [states[0][0].item(), 0.0], "target": [tgt[0].item(), tgt[1].item()]})
    for p in props.values():
        assert p["delete"] + p["insert"] == pytest.approx(1)
    # the target's insertion share, computed directly from torch.stft
    spec = lambda x: torch.stft(x, 512, 128, window=torch.hann_window(512), pad_mode="constant",
                                return_complex=True).abs() ** 2
    d = spec(target) - spec(mix)
    assert props["target"]["insert"] == pytest.approx((d.clamp_min(0).sum() / d.abs().sum()).item(), rel=1e-3)
    nD, nI = analysis.di_states(model, mix, target, ref, 1, analysis.bins_changed)[1]  # the bin-count variant
    assert (nI / (nD + nI)).item() == pytest.approx(((d > 0).sum() / (d != 0).sum()).item(), abs=0.01)
    # per-signal normalised: each signal at unit energy, compared on |X|^alpha, also checked against torch.stft
    level = lambda P: (P / P.sum()) ** (model.cfg.alpha / 2)
    dn = level(spec(target)) - level(spec(mix))
    by_level = lambda P, P_mix: analysis.delete_insert(analysis.normalised(model, P), analysis.normalised(model, P_mix))
    D, I = analysis.di_states(model, mix, target, ref, 1, by_level)[1]
    assert (I / (D + I)).item() == pytest.approx((dn.clamp_min(0).sum() / dn.abs().sum()).item(), rel=1e-3)
    P = spec(mix)
    assert torch.allclose(analysis.normalised(model, 5 * P), analysis.normalised(model, P))  # scale-free
    masked = P * torch.rand(P.shape, generator=torch.Generator().manual_seed(0))  # a mask in [0, 1]
    assert analysis.delete_insert(masked, P)[1].item() == 0  # no insertion at the mixture's scale
    assert analysis.delete_insert(*(analysis.normalised(model, x) for x in (masked, P)))[1].item() > 0  # but here
    flat = analysis.di_states(tiny("mixture"), mix, target, ref, steps=2)[0]  # from the mixture, untrained: no change
    assert analysis.shares({"flow": [flat[1][0].item(), flat[1][1].item()]})["flow"]["delete"] is None


def test_over_suppression_floor():
    """No mask in [0, 1] can restore target energy the mixture lacks: the mask misses at least as
    much of the target as the mixture does; an untrained flow misses exactly what its mask misses."""
    model = tiny()
    target, ref = speech_like(0), speech_like(2)
    P, missing, excess, energy = analysis.over_suppression(model, target + speech_like(1), target, ref)
    assert 0 <= missing["mixture"] <= missing["mask"] <= energy
    assert missing["one step"] == pytest.approx(missing["mask"]) and excess["one step"] == pytest.approx(excess["mask"])
    assert energy == pytest.approx(P["target"].sum().item())


def test_oracle_starts_are_bounded_masks_and_polar_keeps_the_phase():
    g = torch.Generator().manual_seed(0)
    F = CONFIGS["tiny"].n_freqs
    Y, S = torch.randn(2, 2, F, 9, generator=g), torch.randn(2, 2, F, 9, generator=g)
    assert torch.allclose(analysis.irm(Y, S, 0), Y)
    for gamma in (1, 2):
        x0 = analysis.irm(Y, S, gamma)
        assert (magnitude(x0) <= magnitude(Y) * (1 + 1e-6)).all()  # a mask in [0, 1] times Y
        assert torch.allclose(x0 / magnitude(x0), Y / magnitude(Y), atol=1e-5)  # the mixture's phase
    x = analysis.ORACLES["unbounded"](Y, S)
    assert torch.allclose(magnitude(x), magnitude(S), atol=1e-5) and torch.allclose(x / magnitude(x), Y / magnitude(Y), atol=1e-5)
    x = analysis.ORACLES["bounded, target phase"](Y, S)
    assert torch.allclose(x / magnitude(x), S / magnitude(S), atol=1e-5)
    assert (magnitude(x) <= torch.minimum(magnitude(S), magnitude(Y)) * (1 + 1e-5)).all()


def test_oracle_with_the_target_phase_and_no_bound_is_the_target():
    model = tiny()
    target, mix = speech_like(0), speech_like(0) + speech_like(1)
    scores = analysis.oracle_scores(model, mix, target)
    Y, S = analysis.spectra(model, mix, target)
    assert torch.allclose(analysis.polar(magnitude(S), S), S, atol=1e-5)
    assert scores["bounded, target phase"] > scores["bounded"] > scores["mixture"]
    assert scores["bounded^2"] != scores["bounded"]


def test_the_commands_end_to_end(tmp_path, capsys):
    from test_data import make_librimix
    make_librimix(tmp_path / "LibriMix", "test", 4)
    model = tiny()
    ckpt = tmp_path / "tiny.pt"
    torch.save({"config": dataclasses.asdict(model.cfg), "model": model.state_dict(), "ema": model.state_dict(),
                "stage": 2, "step": 0, "best_val": 0.0, "data": {}}, ckpt)
    for command in ("oversuppression", "ceilings", "di"):
        analysis.main([command, "--ckpt", str(ckpt), "--data", str(tmp_path / "LibriMix"), "--limit", "4",
                       "-o", str(tmp_path / "out")])
        report = json.loads((tmp_path / "out" / f"{command}.json").read_text())
        assert report["ckpt"].startswith(str(ckpt)) and "sha256" in report["ckpt"] and 2 <= report["n"] <= 4
    assert f"of {ckpt} (sha256" in capsys.readouterr().out  # the output names the checkpoint
    di = json.loads((tmp_path / "out" / "di.json").read_text())["insertion_shares"]
    assert di["mixture scale"]["mask"]["insert"] == 0 == di["mixture scale"]["one step"]["insert"]
    with pytest.raises(SystemExit):
        analysis.main(["ceilings", "--ckpt", str(ckpt), "--data", str(tmp_path / "nothing")])
