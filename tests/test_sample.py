"""End-to-end tests of sample.py on a tiny untrained checkpoint (conftest.py): real-world input (odd
rates, stereo, long, quiet, compressed), every bad input (one `error:` line, exit 2, inputs
untouched), SI-SDR against closed-form values. test_common.py tests what sample.py calls."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings, strategies as st

import common
import sample
from conftest import save_tiny
from mask2flow import si_sdr

SAMPLE = Path(__file__).resolve().parents[1] / "sample.py"


def voice(seconds, rate, f0=140.0, seed=0, channels=1):
    """A speech-like test signal: a harmonic tone with a syllable-rate envelope, plus a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    x = 0.1 * x + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return np.stack([x, 0.8 * x], axis=1) if channels == 2 else x


def write(path, x, rate=16000, subtype="FLOAT"):
    sf.write(path, x, rate, subtype=subtype)
    return path


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, str(SAMPLE), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)

# --- real-world input, through the real entry point ---


@pytest.mark.slow
@pytest.mark.parametrize("rate,channels", [(8000, 1), (22050, 2), (44100, 1)])
def test_odd_rates_stereo_and_long_input(tmp_path, ckpt, rate, channels):
    mix = write(tmp_path / "mix.wav", voice(2.3, rate, channels=channels) + voice(2.3, rate, f0=210, seed=1,
                                                                                  channels=channels), rate)
    ref = write(tmp_path / "ref.wav", voice(1.0, rate, seed=2), rate)
    r = run_cli(mix, ref, "--ckpt", ckpt, "--chunk-seconds", 1, "--device", "cpu")  # 2.3 s = three chunks
    assert r.returncode == 0, r.stderr
    out = tmp_path / "mix_extracted.wav"
    assert f"wrote {out}" in r.stdout and f"checkpoint: {ckpt}" in r.stdout
    y, out_rate = sf.read(out)
    assert out_rate == rate and y.shape == (sf.info(mix).frames,)  # mono, the input's rate and length
    assert np.isfinite(y).all() and 0 < np.abs(y).max() <= 1


def test_output_level_follows_input_level(tmp_path, ckpt):
    """The model normalises loudness; the output must come back at the input's scale."""
    x, ref = voice(1.5, 16000) + voice(1.5, 16000, f0=210, seed=1), voice(1.0, 16000, seed=2)
    outs = []
    for gain in (1.0, 1e-3):  # normal and very quiet (-80 dB relative)
        mix = write(tmp_path / f"mix{gain}.wav", gain * x)
        assert sample.main([str(mix), str(write(tmp_path / "ref.wav", ref)), "--ckpt", str(ckpt)]) == 0
        outs.append(sf.read(tmp_path / f"mix{gain}_extracted.wav")[0])
    assert np.abs(outs[0]).max() > 1e-3
    np.testing.assert_allclose(outs[1], 1e-3 * outs[0], rtol=1e-3, atol=1e-3 * 1e-4)


def test_loud_output_is_scaled_not_clipped(tmp_path, ckpt, capsys):
    """A full-scale square wave rings past +-1 when resampled 44.1 -> 16 -> 44.1 kHz; with a mask of
    ones the output is that, and must come out scaled down to FULL_SCALE rather than clipped."""
    state = torch.load(ckpt)
    state["ema"]["masker.out.bias"].fill_(30.0)  # sigmoid(30) = 1: mask-only output = the mixture
    torch.save(state, tmp_path / "ones.pt")
    t = np.arange(44100 * 2) / 44100
    mix = write(tmp_path / "mix.wav", 0.999 * np.sign(np.sin(2 * np.pi * 220 * t) + 1e-9), 44100)
    ref = write(tmp_path / "ref.wav", voice(1.0, 16000))
    assert sample.main([str(mix), str(ref), "--ckpt", str(tmp_path / "ones.pt"), "--steps", "0"]) == 0
    assert "scaled down" in capsys.readouterr().out
    y = sf.read(tmp_path / "mix_extracted.wav")[0]
    assert np.abs(y).max() == pytest.approx(common.FULL_SCALE, abs=1e-6)
    assert common.fit_full_scale(np.array([0.5, -0.2], np.float32))[1] == 1.0  # quiet output: untouched

@pytest.mark.parametrize("fmt,subtype,written", [("MP3", "MPEG_LAYER_III", "PCM_16"), ("OGG", "VORBIS", "PCM_16"),
                                                 ("FLAC", "PCM_24", "PCM_24")])
def test_compressed_input_extracts_to_a_wav(tmp_path, ckpt, fmt, subtype, written):
    """MP3 and Vorbis are no WAV encodings: the output takes 16-bit PCM; FLAC's PCM depth is kept.
    Either way a WAV at the input's rate and length."""
    rate = 22050
    mix = tmp_path / f"mix.{fmt.lower()}"
    sf.write(mix, voice(1.5, rate) + voice(1.5, rate, f0=210, seed=1), rate, format=fmt, subtype=subtype)
    ref = write(tmp_path / "ref.wav", voice(1.0, 16000, seed=2))
    assert sample.main([str(mix), str(ref), "--ckpt", str(ckpt)]) == 0
    out, frames = sf.info(tmp_path / "mix_extracted.wav"), sf.info(mix).frames
    assert (out.format, out.subtype, out.samplerate, out.frames) == ("WAV", written, rate, frames)
    assert abs(frames - 1.5 * rate) < 0.1 * rate  # the decoder's length, give or take an MP3 frame or two
    assert 0 < np.abs(sf.read(tmp_path / "mix_extracted.wav")[0]).max() <= 1

