"""End-to-end tests of train.py on a tiny LibriMix-layout corpus (a few steps of both stages)."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from data import DynamicMix
from test_data import make_librimix

TRAIN_PY = Path(__file__).parent / "train.py"


def small(corpus, out, steps=(4, 3), batch=2):
    """A few steps of both stages on half-second crops."""
    return ["--data", str(corpus), "--out", str(out), "--max-steps", *map(str, steps), "--eval-every", "2",
            "--eval-examples", "2", "--batch-size", str(batch), "--warmup", "1", "--log-every", "1",
            "--segment", "0.5", "--enroll-segment", "0.5", "--config", "tiny"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "LibriMix"
    make_librimix(root, "train-100", 8)
    make_librimix(root, "dev", 4)
    return root


def weights(path):
    ckpt = torch.load(path, weights_only=False)
    return ckpt["stage"], ckpt["step"], ckpt["model"], ckpt["ema"], ckpt["optimizer"]["state"]


def read_log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", [3, 6])  # in stage 1, and in stage 2
def test_interrupted_and_resumed_run_ends_where_an_uninterrupted_run_does(corpus, tmp_path, monkeypatch, crash_at):
    train.main(small(corpus, tmp_path / "a"))
    real_save, calls = train.save_checkpoint, []

    def crashing_save(state, path):
        calls.append(path)
        if len(calls) == crash_at:
            raise RuntimeError("simulated crash")
        real_save(state, path)
    monkeypatch.setattr(train, "save_checkpoint", crashing_save)
    with pytest.raises(RuntimeError):
        train.main(small(corpus, tmp_path / "b"))
    monkeypatch.setattr(train, "save_checkpoint", real_save)
    assert not list((tmp_path / "b").glob("*.tmp"))
    train.main(["--out", str(tmp_path / "b"), "--resume"])  # the run's own settings come back
    a, b = weights(tmp_path / "a" / "ckpt_last.pt"), weights(tmp_path / "b" / "ckpt_last.pt")
    assert a[:2] == b[:2] == (2, 3)
    assert same(a[2], b[2]) and same(a[3], b[3]) and same(a[4], b[4])
    log_a, log_b = read_log(tmp_path / "a" / "log.csv"), read_log(tmp_path / "b" / "log.csv")
    assert [r.pop("minutes") != "" for r in log_b] == [True] * len(log_b)  # wall time differs, the rest must not
    assert [{k: v for k, v in r.items() if k != "minutes"} for r in log_a] == log_b
    for stage in (1, 2):  # each stage's clock goes on across the crash
        minutes = [float(r["minutes"]) for r in log_a if r["stage"] == str(stage)]
        assert minutes == sorted(minutes) and minutes[0] >= 0


def test_existing_run_is_never_overwritten(corpus, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="already holds a run"):
        train.main(small(corpus, out))
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


@pytest.mark.parametrize("argv, message", [
    (["--data", "/nonexistent/LibriMix"], "LibriMix"),
    (["--resume"], "does not exist"),
    (["--stage", "2"], "--stage 2 needs a stage-1 model"),
    (["--stage1", "/nonexistent/ckpt_stage1.pt", "--stage", "2"], "does not exist"),
])
def test_bad_invocations_are_one_line_errors(corpus, tmp_path, argv, message):
    argv = small(corpus, tmp_path / "r") + argv
    with pytest.raises(SystemExit, match=message):
        train.main(argv)


def test_baselines_train_with_the_same_code_on_the_same_masker(corpus, tmp_path):
    train.main(small(corpus, tmp_path / "m2f", steps=(1,)))
    stage1 = torch.load(tmp_path / "m2f" / "ckpt_stage1.pt", weights_only=False)
    for start in ("mixture", "noise"):
        out = tmp_path / start
        train.main(small(corpus, out, steps=(1,)) + ["--start", start, "--stage", "2",
                                                      "--stage1", str(tmp_path / "m2f" / "ckpt_stage1.pt")])
        ckpt = torch.load(out / "ckpt_best.pt", weights_only=False)
        assert ckpt["config"]["start"] == start and ckpt["stage"] == 2
        masker = {k: v for k, v in ckpt["model"].items() if not k.startswith("dit.")}
        assert same(masker, {k: v for k, v in stage1["ema"].items() if not k.startswith("dit.")})


@pytest.mark.slow
def test_torchrun_two_processes(corpus, tmp_path):
    """DistributedDataParallel on CPU (gloo): the same script, two ranks, only rank 0 writes."""
    out = tmp_path / "ddp"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        "29517", str(TRAIN_PY), *small(corpus, out, steps=(2,), batch=1), "--device", "cpu",
                        "--max-minutes", "10"],  # the ranks agree on the budget every step
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("parameters,") == 1  # one process prints
    assert torch.load(out / "ckpt_last.pt", weights_only=False)["step"] == 2


def test_dynamic_mix_trains_on_fresh_mixtures_and_resumes_with_them(corpus, tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(train.data, "DynamicMix", lambda *a, **kw: built.append(kw) or DynamicMix(*a, **kw))
    train.main(small(corpus, tmp_path / "dm", steps=(2,)) + ["--dynamic-mix"])
    assert len(built) == 1 and built[0]["segment"] == 0.5 and built[0]["mix_type"] == "clean"
    assert torch.load(tmp_path / "dm" / "ckpt_last.pt", weights_only=False)["args"]["dynamic_mix"]
    train.main(["--out", str(tmp_path / "dm"), "--resume"])
    assert len(built) == 2  # the run's own setting comes back
