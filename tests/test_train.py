"""End-to-end tests of train.py on a tiny LibriMix-layout corpus (a few steps of both stages)."""
import contextlib
import csv
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import common
import train
from data import DynamicMix
from mask2flow import CONFIGS
from test_data import make_librimix

REPO = Path(__file__).resolve().parents[1]
TRAIN_PY = REPO / "train.py"
DIT_FIELDS = ("patch", "dit_width", "dit_depth", "dit_heads", "mlp_ratio")


def small(corpus, out, steps=(4, 3), batch=2, config="tiny"):
    """A few steps of both stages on half-second crops."""
    return ["--data", str(corpus), "--out", str(out), "--max-steps", *map(str, steps), "--eval-every", "2",
            "--eval-examples", "2", "--batch-size", str(batch), "--warmup", "1", "--log-every", "1",
            "--segment", "0.5", "--enroll-segment", "0.5", *(["--config", config] if config else [])]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "LibriMix"
    make_librimix(root, "train-100", 8)
    make_librimix(root, "dev", 4)
    return root


@pytest.fixture(scope="module")
def stage1(corpus, tmp_path_factory):
    """A stage-1 checkpoint (tiny preset, two steps), as --stage1 takes it."""
    out = tmp_path_factory.mktemp("stage1") / "run"
    train.main(small(corpus, out, steps=(2,)) + ["--stage", "1"])
    return out / "ckpt_stage1.pt"


def crash_at(stage, step):
    """A save_checkpoint that raises when ckpt_last.pt of (stage, step) is about to be written."""
    real_save = train.save_checkpoint

    def save(state, path):
        if (state["stage"], state["step"], path.name) == (stage, step, "ckpt_last.pt"):
            raise RuntimeError("simulated crash")
        real_save(state, path)
    return save


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
@pytest.mark.parametrize("crash", [(1, 4), (2, 2)])  # in stage 1, and in stage 2 (its step 0 is resumed)
def test_interrupted_and_resumed_run_ends_where_an_uninterrupted_run_does(corpus, tmp_path, monkeypatch, crash):
    train.main(small(corpus, tmp_path / "a"))
    monkeypatch.setattr(train, "save_checkpoint", crash_at(*crash))
    with pytest.raises(RuntimeError):
        train.main(small(corpus, tmp_path / "b"))
    monkeypatch.undo()
    assert not list((tmp_path / "b").glob("*.tmp"))
    train.main(["--out", str(tmp_path / "b"), "--resume"])  # the run's own settings come back
    a, b = weights(tmp_path / "a" / "ckpt_last.pt"), weights(tmp_path / "b" / "ckpt_last.pt")
    assert a[:2] == b[:2] == (2, 3)
    assert same(a[2], b[2]) and same(a[3], b[3]) and same(a[4], b[4])
    log_a, log_b = read_log(tmp_path / "a" / "log.csv"), read_log(tmp_path / "b" / "log.csv")
    clocks = ("minutes", "cpu_minutes")
    assert [r.pop(k) != "" for r in log_b for k in clocks] == [True] * 2 * len(log_b)  # times differ, the rest must not
    assert [{k: v for k, v in r.items() if k not in clocks} for r in log_a] == log_b
    assert [(r["stage"], r["step"]) for r in log_b] == [("1", "2"), ("1", "4"), ("2", "0"), ("2", "2"), ("2", "3")]
    for stage, clock in ((1, "minutes"), (2, "minutes"), (1, "cpu_minutes"), (2, "cpu_minutes")):
        minutes = [float(r[clock]) for r in log_a if r["stage"] == str(stage)]  # each stage's clocks go on
        assert minutes == sorted(minutes) and minutes[0] >= 0
    assert float(log_a[1]["cpu_minutes"]) > float(log_a[0]["cpu_minutes"])  # training steps take CPU time


