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
