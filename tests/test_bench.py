"""Tests of bench.py on the CPU: its table and JSON, a checkpoint timed beside the presets, and
--compile and --bf16 reaching every part of the model."""

import json

import pytest
import torch

import bench


@pytest.mark.slow
def test_bench_tiny_on_cpu(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--configs", "tiny", "--device", "cpu", "--repeats", "1", "--steps", "1", "2", "-o", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["config"], r["device"]) for r in rows] == [("tiny", "cpu")]
    assert set(rows[0]["rtf"]) == {"0", "1", "2"} and all(v > 0 for v in rows[0]["rtf"].values())
    assert "1 step / mask-only" in capsys.readouterr().out


def test_bench_times_a_checkpoint_beside_the_presets(tmp_path, ckpt):
    """--ckpt adds the trained model (any layout), named after its run folder."""
    out = tmp_path / "bench.json"
    assert bench.main(["--configs", "tiny", "--ckpt", str(ckpt), "--device", "cpu", "--repeats", "1", "--steps", "1",
                       "-o", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["config"], r["checkpoint"]) for r in rows] == [("tiny", None), (ckpt.parent.name, str(ckpt))]
    assert set(rows[1]["rtf"]) == {"0", "1"}


def test_bench_compile_on_cpu_without_a_compiler_says_so(tmp_path, monkeypatch, capsys):
    """Inductor builds C++ for the cpu: without a compiler, one error line instead of a traceback."""
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert bench.main(["--configs", "tiny", "--device", "cpu", "--compile", "-o", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "C++ compiler" in err[0] and not (tmp_path / "b.json").exists()


def test_bench_compile_and_bf16_reach_every_part(tmp_path, monkeypatch):
    """--compile times a copy with the STFT, the iSTFT, the speaker encoder, the masker and the DiT
    compiled beside the eager model, and the report says which precision and mode each row timed."""
    compiled = []

    def compile_nothing(f, mode=None):  # records what would be compiled; compiling takes minutes on a CPU
        compiled.append((getattr(f, "__name__", type(f).__name__), mode))
        return f
    monkeypatch.setattr(torch, "compile", compile_nothing)
    out = tmp_path / "bench.json"
    assert bench.main(["--configs", "tiny", "--device", "cpu", "--repeats", "1", "--steps", "1", "--compile", "--bf16",
                       "-o", str(out)]) == 0
    assert compiled == [(name, "reduce-overhead") for name in ("spec", "wav", "embed_speaker", "Masker", "DiT")]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["config"], r["compile"], r["bf16"]) for r in rows] == [("tiny", False, True),
                                                                     ("tiny, torch.compile", True, True)]


def test_bench_train_times_a_step_of_each_recipe_side_by_side(tmp_path, ckpt, capsys):
    """--train: one row a recipe (--set changes the presets' fields; --ckpt adds its recipe), ratios to --ckpt's."""
    out = tmp_path / "train.json"
    assert bench.main(["--train", "--configs", "tiny", "--set", "spk_mels=32", "spk_stride=2", "--ckpt", str(ckpt),
                       "--repeats", "1", "-o", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["recipe"] for r in rows] == ["tiny spk_mels=32 spk_stride=2", f"{ckpt.parent.name}/{ckpt.name}"]
    assert all(r["seconds"] > 0 for r in rows) and rows[0]["speaker_parameters"] < rows[1]["speaker_parameters"]
    assert "1.00x" in capsys.readouterr().out
    assert bench.main(["--train", "--configs", "tiny", "--set", "spk_mel=32", "-o", str(out)]) == 2  # no such field
    assert bench.main(["--train", "--configs", "tiny", "--set", "spk_mels=many", "-o", str(out)]) == 2  # not an int


def test_bench_curve_reads_each_run_at_equal_cpu_minutes(tmp_path, capsys):
    """--curve: dev SI-SDRi (mask minus mixture) interpolated at the CPU-minutes asked; past a run's end, said so."""
    log = tmp_path / "run" / "log.csv"
    log.parent.mkdir()
    log.write_text("stage,step,train_loss,dev_mixture,dev_mask,dev_flow1,minutes,cpu_minutes\n"
                   "1,100,0.1,0.5,1.5,1.5,20,10\n1,200,0.1,0.5,3.5,3.5,40,20\n2,0,0.1,0.5,3.5,3.5,1,1\n")
    assert bench.main(["--curve", str(log.parent), "--at", "5", "15", "30", "-o", str(tmp_path / "c.json")]) == 0
    text = capsys.readouterr().out
    assert "0.50 dB" in text and "2.00 dB" in text and "not reached" in text
    assert json.loads((tmp_path / "c.json").read_text())[str(log.parent)]["cpu_minutes"] == [0.0, 10.0, 20.0]
    assert bench.main(["--curve", str(tmp_path / "none")]) == 2