# --- bad input: one line, exit 2, inputs byte-identical ---


BAD_INPUTS = {  # case -> (what to do to the mix/ref/argv, a fragment of the message)
    "missing mix": (lambda d: (d / "nope.wav", d / "ref.wav", []), "nope.wav"),
    "corrupt mix": (lambda d: ((d / "bad.wav").write_bytes(b"RIFF\x00\x01garbage" * 50) and d / "bad.wav",
                               d / "ref.wav", []), "bad.wav"),
    "empty mix": (lambda d: (write(d / "empty.wav", np.zeros(0)), d / "ref.wav", []), "empty.wav"),
    "silent mix": (lambda d: (write(d / "silent.wav", np.zeros(16000), subtype="PCM_16"), d / "ref.wav", []),
                   "silent.wav"),
    "NaN mix": (lambda d: (write(d / "nan.wav", np.where(np.arange(16000) == 500, np.nan, voice(1, 16000))),
                           d / "ref.wav", []), "nan.wav"),
    "short ref": (lambda d: (d / "mix.wav", write(d / "short.wav", voice(0.3, 16000)), []), "short.wav"),
    "-o is the mix": (lambda d: (d / "mix.wav", d / "ref.wav", ["-o", d / "mix.wav"]), "mix.wav"),
    "-o is the ref": (lambda d: (d / "mix.wav", d / "ref.wav", ["-o", os.link(d / "ref.wav", d / "link.wav")
                                                                 or d / "link.wav"]), "ref.wav"),  # a hard link
    "unwritable -o": (lambda d: (d / "mix.wav", d / "ref.wav", ["-o", "/proc/out.wav"]), "cannot write /proc/out.wav"),
    "missing ckpt": (lambda d: (d / "mix.wav", d / "ref.wav", ["--ckpt", d / "none.pt"]), "none.pt"),
    "foreign ckpt": (lambda d: (d / "mix.wav", d / "ref.wav",
                                ["--ckpt", torch.save({"model": {}}, d / "other.pt") or d / "other.pt"]),
                     "is not a Mask2Flow checkpoint"),
    "corrupt ckpt": (lambda d: (d / "mix.wav", d / "ref.wav",
                                ["--ckpt", (d / "bad.pt").write_bytes(b"not a checkpoint") and d / "bad.pt"]),
                     "bad.pt"),
    "retired layout": (lambda d: (d / "mix.wav", d / "ref.wav", ["--ckpt", retired(d / "lstm.pt", masker="lstm")]),
                       "Config.masker 'lstm', which this mask2flow.py no longer builds"),
}


def retired(path, **fields):
    """The tiny checkpoint with config fields that mask2flow.py no longer has."""
    state = torch.load(save_tiny(path))
    state["config"].update(fields)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_line_error(tmp_path, ckpt, capsys, case):
    write(tmp_path / "mix.wav", voice(1.0, 16000))
    write(tmp_path / "ref.wav", voice(1.0, 16000, seed=2))
    make, fragment = BAD_INPUTS[case]
    mix, ref, extra = make(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    assert sample.main([str(mix), str(ref), "--ckpt", str(ckpt), *map(str, extra)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, nothing changed


@pytest.mark.slow
def test_bad_input_through_the_entry_point(tmp_path, ckpt):
    mix = tmp_path / "mix.wav"
    mix.write_bytes(b"\x00\x01corrupt" * 100)
    ref = write(tmp_path / "ref.wav", voice(1.0, 16000))
    r = run_cli(mix, ref, "--ckpt", ckpt)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert mix.read_bytes() == b"\x00\x01corrupt" * 100


# --- SI-SDR against closed-form values ---


@settings(max_examples=25, deadline=None)
@given(L=st.integers(256, 4000), snr_db=st.floats(-20, 30), gain=st.floats(0.1, 10), seed=st.integers(0, 2**16))
def test_si_sdr_closed_form(L, snr_db, gain, seed):
    """est = ref + noise orthogonal to ref (both zero-mean): SI-SDR = 10 log10(|ref|^2 / |noise|^2),
    whatever the scale of est or of ref (to 1e-4 dB: si_sdr adds eps = 1e-8 to both energies)."""
    g = torch.Generator().manual_seed(seed)
    ref, noise = torch.randn(2, L, generator=g, dtype=torch.float64)
    ref, noise = ref - ref.mean(), noise - noise.mean()
    noise = noise - (noise @ ref) / (ref @ ref) * ref  # orthogonal to ref, still zero-mean
    noise = noise * (ref.norm() / noise.norm()) * 10 ** (-snr_db / 20)  # |ref|^2 / |noise|^2 = snr
    est = (ref + noise)[None]
    assert si_sdr(est, ref[None]).item() == pytest.approx(snr_db, abs=1e-4)
    assert si_sdr(gain * est, ref[None]).item() == pytest.approx(snr_db, abs=1e-4)  # scale invariant
    assert si_sdr(est + 3.0, gain * ref[None]).item() == pytest.approx(snr_db, abs=1e-4)  # and offset
