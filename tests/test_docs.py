"""Tests of the course readings (docs/): every code reference points at code that exists, every
link resolves, and the analyses of docs/research/figures.py compute what the readings say they compute
(the results page has its own tests: test_results.py)."""

import argparse
import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

from eval import mean_ci
from mask2flow import CONFIGS, FiLM, Mask2Flow, si_sdr
from test_readings import names_in  # the readings' reference checker

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESEARCH = DOCS / "research"  # the scripts behind the results, and their evidence
READINGS = sorted(DOCS.glob("[0-9]*.md"))
REF = re.compile(r"`((?:docs/(?:research/)?)?\w+\.py)(::?)([A-Za-z_][\w.]*)`")  # `f.py:name`, `f.py:Class.method`, `test_f.py::test`


def load_docs_module(name):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", RESEARCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures, results = load_docs_module("figures"), load_docs_module("results")


def all_markdown():
    return sorted(DOCS.glob("*.md"))

# --- the readings point at code that exists ---


def test_readings_exist_and_are_listed_in_order():
    assert len(READINGS) == 6, [p.name for p in READINGS]
    index = (DOCS / "README.md").read_text()
    positions = [index.find(f"]({p.name})") for p in READINGS]
    assert all(i >= 0 for i in positions), "docs/README.md must link every reading"
    assert positions == sorted(positions), "docs/README.md must list the readings in order"


def test_every_code_reference_exists():
    found = 0
    for md in all_markdown():
        for file, sep, name in REF.findall(md.read_text()):
            path = ROOT / file
            if not path.is_file() and file.startswith("test_"):  # a test named without its folder
                path = ROOT / "tests" / file
            assert path.is_file(), f"{md.name}: `{file}{sep}{name}`: no file {file}"
            if Path(file).name.startswith("test_"):
                assert sep == "::", f"{md.name}: write tests as `{file}::{name}`"
            else:
                assert sep == ":", f"{md.name}: write code as `{file}:{name}` (one colon)"
            assert name in names_in(path), f"{md.name}: `{file}{sep}{name}` does not exist"
            found += 1
    assert found >= 40, f"only {found} code references found: is the pattern still right?"


@pytest.mark.parametrize("reading", READINGS, ids=lambda p: p.name)
def test_each_reading_is_tied_to_code_and_has_exercises(reading):
    text = reading.read_text()
    assert len(REF.findall(text)) >= 4, f"{reading.name} should point at the code it explains"
    assert "## Exercises" in text and "## Answers" in text
    assert text.index("## Exercises") < text.index("## Answers")


def test_links_resolve():
    """Links to markdown and code files exist, and every results.md#anchor is a heading that
    docs/research/results.py writes (the PNGs are generated, so they are not checked here)."""
    headings = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", results.build(), flags=re.M)}
    for md in all_markdown():
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text()):
            if target.startswith("http") or target.endswith(".png"):
                continue
            file, _, anchor = target.partition("#")
            if file:
                assert (md.parent / file).exists(), f"{md.name}: broken link {target}"
            if Path(file).name == "results.md" and anchor:
                assert anchor in headings, f"{md.name}: results.py writes no heading #{anchor}"

# --- the analyses compute what the readings say ---


def speech_like(seed, n=16000):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    f0 = 100 + 150 * torch.rand(1, generator=g)
    x = sum(torch.sin(2 * torch.pi * f0 * k * t + k) / k for k in range(1, 12))
    return (x * (0.6 + 0.4 * torch.sin(2 * torch.pi * 3 * t)) + 0.05 * torch.randn(n, generator=g))[None]


def tiny(start="masked"):
    torch.manual_seed(0)
    return Mask2Flow(dataclasses.replace(CONFIGS["tiny"], start=start)).eval()