@pytest.mark.slow
def test_resumed_stage1_run_stays_stage1_and_keeps_its_budget(corpus, tmp_path, monkeypatch, capsys):
    """The fair control (--stage 1) must not turn into Mask2Flow when resumed."""
    out = tmp_path / "mask"
    monkeypatch.setattr(train, "save_checkpoint", crash_at(1, 4))
    with pytest.raises(RuntimeError):
        train.main(small(corpus, out, steps=(4,)) + ["--stage", "1", "--max-minutes", "5"])
    monkeypatch.undo()
    train.main(["--out", str(out), "--resume", "--max-minutes", "0"])  # a budget given now is used: spent
    assert "time budget of 0.0 min reached at step 2" in capsys.readouterr().out
    assert torch.load(out / "ckpt_last.pt", weights_only=False)["step"] == 2
    train.main(["--out", str(out), "--resume"])  # else the run's own budget, 5 minutes: it finishes
    last = torch.load(out / "ckpt_last.pt", weights_only=False)
    assert (last["stage"], last["step"], last["args"]["max_minutes"], last["args"]["stage"]) == (1, 4, [5.0], "1")
    best = (out / "ckpt_best.pt").read_bytes()
    train.main(["--out", str(out), "--resume"])  # a finished stage-1 run: nothing more to train
    assert "stage 2" not in capsys.readouterr().out
    assert (out / "ckpt_best.pt").read_bytes() == best and torch.load(out / "ckpt_best.pt", weights_only=False)["stage"] == 1
    assert {r["stage"] for r in read_log(out / "log.csv")} == {"1"}
    with pytest.raises(SystemExit, match="trains --stage 1, and a resumed run keeps its stages"):
        train.main(["--out", str(out), "--resume", "--stage", "2"])


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
    (["--speed", "0.8", "1.2"], "--speed, .* need --dynamic-mix"),
    (["--absent", "0.1"], "--absent, .* need --dynamic-mix"),
    (["--dynamic-mix", "--speed", "1.2", "0.8"], "speed low <= high"),
])
def test_bad_invocations_are_one_line_errors(corpus, tmp_path, argv, message):
    argv = small(corpus, tmp_path / "r") + argv
    with pytest.raises(SystemExit, match=message):
        train.main(argv)


def test_default_run_folder_is_the_repositorys_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    last = REPO / "runs" / "no-such-corpus-small-masked" / "ckpt_last.pt"
    with pytest.raises(SystemExit, match=re.escape(f"{last} does not exist")):
        train.main(["--data", "/nowhere/no-such-corpus", "--resume"])


def test_baselines_train_with_the_same_code_on_the_same_masker(corpus, tmp_path, stage1):
    masker = lambda weights: {k: v for k, v in weights.items() if not k.startswith("dit.")}
    for start in ("mixture", "noise"):
        out = tmp_path / start
        train.main(small(corpus, out, steps=(2,)) + ["--start", start, "--stage", "2", "--stage1", str(stage1),
                                                      "--lr", "3"])  # a step size that can only hurt
        ckpt = torch.load(out / "ckpt_best.pt", weights_only=False)
        assert ckpt["config"]["start"] == start and ckpt["stage"] == 2
        assert same(masker(ckpt["model"]), masker(torch.load(stage1, weights_only=False)["ema"]))
        log = read_log(out / "log.csv")
        assert [r["step"] for r in log] == ["0", "2"]  # stage 2 validates its start before training
        assert ckpt["step"] == int(max(log, key=lambda r: float(r["dev_flow1"]))["step"])
    log = read_log(tmp_path / "mixture" / "log.csv")  # the start is the mixture: one step returns it
    assert float(log[0]["dev_flow1"]) == pytest.approx(float(log[0]["dev_mixture"]), abs=0.01)
    assert torch.load(tmp_path / "mixture" / "ckpt_best.pt", weights_only=False)["step"] == 0  # training only hurt


