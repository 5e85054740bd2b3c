"""Tests of common.py: the default checkpoint, loading checkpoints (old configs included), the chunked
and batched extraction of whole recordings, bf16, and reading audio files of any rate and channel count."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings, strategies as st

import common
import data
from common import AudioError, load_audio
from conftest import save_tiny
from mask2flow import CONFIGS, FiLM, Mask2Flow, si_sdr
from test_sample import retired, voice

# --- checkpoints ---


def test_a_flow_that_kept_its_untrained_start_says_so(tmp_path, capsys):
    """Stage 2 at step 0 (its untrained start was its best on dev) returns the mask: loading says so."""
    common.load_model(save_tiny(tmp_path / "start.pt"), torch.device("cpu"))
    assert "kept its untrained start" in capsys.readouterr().out
    common.load_model(save_tiny(tmp_path / "trained.pt", busy=True), torch.device("cpu"))
    assert "untrained" not in capsys.readouterr().out


def test_checkpoints_of_retired_fields_load_where_they_hold_todays_behaviour(tmp_path):
    """Fields since removed from Config load when they hold what is now the only behaviour (the former
    shipped model, `git show f3c16eb:pretrained/demo.pt`, has masker conv, mask_lstm_layers and
    fast_attention; a run with the auxiliary speaker classifier, spk_loss and its weights); other values are
    refused."""
    today = retired(tmp_path / "today.pt", speaker="ours", masker="conv", mask_stride=1, fast_attention=True,
                    mask_lstm_layers=2)
    assert common.load_model(today, torch.device("cpu"))[0].cfg == CONFIGS["tiny"]
    spk = retired(tmp_path / "spk.pt", spk_loss=0.01, spk_classes=3)  # the retired speaker classifier's run
    state = torch.load(spk)
    for weights in (state["model"], state["ema"]):
        weights.update({"classifier.weight": torch.randn(3, 64), "classifier.bias": torch.zeros(3)})
    torch.save(state, spk)
    model = common.load_model(spk, torch.device("cpu"))[0]
    assert model.cfg == CONFIGS["tiny"] and not any(k.startswith("classifier") for k in model.state_dict())
    for field, value in (("speaker", "resemblyzer"), ("mask_stride", 2), ("fast_attention", False)):
        with pytest.raises(common.InputError, match=f"Config.{field} {value!r}, which this mask2flow.py no longer"):
            common.load_model(retired(tmp_path / f"{field}.pt", **{field: value}), torch.device("cpu"))


def fake_checkpoint(path, stage, start, mtime, step=7):
    """What find_checkpoint reads of a checkpoint: its stage and its config's start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": {"start": start}, "stage": stage, "step": step}, path)
    os.utime(path, (mtime, mtime))


def test_default_checkpoint_is_the_newest_mask2flow_model(tmp_path, capsys):
    runs, pretrained = tmp_path / "runs", tmp_path / "demo.pt"
    with pytest.raises(common.InputError, match="train one with"):
        common.find_checkpoint(runs, pretrained)
    pretrained.touch()
    assert common.find_checkpoint(runs, pretrained) == pretrained
    assert capsys.readouterr().out.count("\n") == 1  # says which, and why, in one line
    fake_checkpoint(runs / "m2f-old" / "ckpt_best.pt", 2, "masked", 1000)
    fake_checkpoint(runs / "m2f" / "ckpt_best.pt", 2, "masked", 2000, step=300)
    fake_checkpoint(runs / "m2f-running" / "ckpt_last.pt", 2, "masked", 5000)  # only a best is a model to use
    fake_checkpoint(runs / "mixture" / "ckpt_best.pt", 2, "mixture", 3000)  # the baselines
    fake_checkpoint(runs / "noise" / "ckpt_best.pt", 2, "noise", 3000)
    fake_checkpoint(runs / "control" / "ckpt_best.pt", 1, "masked", 4000)  # stage 1 only: the fair control
    (runs / "broken").mkdir()
    (runs / "broken" / "ckpt_best.pt").write_bytes(b"not a checkpoint")
    assert common.find_checkpoint(runs, pretrained) == runs / "m2f" / "ckpt_best.pt"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "m2f/ckpt_best.pt" in out and "step 300" in out
    for run in ("m2f", "m2f-old"):  # no Mask2Flow run left: the shipped model, never a baseline
        (runs / run / "ckpt_best.pt").unlink()
    assert common.find_checkpoint(runs, pretrained) == pretrained


