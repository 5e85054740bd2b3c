"""End-to-end tests of sample.py on a tiny untrained checkpoint (conftest.py): real-world input (odd
rates, stereo, long, quiet, compressed), every bad input (one `error:` line, exit 2, inputs
untouched), the default checkpoint, the chunked extraction, bf16, SI-SDR against closed-form values."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings, strategies as st

import data
import sample
from conftest import save_tiny
from mask2flow import CONFIGS, FiLM, Mask2Flow, si_sdr

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
    assert np.abs(y).max() == pytest.approx(sample.FULL_SCALE, abs=1e-6)
    assert sample.fit_full_scale(np.array([0.5, -0.2], np.float32))[1] == 1.0  # quiet output: untouched

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


def test_a_flow_that_kept_its_untrained_start_says_so(tmp_path, capsys):
    """Stage 2 at step 0 (its untrained start was its best on dev) returns the mask: loading says so."""
    sample.load_model(save_tiny(tmp_path / "start.pt"), torch.device("cpu"))
    assert "kept its untrained start" in capsys.readouterr().out
    sample.load_model(save_tiny(tmp_path / "trained.pt", busy=True), torch.device("cpu"))
    assert "untrained" not in capsys.readouterr().out


def test_checkpoints_of_retired_fields_load_where_they_hold_todays_behaviour(tmp_path):
    """Fields since removed from Config load when they hold what is now the only behaviour (the former
    shipped model, `git show f3c16eb:pretrained/demo.pt`, has masker conv, mask_lstm_layers and
    fast_attention); other values are refused."""
    today = retired(tmp_path / "today.pt", speaker="ours", masker="conv", mask_stride=1, fast_attention=True,
                    mask_lstm_layers=2)
    assert sample.load_model(today, torch.device("cpu"))[0].cfg == CONFIGS["tiny"]
    for field, value in (("speaker", "resemblyzer"), ("mask_stride", 2), ("fast_attention", False)):
        with pytest.raises(sample.InputError, match=f"Config.{field} {value!r}, which this mask2flow.py no longer"):
            sample.load_model(retired(tmp_path / f"{field}.pt", **{field: value}), torch.device("cpu"))


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


def fake_checkpoint(path, stage, start, mtime, step=7):
    """What find_checkpoint reads of a checkpoint: its stage and its config's start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": {"start": start}, "stage": stage, "step": step}, path)
    os.utime(path, (mtime, mtime))


def test_default_checkpoint_is_the_newest_mask2flow_model(tmp_path, capsys):
    runs, pretrained = tmp_path / "runs", tmp_path / "demo.pt"
    with pytest.raises(sample.InputError, match="train one with"):
        sample.find_checkpoint(runs, pretrained)
    pretrained.touch()
    assert sample.find_checkpoint(runs, pretrained) == pretrained
    assert capsys.readouterr().out.count("\n") == 1  # says which, and why, in one line
    fake_checkpoint(runs / "m2f-old" / "ckpt_best.pt", 2, "masked", 1000)
    fake_checkpoint(runs / "m2f" / "ckpt_best.pt", 2, "masked", 2000, step=300)
    fake_checkpoint(runs / "m2f-running" / "ckpt_last.pt", 2, "masked", 5000)  # only a best is a model to use
    fake_checkpoint(runs / "mixture" / "ckpt_best.pt", 2, "mixture", 3000)  # the baselines
    fake_checkpoint(runs / "noise" / "ckpt_best.pt", 2, "noise", 3000)
    fake_checkpoint(runs / "control" / "ckpt_best.pt", 1, "masked", 4000)  # stage 1 only: the fair control
    (runs / "broken").mkdir()
    (runs / "broken" / "ckpt_best.pt").write_bytes(b"not a checkpoint")
    assert sample.find_checkpoint(runs, pretrained) == runs / "m2f" / "ckpt_best.pt"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "m2f/ckpt_best.pt" in out and "step 300" in out
    for run in ("m2f", "m2f-old"):  # no Mask2Flow run left: the shipped model, never a baseline
        (runs / run / "ckpt_best.pt").unlink()
    assert sample.find_checkpoint(runs, pretrained) == pretrained


def test_default_checkpoint_and_corpus_do_not_depend_on_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_checkpoint(tmp_path / "runs" / "here" / "ckpt_best.pt", 2, "masked", 9e9)  # newest, but not the repo's
    repo = Path(sample.__file__).resolve().parent
    found = sample.find_checkpoint()
    assert repo in found.resolve().parents and tmp_path not in found.resolve().parents
    assert sample.RUNS == repo / "runs" and data.resolve_root("demo") == repo / "data" / "demo"

# --- chunked extraction ---


