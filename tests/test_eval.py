"""End-to-end tests of eval.py on a small LibriMix-layout corpus (test_data.py:make_librimix) and tiny
checkpoints (conftest.py): the report it writes, batching, the optional metrics, failures counted,
and the clustered interval of mean_ci."""

import json
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import common
import eval as evaluation
from data import LibriMix
from mask2flow import si_sdr
from test_data import make_librimix
from test_sample import voice



@pytest.fixture(autouse=True)
def without_recogniser(monkeypatch):
    """WER and DNSMOS cost about a second per signal: tests/test_asr.py tests them, these tests leave them out."""
    real = evaluation.heard_metrics
    monkeypatch.setattr(evaluation, "heard_metrics", lambda sr, skip=(): real(sr, (*skip, "dnsmos", "wer")))

# --- mean and interval ---


def test_mean_ci():
    assert evaluation.mean_ci([1.0, float("nan"), 3.0]) == pytest.approx(
        {"mean": 2.0, "ci95": 12.706205 * 1.0, "n": 2, "n_failed": 1, "clusters": 2})  # Student t, a failure counted
    assert evaluation.mean_ci([None, float("nan")]) == {"mean": None, "ci95": None, "n": 0, "n_failed": 2, "clusters": 0}
    assert evaluation.mean_ci([5.0])["ci95"] is None
    assert evaluation.cell(evaluation.mean_ci([1.0, None, 3.0])) == "2.00 ± 12.71 (n = 2)"
    assert evaluation.cell(evaluation.mean_ci([None])) == "failed (n = 0)"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-20, 20), st.floats(-20, 20)), min_size=2, max_size=12))