def test_default_checkpoint_and_corpus_do_not_depend_on_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_checkpoint(tmp_path / "runs" / "here" / "ckpt_best.pt", 2, "masked", 9e9)  # newest, but not the repo's
    repo = Path(common.__file__).resolve().parent
    found = common.find_checkpoint()
    assert repo in found.resolve().parents and tmp_path not in found.resolve().parents
    assert common.RUNS == repo / "runs" and data.resolve_root("demo") == repo / "data" / "demo"

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
    y = common.extract_long(model, np.arange(L, dtype=np.float32), np.zeros(10, np.float32), steps, chunk)
    assert y.shape == (L,) and {k for _, _, k in model.windows} == {steps}
    fade = max(1, int(chunk * common.OVERLAP))
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
    chunked = common.extract_long(model, mix, ref, steps=0, chunk=chunk)
    assert len(mix) > 4 * chunk and np.abs(whole).max() > 0.01
    agree = lambda sel: 10 * np.log10((whole[sel] ** 2).sum() / ((chunked[sel] - whole[sel]) ** 2).sum())
    fade = int(chunk * common.OVERLAP)
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
    model, _ = common.load_model(busy_ckpt, torch.device("cpu"))
    mixes = [voice(1.5, 16000, 120, seed=1).astype(np.float32) + voice(1.5, 16000, 210, seed=2).astype(np.float32),
             voice(1.1, 16000, 180, seed=3).astype(np.float32)]
    refs = [voice(1.0, 16000, 125, seed=4).astype(np.float32)] * 2
    fp32, bf16 = (common.extract_batch(model, mixes, refs, 1, bf16=b) for b in (False, True))
    for a, b in zip(fp32, bf16):
        assert np.abs(a - b).max() > 0  # autocast did run in bf16
        assert si_sdr(torch.from_numpy(b)[None], torch.from_numpy(a)[None]).item() > BF16_MIN_DB


BF16_MIN_DB = 20  # bf16 keeps 8 bits of mantissa: about 40 dB per rounding, a few layers deep

# --- audio files ---


def test_load_audio_errors_name_the_file(tmp_path):
    cases = {"missing.wav": None, "corrupt.wav": b"RIFF\x00\x01garbage", "empty.wav": np.zeros(0),
             "nan.wav": np.full(100, np.nan), "inf.wav": np.r_[np.zeros(50), np.inf]}
    for name, content in cases.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content is not None:
            sf.write(p, content, 16000, subtype="FLOAT")
        with pytest.raises(AudioError, match=name) as e:
            load_audio(p)
        assert "\n" not in str(e.value)


def test_load_audio_downmixes_and_resamples(tmp_path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1000, 2))
    sf.write(tmp_path / "stereo.wav", x, 16000, subtype="FLOAT")
    y, rate = load_audio(tmp_path / "stereo.wav", return_rate=True)
    assert rate == 16000 and y.dtype == np.float32 and np.allclose(y, x.mean(1), atol=1e-6)
    sf.write(tmp_path / "44k.wav", np.sin(np.arange(44100) * 0.01), 44100)
    assert len(load_audio(tmp_path / "44k.wav")) == 16000 and len(load_audio(tmp_path / "44k.wav", None)) == 44100


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([8000, 11025, 22050, 44100, 48000]), st.integers(1, 3000))
def test_resampled_length(rate, n):
    with tempfile.TemporaryDirectory() as tmp:
        sf.write(f"{tmp}/a.wav", np.zeros(n), rate)
        assert len(load_audio(f"{tmp}/a.wav")) == -(-n * 16000 // rate)




def test_truncated_wav_is_read_as_far_as_it_goes_with_one_warning(tmp_path, capsys):
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    sf.write(tmp_path / "full.wav", x, 16000, subtype="PCM_16")
    raw = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[:len(raw) // 2])
    assert len(load_audio(tmp_path / "full.wav")) == 16000 and capsys.readouterr().err == ""
    y = load_audio(tmp_path / "cut.wav")
    err = capsys.readouterr().err.strip().splitlines()
    assert 7900 < len(y) < 8100 and np.allclose(y, x[:len(y)], atol=1e-4)
    assert len(err) == 1 and "truncated" in err[0] and "16000" in err[0]
    sf.write(tmp_path / "s.flac", x, 16000)  # other formats: nothing to compare, no warning
    load_audio(tmp_path / "s.flac")
    assert capsys.readouterr().err == ""