@pytest.mark.slow
def test_delete_insert_properties():
    model = tiny()
    target, other, ref = speech_like(0), speech_like(1), speech_like(2)
    mix = target + other
    states, tgt = figures.di_states(model, mix, target, ref, steps=8)
    assert len(states) == 9
    for D, I in states:  # adaLN-Zero: the untrained flow never moves, so every step is the mask
        assert torch.equal(D, states[0][0]) and torch.equal(I, states[0][1])
    assert states[0][1].item() == 0  # a mask in [0, 1] can only delete
    props = figures.shares({"mask": [states[0][0].item(), 0.0], "target": [tgt[0].item(), tgt[1].item()]})
    for p in props.values():
        assert p["delete"] + p["insert"] == pytest.approx(1)
    # the target's insertion share, computed directly from torch.stft
    spec = lambda x: torch.stft(x, 512, 128, window=torch.hann_window(512), pad_mode="constant",
                                     return_complex=True).abs() ** 2
    d = spec(target) - spec(mix)
    direct = d.clamp_min(0).sum() / d.abs().sum()
    assert props["target"]["insert"] == pytest.approx(direct.item(), rel=1e-3)
    assert 0 < props["target"]["insert"] < 1
    nD, nI = figures.di_states(model, mix, target, ref, 1, figures.bins_changed)[1]  # the bin-count variant
    assert (nI / (nD + nI)).item() == pytest.approx(((d > 0).sum() / (d != 0).sum()).item(), abs=0.01)
    # per-signal normalised: each signal at unit energy, compared on |X|^alpha, also checked against torch.stft
    level = lambda P: (P / P.sum()) ** (model.cfg.alpha / 2)
    dn = level(spec(target)) - level(spec(mix))
    by_level = lambda P, P_mix: figures.delete_insert(figures.normalised(model, P), figures.normalised(model, P_mix))
    (D, I) = figures.di_states(model, mix, target, ref, 1, by_level)[1]
    assert (I / (D + I)).item() == pytest.approx((dn.clamp_min(0).sum() / dn.abs().sum()).item(), rel=1e-3)
    P = spec(mix)  # (1, F, T)
    assert torch.allclose(figures.normalised(model, 5 * P), figures.normalised(model, P))  # scale-free
    masked = P * torch.rand(P.shape, generator=torch.Generator().manual_seed(0))  # a mask in [0, 1]
    assert figures.delete_insert(masked, P)[1].item() == 0  # no insertion at the mixture's scale
    assert figures.delete_insert(*(figures.normalised(model, x) for x in (masked, P)))[1].item() > 0  # but here
    # from the mixture, an untrained flow changes nothing: no proportions at all
    flat = figures.di_states(tiny("mixture"), mix, target, ref, steps=2)[0]
    assert figures.shares({"flow": [flat[1][0].item(), flat[1][1].item()]})["flow"]["delete"] is None


@pytest.mark.slow
def test_steps_scores_properties():
    target, ref = speech_like(0)[0].numpy(), speech_like(2)[0].numpy()
    mix = target + speech_like(1)[0].numpy()
    models = {"Mask2Flow": tiny(), "noise": tiny("noise")}
    scores = figures.steps_scores(models, mix, target, ref, [1, 2, 4], {}, seed=3)
    mask_only = si_sdr(models["Mask2Flow"].extract(torch.from_numpy(mix)[None], torch.from_numpy(ref)[None], steps=0),
                       torch.from_numpy(target)[None]).item()
    for k in (1, 2, 4):  # untrained: every step count gives the mask's output
        assert scores["Mask2Flow"][k]["si_sdr"] == pytest.approx(mask_only, abs=1e-4)
    again = figures.steps_scores({"noise": models["noise"]}, mix, target, ref, [2], {}, seed=3)
    assert again["noise"][2] == scores["noise"][2]  # the same seed draws the same x0


def test_over_suppression_floor():
    """No mask in [0, 1] can restore target energy the mixture lacks: the mask misses at least as
    much of the target as the mixture does."""
    model = tiny()
    target, ref = speech_like(0), speech_like(2)
    _, missing, _ = figures.over_suppression(model, target + speech_like(1), target, ref)
    assert 0 <= missing["mixture"] <= missing["mask"] <= 1

# --- the figures and the README's preset table ---