def test_mean_ci_clustered_by_mixture(pairs):
    """With two values per mixture, the clustered interval is the Student t interval of the mixtures'
    means; a failed value leaves its mixture with one, still counted as one cluster."""
    values = [v for pair in pairs for v in pair]
    mixtures = [i // 2 for i in range(len(values))]
    got, oracle = evaluation.mean_ci(values, mixtures), evaluation.mean_ci([(a + b) / 2 for a, b in pairs])
    assert got["mean"] == pytest.approx(oracle["mean"], abs=1e-9) and got["ci95"] == pytest.approx(oracle["ci95"], abs=1e-9)
    assert (got["n"], got["clusters"], got["n_failed"]) == (len(values), len(pairs), 0)
    failed = evaluation.mean_ci([None] + values[1:], mixtures)
    assert (failed["n"], failed["clusters"], failed["n_failed"]) == (len(values) - 1, len(pairs), 1)
    with pytest.raises(AssertionError, match="cluster labels"):
        evaluation.mean_ci(values, mixtures[1:])

# --- the report ---


@pytest.fixture(scope="module")
def flowing_ckpt(ckpt, tmp_path_factory):
    """The tiny checkpoint with a DiT whose velocity is not zero, so each step count gives its own output."""
    state = torch.load(ckpt)
    g = torch.Generator().manual_seed(0)
    for name, std in (("dit.final.linear.weight", 0.02), ("dit.final.adaLN_modulation.1.weight", 1.0),  # v(x, t)
                      ("dit.skip.weight", 0.3)):
        w = state["ema"][name]
        w.copy_(std * torch.randn(w.shape, generator=g))
    path = tmp_path_factory.mktemp("flowing") / "ckpt_best.pt"
    torch.save(state, path)
    return path


@pytest.mark.slow
def test_eval_writes_a_report(tmp_path, flowing_ckpt, capsys):
    data = tmp_path / "corpus"
    make_librimix(data, "test", 4)
    argv = ["--data", str(data), "--ckpt", str(flowing_ckpt), "--steps", "1", "2", "--limit", "2",
            "-o", str(tmp_path / "reports")]
    assert evaluation.main(argv) == 0
    report = json.loads((tmp_path / "reports" / "eval_corpus_test_clean.json").read_text())
    assert report["n"] == 2 and report["checkpoint"] == str(flowing_ckpt) and report["label"] == "unseen real speakers"
    systems = report["systems"]
    assert list(systems) == ["mixture", "mask-only", "Mask2Flow 1 step", "Mask2Flow 2 steps"]
    assert [s["steps"] for s in systems.values()] == [None, 0, 1, 2]
    assert systems["mixture"]["metrics"]["si_sdri"]["mean"] == pytest.approx(0, abs=1e-4)
    # each step count's score, computed here from the model on the same examples (each under one chunk)
    model, _ = common.load_model(flowing_ckpt, torch.device("cpu"))
    dataset = LibriMix(data, "test", segment=None)
    for name, steps in (("mask-only", 0), ("Mask2Flow 1 step", 1), ("Mask2Flow 2 steps", 2)):
        scores = [si_sdr(model.extract(dataset[i]["mix"][None], dataset[i]["enroll"][None], steps=steps),
                         dataset[i]["target"][None]).item() for i in range(2)]
        assert systems[name]["metrics"]["si_sdr"]["mean"] == pytest.approx(np.mean(scores), abs=1e-3)
    means = [systems[name]["metrics"]["si_sdr"]["mean"] for name in list(systems)[1:]]
    assert min(abs(a - b) for a, b in zip(means, means[1:] + means[:1])) > 0.05  # the steps do differ
    out = capsys.readouterr()
    assert "| mixture | – |" in out.out and "ETA" in out.err
    # every example, and each system's score on it (the optional metrics where installed), to pair systems later
    installed = {key for key, fn in {**evaluation.optional_metrics(16000), **evaluation.heard_metrics(16000)}.items()
                 if fn is not None}  # PESQ, ESTOI; speaker similarity (DNSMOS and WER are left out here)
    examples = report["examples"]
    assert examples["target_index"] == [1, 2] and examples["mixture_id"][0] == examples["mixture_id"][1]
    assert len(examples["speaker"]) == 2 and examples["speaker"][0] != examples["speaker"][1]
    for s in systems.values():
        assert set(s["scores"]) == {"si_sdr", "si_sdri"} | installed and all(len(v) == 2 for v in s["scores"].values())
        assert s["metrics"]["si_sdr"]["mean"] == pytest.approx(np.mean(s["scores"]["si_sdr"]), abs=1e-9)
        assert s["metrics"]["si_sdr"]["clusters"] == 1  # the two targets of one mixture


def test_eval_reports_the_training_data_options(tmp_path, ckpt):
    data = tmp_path / "corpus"
    make_librimix(data, "test", 2)
    trained = dict(torch.load(ckpt, weights_only=False), args=dict(data="x", seed=3, speed=[0.8, 1.2], stage1="s.pt"))
    torch.save(trained, tmp_path / "trained.pt")
    for path, name in ((ckpt, "shipped"), (tmp_path / "trained.pt", "trained")):
        evaluation.main(["--data", str(data), "--ckpt", str(path), "--limit", "2", "--conditions", "two", "-o",
                         str(tmp_path / name)])
    shipped, ours = (json.loads((tmp_path / name / "eval_corpus_test_clean.json").read_text()) for name in ("shipped", "trained"))
    assert (shipped["speed"], shipped["seed"], shipped["trained_on"]) == ([0.9, 1.1], None, None)  # no args: defaults
    assert (ours["speed"], ours["seed"], ours["trained_on"]) == ([0.8, 1.2], 3, "s.pt")


def test_batched_eval_equals_one_example_at_a_time(tmp_path, busy_ckpt):
    data = tmp_path / "corpus"
    make_librimix(data, "test", 4)  # 0.7 to 1 s long: padding in every batch
    scores = {}
    for b in (1, 4):
        out = tmp_path / f"batch{b}"
        argv = ["--data", str(data), "--ckpt", str(busy_ckpt), "--steps", "1", "2", "--conditions", "two",
                "--batch-size", str(b), "-o", str(out)]
        assert evaluation.main(argv) == 0
        report = json.loads((out / "eval_corpus_test_clean.json").read_text())
        assert report["batch_size"] == b and report["n"] == 8
        scores[b] = {name: s["scores"]["si_sdr"] for name, s in report["systems"].items()}
    for name in scores[1]:
        assert scores[4][name] == pytest.approx(scores[1][name], abs=2e-3), name


def test_eval_without_the_optional_metrics(tmp_path, ckpt, capsys, monkeypatch):
    for module in ("pesq", "pystoi", "resemblyzer"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    data = tmp_path / "corpus"
    for split in ("test", "test-seen"):  # as the demo corpus
        make_librimix(data, split, 4)
    assert evaluation.main(["--data", str(data), "--ckpt", str(ckpt), "--steps", "1", "--limit", "1", "--noisy"]) == 0
    for split, label in (("test-seen", "seen speakers, held-out sentences"), ("test", "unseen real speakers")):
        report = json.loads((ckpt.parent / f"eval_corpus_{split}_noisy.json").read_text())  # beside the checkpoint
        metrics = report["systems"]["Mask2Flow 1 step"]["metrics"]
        assert metrics["pesq"] == metrics["estoi"] == metrics["spk_sim"] == evaluation.NOT_INSTALLED
        assert metrics["si_sdr"]["n"] == 1 and report["label"] == label and report["mix_type"] == "noisy"
    assert evaluation.NOT_INSTALLED in capsys.readouterr().out


@pytest.mark.parametrize("module, key", [("pesq", "pesq"), ("pystoi", "estoi"), ("resemblyzer", "spk_sim")])
def test_optional_metric_scores_the_target_itself_best(module, key):
    """Each optional metric (requirements-eval.txt), where installed: the clean target scores better against
    itself than the target with another voice added."""
    pytest.importorskip(module, reason=f"{module} is an optional extra: pip install -r requirements-eval.txt")
    metric = evaluation.optional_metrics(16000).get(key) or (  # the speaker embedding scores batches (asr.py)
        lambda est, target, embed=evaluation.heard_metrics(16000)[key]: float(embed([est])[0] @ embed([target])[0]))
    target = voice(3.0, 16000).astype(np.float32)
    mixture = target + voice(3.0, 16000, f0=230, seed=1).astype(np.float32)
    assert metric(target, target) > metric(mixture, target)


def test_eval_counts_each_failed_metric(tmp_path, ckpt, capsys, monkeypatch):
    calls = []

    def pesq(est, target):  # fails on the second example (3 systems each), as PESQ does without speech
        calls.append(1)
        if len(calls) > 3:
            raise ValueError("no utterances detected")
        return 1.5
    monkeypatch.setattr(evaluation, "optional_metrics", lambda sr: {"pesq": pesq, "estoi": None, "spk_sim": None})
    data = tmp_path / "corpus"
    make_librimix(data, "test", 4)
    assert evaluation.main(["--data", str(data), "--ckpt", str(ckpt), "--steps", "1", "--limit", "2",
                            "--split", "test", "--batch-size", "1", "-o", str(tmp_path)]) == 0  # example by example
    systems = json.loads((tmp_path / "eval_corpus_test_clean.json").read_text())["systems"]
    for s in systems.values():
        assert s["scores"]["pesq"][1] is None and s["scores"]["pesq"][0] == 1.5
        assert {k: s["metrics"]["pesq"][k] for k in ("mean", "n", "n_failed")} == {"mean": 1.5, "n": 1, "n_failed": 1}
        assert s["metrics"]["si_sdr"]["n_failed"] == 0 and s["metrics"]["estoi"] == evaluation.NOT_INSTALLED
    out = capsys.readouterr().out
    assert "| 1.50 (n = 1) |" in out and "PESQ-WB of mask-only failed on 1 of 2 examples: not in its mean" in out


def test_eval_on_a_missing_corpus_is_one_line(tmp_path, ckpt, capsys):
    assert evaluation.main(["--data", str(tmp_path / "nothing"), "--ckpt", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