def test_stage2_on_a_stage1_takes_the_dit_of_an_explicit_config_and_refuses_a_conflict(corpus, tmp_path, stage1):
    saved = torch.load(stage1, weights_only=False)
    train.main(small(corpus, tmp_path / "small", steps=(1,), config="small") + ["--stage", "2", "--stage1", str(stage1)])
    cfg = torch.load(tmp_path / "small" / "ckpt_best.pt", weights_only=False)["config"]
    assert {k: cfg[k] for k in DIT_FIELDS} == {k: getattr(CONFIGS["small"], k) for k in DIT_FIELDS}
    assert {k: v for k, v in cfg.items() if k not in DIT_FIELDS} == {k: v for k, v in saved["config"].items()
                                                                     if k not in DIT_FIELDS}
    assert CONFIGS["small"].dit_width != saved["config"]["dit_width"]  # so the preset did change the DiT
    train.main(small(corpus, tmp_path / "own", steps=(1,), config=None) + ["--stage", "2", "--stage1", str(stage1)])
    assert torch.load(tmp_path / "own" / "ckpt_best.pt", weights_only=False)["config"] == saved["config"]
    for flags in (["--spk-dim", "32"], ["--mask-wave-loss", "0.5"]):  # what stage 1 trained with is not ours to change
        conflict = " ".join(flags)
        with pytest.raises(SystemExit, match=f"was trained with other stage-1 settings: {conflict} \\(it has "):
            train.main(small(corpus, tmp_path / "bad", steps=(1,), config=None) + ["--stage", "2", "--stage1",
                                                                                   str(stage1), *flags])
        assert not (tmp_path / "bad").exists()
    for stage in ("1", "all"):  # a stage-1 checkpoint is what a stage 2 starts from
        with pytest.raises(SystemExit, match="--stage1 PATH goes with --stage 2"):
            train.main(small(corpus, tmp_path / "both", steps=(2,)) + ["--stage", stage, "--stage1", str(stage1)])


CRASHING_TRAIN = """import sys, train
from test_train import crash_at
train.save_checkpoint = crash_at(2, 2)
train.main()
"""


def torchrun(script, *argv):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29517", str(script), *map(str, argv), "--device", "cpu"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"})