class PerWindow(torch.nn.Module):
    """Stands in for the model: the mixture is the sample index, so each call knows its window; it
    returns a constant, different for every window, and records (start, length, steps)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.windows = []

    def extract(self, mix, ref, ref_lengths=None, steps=1, lengths=None):
        self.windows.append((int(mix[0, 0]), mix.shape[-1], steps))
        return torch.full_like(mix, float(len(self.windows)))  # window i returns i + 1


@settings(max_examples=30, deadline=None)
@given(L=st.integers(1, 5000), chunk=st.integers(10, 1000), steps=st.integers(0, 4))
def test_cross_fade_of_windows(L, chunk, steps):
    """Normalised overlap-add of windows that disagree: where one window covers a sample, its output;
    elsewhere a value between those of the windows that cover it, which, where two overlap, moves
    from one to the other over at least `fade` samples (never a jump). Every sample is covered,
    every window is at most a chunk long and starts chunk - fade after the one before (but the last,
    which ends at L)."""
    model = PerWindow()
    y = sample.extract_long(model, np.arange(L, dtype=np.float32), np.zeros(10, np.float32), steps, chunk)
    assert y.shape == (L,) and {k for _, _, k in model.windows} == {steps}
    fade = max(1, int(chunk * sample.OVERLAP))
    starts = [s for s, _, _ in model.windows]
    assert starts[0] == 0 and starts[-1] + model.windows[-1][1] == L and max(n for _, n, _ in model.windows) <= chunk
    assert all(b - a == chunk - fade for a, b in zip(starts[:-2], starts[1:-1]))
    cover = np.zeros((len(starts), L), bool)  # window i (output i + 1) covers sample n
    for i, (s, n, _) in enumerate(model.windows):
        cover[i, s:s + n] = True
    out = np.arange(1, len(starts) + 1.0)[:, None]
    low, high = np.where(cover, out, np.inf).min(0), np.where(cover, out, -np.inf).max(0)
    assert np.isfinite(low).all() and (low - 1e-5 <= y).all() and (y <= high + 1e-5).all()
    alone = cover.sum(0) == 1
    assert (y[alone] == low[alone]).all()
    if cover.sum(0).max() == 2:  # (a last window that nearly repeats the one before makes three)
        rounding = 2 * np.finfo(np.float32).eps * len(starts)  # of float32 values up to len(starts)
        assert np.abs(np.diff(y)).max(initial=0) <= 1 / fade + rounding  # outputs 1 apart: a ramp of >= fade


def test_chunked_equals_whole_away_from_the_seams():
    """A random mask-only model whose masker depends on the speaker and on its context (FiLM weights no
    longer zero), on a clip 4.3 windows of 6 s long. Further from the seams than the masker sees
    (its TCN reaches about 2 s either side), chunked and whole-file outputs agree to 89 dB here:
    only each window's loudness normalisation differs. Windows misplaced by 16 samples (1 ms) agree
    to -2 dB, an overlap-add not divided by its summed weights to 11 dB; 40 dB lies between. Over
    the whole clip, cross-fades included, they agree to 25 dB. The DiT is left at zero: its absolute
    positions restart in every window, which moves a random DiT's output far more than this."""
    torch.manual_seed(0)
    model = Mask2Flow(CONFIGS["tiny"]).eval()
    for m in model.modules():
        if isinstance(m, FiLM):
            torch.nn.init.normal_(m.linear.weight, std=0.3)
    sr, chunk = 16000, 6 * 16000
    mix = (voice(25.8, sr) + voice(25.8, sr, f0=210, seed=1)).astype(np.float32)
    ref = voice(1.0, sr, seed=2).astype(np.float32)
    whole = model.extract(torch.from_numpy(mix)[None], torch.from_numpy(ref)[None], steps=0)[0].numpy()
    chunked = sample.extract_long(model, mix, ref, steps=0, chunk=chunk)
    assert len(mix) > 4 * chunk and np.abs(whole).max() > 0.01
    agree = lambda sel: 10 * np.log10((whole[sel] ** 2).sum() / ((chunked[sel] - whole[sel]) ** 2).sum())
    fade = int(chunk * sample.OVERLAP)
    starts = list(range(0, len(mix) - chunk, chunk - fade)) + [len(mix) - chunk]
    seams = np.array([e for s in starts for e in (s, s + chunk) if 0 < e < len(mix)])
    cfg = model.cfg  # how far the masker sees: the 2-D convs' 3 frames, the TCN's dilations, one STFT window
    reach = (3 + sum(2 ** (i % 8) for i in range(cfg.mask_blocks))) * cfg.hop + cfg.n_fft
    far = np.abs(np.arange(len(mix))[:, None] - seams).min(1) >= max(fade, reach)
    assert agree(far) > 40
    assert agree(np.ones(len(mix), bool)) > 15  # and everywhere, the cross-fades included


# --- bf16 autocast ---


def test_bf16_extraction_stays_close_to_fp32(busy_ckpt):
    """bf16 autocast (the --bf16 path, checked here on the CPU) changes the output by little:
    its SI-SDR against the fp32 output stays above BF16_MIN_DB."""
    model, _ = sample.load_model(busy_ckpt, torch.device("cpu"))
    mixes = [voice(1.5, 16000, 120, seed=1).astype(np.float32) + voice(1.5, 16000, 210, seed=2).astype(np.float32),
             voice(1.1, 16000, 180, seed=3).astype(np.float32)]
    refs = [voice(1.0, 16000, 125, seed=4).astype(np.float32)] * 2
    fp32, bf16 = (sample.extract_batch(model, mixes, refs, 1, bf16=b) for b in (False, True))
    for a, b in zip(fp32, bf16):
        assert np.abs(a - b).max() > 0  # autocast did run in bf16
        assert si_sdr(torch.from_numpy(b)[None], torch.from_numpy(a)[None]).item() > BF16_MIN_DB


BF16_MIN_DB = 20  # bf16 keeps 8 bits of mantissa: about 40 dB per rounding, a few layers deep

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
