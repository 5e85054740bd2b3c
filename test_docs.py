"""Tests of the course readings (docs/): every code reference points at code that exists, every
link resolves, and the analyses of docs/figures.py compute what the readings say they compute."""

import argparse
import ast
import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

from mask2flow import CONFIGS, Mask2Flow, si_sdr
from sample import mean_ci

ROOT = Path(__file__).resolve().parent
DOCS = ROOT / "docs"
READINGS = sorted(DOCS.glob("[0-9]*.md"))
REF = re.compile(r"`((?:docs/)?\w+\.py)(::?)([A-Za-z_][\w.]*)`")  # `f.py:name`, `f.py:Class.method`, `test_f.py::test`


def load_docs_module(name):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures, results = load_docs_module("figures"), load_docs_module("results")


def names_in(path):
    """Top-level functions, classes and assignments of a file, and Class.member for their members."""
    names = set()

    def assigned(node):
        if isinstance(node, ast.Assign):
            return [t.id for t in node.targets if isinstance(t, ast.Name)]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            return [node.target.id]
        return []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        names.update(assigned(node))
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(f"{node.name}.{member.name}")
                names.update(f"{node.name}.{n}" for n in assigned(member))
    return names


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
    docs/results.py writes (the PNGs are generated, so they are not checked here)."""
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

# --- the results page is built from JSON alone ---


def fake_report(kind_of_run, stage=2):
    m = lambda v: {key: mean_ci([v, v + 1]) for key in ("si_sdr", "si_sdri", "pesq", "estoi", "spk_sim")}
    systems = {"mixture": {"steps": None, "metrics": m(0.5)}}
    first = {"masked": "mask-only", "mixture": "x0 = mixture", "noise": "x0 = noise"}[kind_of_run]
    systems[first] = {"steps": 0, "metrics": m(1.5)}
    systems["Mask2Flow 1 step" if kind_of_run == "masked" else "flow 1 step"] = {"steps": 1, "metrics": m(12.25)}
    return {"data": "demo", "split": "test", "label": "unseen speakers", "mix_type": "clean", "n": 2,
            "checkpoint": "x/ckpt_best.pt", "stage": stage, "step": 7, "machine": "a test machine",
            "torch": torch.__version__, "seconds": 1.0, "systems": systems}


def test_results_page(tmp_path):
    empty = results.build()
    assert empty.count("_Not measured yet._") == 6
    for run, start, stage in (("m2f", "masked", 2), ("control", "masked", 1), ("flow", "mixture", 2)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "eval_demo_test_clean.json").write_text(json.dumps(fake_report(start, stage)))
    variant = fake_report("masked")
    variant["config"] = {"t_zero": 0.0, "t_power": 1.0}
    variant["systems"]["Mask2Flow 1 step"]["metrics"] = fake_report("mixture")["systems"]["mixture"]["metrics"]
    (tmp_path / "variant").mkdir()
    (tmp_path / "variant" / "eval_demo_test_clean.json").write_text(json.dumps(variant))
    page = results.build([tmp_path / r for r in ("m2f", "control", "flow", "variant")])
    assert page.count("| mask-only (stage 1 of Mask2Flow) |") == 1  # the variant's masker is the same
    assert "| Mask2Flow 1 step (t_zero 0, t_power 1) | 1 | 1.00 ± " in page
    assert "| Mask2Flow 1 step | 1 | 12.75 ± " in page
    assert "| mask-only, fair control (stage 1 only, trained longer) | 0 | 2.00 ± " in page
    assert "flow-only from the mixture, 1 step" in page
    assert "x0 = mixture" not in page and page.count("| mixture |") == 1
    assert "a test machine" in page
    assert "| the flow stage beats the same budget spent on masking (test, clean) | not reported | " \
           "SI-SDRi 2.00 ± " in page
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{results.BEGIN}\nold\n{results.END}\n\nthe rest\n")
    results.update_readme(readme, [tmp_path / "m2f"], None)
    text = readme.read_text()
    assert "old" not in text and "| Mask2Flow 1 step | 1 | 12.75 ± " in text
    assert text.startswith("# title\n") and text.endswith(f"{results.END}\n\nthe rest\n")
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one"):
        results.update_readme(readme, [tmp_path / "m2f"], None)


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