@pytest.mark.slow
def test_torchrun_two_processes_resume_bit_exactly(corpus, tmp_path, stage1):
    """DistributedDataParallel on CPU (gloo): the same script, two ranks, only rank 0 writes, each rank
    keeps its own RNG (stage 2 draws t), and a resumed run ends where an uninterrupted one does."""
    argv = lambda out: [*small(corpus, out, steps=(3,), batch=1), "--stage", "2", "--stage1", stage1,
                        "--max-minutes", "10"]  # the ranks agree on the budget every step
    r = torchrun(TRAIN_PY, *argv(tmp_path / "a"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("parameters,") == 1  # one process prints
    (tmp_path / "crash.py").write_text(CRASHING_TRAIN)
    r = torchrun(tmp_path / "crash.py", *argv(tmp_path / "b"))
    assert r.returncode != 0 and "simulated crash" in r.stderr
    rng = torch.load(tmp_path / "b" / "ckpt_last.pt", weights_only=False)["rng"]  # step 0 of stage 2
    assert len(rng) == 2 and not torch.equal(rng[0]["torch"], rng[1]["torch"])
    r = torchrun(TRAIN_PY, "--out", tmp_path / "b", "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = weights(tmp_path / "a" / "ckpt_last.pt"), weights(tmp_path / "b" / "ckpt_last.pt")
    assert a[:2] == b[:2] == (2, 3)
    assert same(a[2], b[2]) and same(a[3], b[3]) and same(a[4], b[4])
    with pytest.raises(SystemExit, match="written by 2 training process"):  # not resumable by one process
        train.main(["--out", str(tmp_path / "b"), "--resume"])

# --- precision, the schedule and the average ---


def test_bf16_autocast_only_on_cuda_with_amp():
    assert not train.parse_args([]).amp  # fp32 by default
    for device, amp in (("cpu", False), ("cpu", True), ("cuda", False)):
        assert isinstance(train.autocast(torch.device(device), amp), contextlib.nullcontext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" on a machine without a GPU
        context = train.autocast(torch.device("cuda"), True)
    assert isinstance(context, torch.autocast) and (context.device, context.fast_dtype) == ("cuda", torch.bfloat16)


def test_get_lr_corners():
    args = SimpleNamespace(lr=1e-3, warmup=10)
    lr = lambda step: train.get_lr(step, 110, args)
    assert lr(0) == pytest.approx(1e-4)  # warm-up: (step + 1) / warmup of the peak
    assert lr(9) == pytest.approx(1e-3) and lr(10) == pytest.approx(1e-3)  # the peak, on both sides
    assert lr(60) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way down the cosine
    assert lr(110) == pytest.approx(1e-4) and lr(500) == pytest.approx(1e-4)  # the floor, lr / 10, and after


@pytest.mark.parametrize("step, d", [(0, 0.1), (5, 6 / 15), (100000, 0.999)])  # d = min(decay, (1 + s) / (10 + s))
def test_update_ema_by_hand(step, d):
    torch.manual_seed(0)
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in ema.parameters()]
    train.update_ema(ema, model, step, 0.999)
    for e, e0, p in zip(ema.parameters(), before, model.parameters()):
        assert torch.allclose(e, d * e0 + (1 - d) * p, atol=1e-7)


def test_dynamic_mix_trains_on_fresh_mixtures_and_resumes_with_them(corpus, tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(train.data, "DynamicMix", lambda *a, **kw: built.append(kw) or DynamicMix(*a, **kw))
    train.main(small(corpus, tmp_path / "dm", steps=(2,)) + ["--dynamic-mix", "--speed", "0.8", "1.2", "--absent", "0.2"])
    assert len(built) == 1 and built[0]["segment"] == 0.5 and built[0]["mix_type"] == "clean"
    assert torch.load(tmp_path / "dm" / "ckpt_last.pt", weights_only=False)["args"]["dynamic_mix"]
    train.main(["--out", str(tmp_path / "dm"), "--resume"])
    assert len(built) == 2 and built[1]["absent"] == 0.2 and built[1]["speed"] == [0.8, 1.2]  # the run's own


@pytest.mark.slow
def test_gpu_train_script_trains_and_brings_back_a_checkpoint(corpus, tmp_path):
    """docs/research/gpu_train.sh (DEVICE=cpu, tiny preset): both stages train with dynamic mixing, and the
    checkpoint it brings back loads for evaluation; without a corpus, or over a result, one error line."""
    env = {**os.environ, "DEVICE": "cpu", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    script = lambda *argv, data=corpus: subprocess.run(["bash", REPO / "docs" / "research" / "gpu_train.sh", *map(str, argv)],
                                                       env={**env, "DATA": str(data)}, capture_output=True, text=True,
                                                       timeout=300)
    r = script(tmp_path / "out", "tiny", 2, 2, 5, 5, "--config", "tiny", "--batch-size", "2", "--workers", "0",
               "--segment", "0.5", "--enroll-segment", "0.5", "--eval-examples", "2", "--eval-every", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    common.load_model(tmp_path / "out" / "tiny.pt", torch.device("cpu"))  # what eval.py will read
    rows = list(csv.DictReader((tmp_path / "out" / "tiny_log.csv").read_text().splitlines()))
    assert {r["stage"] for r in rows} == {"1", "2"} and rows[-1]["step"] == "2"
    for argv, data in (((tmp_path / "new", "tiny"), tmp_path / "nothing"), ((tmp_path / "out", "tiny"), corpus)):
        r = script(*argv, 2, 2, 5, 5, data=data)  # no corpus; a result already there is never overwritten
        assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