def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    args = argparse.Namespace(out=tmp_path, split="test", runs=[tmp_path / "run", f"{tmp_path / 'run'}:1"], ckpt=None,
                              flow_only=None, noise=None, control=None)
    props = figures.shares({"flow-only step 1": [3.0, 1.0], "mask": [1.0, 0.0], "target": [2.0, 1.0]})
    figures.plot_di({"clean": props, "noisy": props}, args, 2)
    ref = {"si_sdr": mean_ci([1.0, 2.0]), "pesq": mean_ci([1.5, 2.0])}
    figures.plot_steps({"steps": [1, 2], "systems": {"Mask2Flow": {"1": ref, "2": ref}},
                        "references": {"mixture": ref}}, args, 2)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.csv").write_text("stage,step,train_loss,dev_mixture,dev_mask,dev_flow1\n"
                                              "1,10,0.5,0.1,1.0,1.0\n1,20,0.4,0.1,2.0,2.0\n2,10,0.3,0.1,2.0,3.0\n")
    figures.cmd_curves(args)
    P = {k: torch.rand(1, 257, 20) + 1e-3 for k in ("mixture", "mask", "Mask2Flow", "target")}
    figures.plot_spectrograms(P, {"mixture": 0.0, "mask": 1.0, "Mask2Flow": 2.0}, "an example", CONFIGS["tiny"], args)
    for name in ("di", "steps", "curves", "spectrograms", "oversuppression"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_readme_preset_sizes_are_what_mask2flow_prints():
    """README's preset table: the parameter counts `python mask2flow.py` prints, to the digits shown."""
    from mask2flow import count_parameters
    readme = (ROOT / "README.md").read_text()
    for name, cfg in CONFIGS.items():
        row = re.search(rf"^\| `{name}`[^|]*\|([^\n]*)$", readme, re.M)
        assert row, f"README has no row for the {name} preset"
        shown = [c.strip().rstrip("M") for c in row.group(1).strip(" |").split("|")]
        model = Mask2Flow(cfg)
        parts = [model] + [getattr(model, p) for p in ("speaker", "masker", "dit")]
        for text, part in zip(shown, parts):
            digits = len(text.split(".")[1]) if "." in text else 0
            assert float(text) == round(count_parameters(part) / 1e6, digits), (name, text)


def test_speakers_swaps_the_enrollment(tmp_path):
    """figures.py speakers scores each example with its own enrollment and with the other voice's:
    an untrained model (zero FiLM) ignores the enrollment, so the two agree exactly; once FiLM is
    non-zero they differ."""
    from test_data import make_librimix
    make_librimix(tmp_path / "LibriMix", "test", 3)
    torch.manual_seed(0)
    model = Mask2Flow(CONFIGS["tiny"])
    scores = []
    for name in ("untrained", "film"):
        if name == "film":
            for m in model.modules():
                if isinstance(m, FiLM):
                    torch.nn.init.normal_(m.linear.weight, std=0.5)
        ckpt = tmp_path / f"{name}.pt"
        torch.save({"config": dataclasses.asdict(model.cfg), "model": model.state_dict(), "ema": model.state_dict(),
                    "stage": 2, "step": 0, "best_val": 0.0, "data": {}}, ckpt)
        figures.main(["speakers", "--ckpt", str(ckpt), "--data", str(tmp_path / "LibriMix"), "--split", "test",
                      "--limit", "4", "--evidence", str(tmp_path / name)])
        out = json.loads((tmp_path / name / "speakers_test.json").read_text())
        assert out["n_pairs"] >= 2  # the examples whose other voice is enrolled too
        s = out["scores"]
        assert 0 <= s["matched, ours"]["mean"] <= 1
        for label in ("mask-only", "Mask2Flow 1 step"):
            own, other = s[f"{label}, own enrollment"]["mean"], s[f"{label}, other voice's enrollment"]["mean"]
            assert s[f"{label}, own minus other voice's enrollment"]["mean"] == pytest.approx(own - other, abs=1e-6)
        scores.append(s["mask-only, own minus other voice's enrollment"])
    assert scores[0]["mean"] == 0
    assert abs(scores[1]["mean"]) > 1e-3
    page = results.build(tmp_path / "film")  # results.md shows the file it read
    assert "## Speaker conditioning" in page
    assert "(`film/speakers_test.json`)" in page
