"""Tests of corpus.py: the real speech in speech/, the plan of the demo corpus (who is held out of
training), the refusals of the builder, and a small build end to end."""
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import corpus
import data
from data import DataError, DynamicMix, LibriMix

ROOT = Path(__file__).resolve().parents[1]
DATA_PY = ROOT / "data.py"
SIZES = dict(corpus.DEMO_SIZES, **{"train-100": 1000})  # the default eval splits, a smaller train-100


def test_real_speech_is_found_and_decoded():
    files = sorted(corpus.SPEECH.glob("librispeech/*/*/*.mp3")) + sorted(corpus.SPEECH.glob("vctk/*/*.flac"))
    assert len(files) == 1353
    for p in files:
        x, rate = sf.read(p, dtype="float32")
        assert rate == 16000 and x.ndim == 1 and len(x) > 16000, p
        assert np.sqrt(np.mean(x ** 2)) > 0.003 and np.isfinite(x).all(), p  # not silent
    for name in ("README.md", "librispeech/SPEAKERS.TXT", "librispeech/LICENSE.TXT"):
        assert (corpus.SPEECH / name).is_file()
    speakers, utterances = corpus.real_speakers(0)
    assert len(speakers) == 24 and len(utterances) == len(files)
    libri = [u for u, x in utterances.items() if x["path"].endswith(".mp3")]
    assert all(utterances[u]["text"] for u in libri)  # every LibriSpeech utterance has its transcript
    assert Counter(s["sex"] for s in speakers) == {"F": 11, "M": 13}


def test_real_speaker_ids_are_unique_and_apart_from_synthetic_ones():
    real, _ = corpus.real_speakers(0)
    ids = [int(s["speaker_ID"]) for s in real]
    assert len(set(ids)) == 24 and sum(i < 10000 for i in ids) == 20  # LibriSpeech keeps its numbers
    assert sorted(i for i in ids if i >= 10000) == [10225, 10226, 10227, 10228]  # VCTK pNNN
    synth = corpus.make_speakers(0, corpus.VOICES)
    assert min(int(s["speaker_ID"]) for s in synth) >= 100000 and len({s["speaker_ID"] for s in synth}) == len(synth)


def test_held_out_real_speakers_are_balanced():
    real, _ = corpus.real_speakers(0)
    sex = {split: Counter(s["sex"] for s in real if s["split"] == split) for split in ("train", "dev", "test")}
    assert sex == {"train": {"F": 8, "M": 8}, "dev": {"F": 1, "M": 2}, "test": {"F": 2, "M": 3}}


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    speakers, utterances, plans = corpus.plan_demo(SIZES, 0, cache)
    by_id = {s["speaker_ID"]: s for s in speakers}
    utts = {split: {u for p in ps for u in p["mixture_ID"].split("_")} for split, ps in plans.items()}
    spk = {split: {by_id[data.speaker_of(u)]["speaker_ID"] for u in us} for split, us in utts.items()}
    return by_id, utterances, plans, utts, spk, cache


def test_plan_sizes_and_kinds(plan):
    by_id, utterances, plans, utts, spk, _ = plan
    assert {k: len(v) for k, v in plans.items()} == SIZES
    kinds = {split: Counter(by_id[s]["kind"] for s in ss) for split, ss in spk.items()}
    assert kinds["test"] == {"real": 5} and set(kinds["test-synth"]) == {"synthetic"}
    assert kinds["dev"]["real"] == 3 and kinds["dev"]["synthetic"] >= 10 and kinds["test-seen"]["real"] == 16
    for split, ps in plans.items():
        for p in ps:  # two speakers of one kind, at LibriMix levels
            a, b = (by_id[data.speaker_of(u)] for u in p["mixture_ID"].split("_"))
            assert a["speaker_ID"] != b["speaker_ID"] and a["kind"] == b["kind"]
            assert all(-33 <= db <= -25 for db in p["levels"])
    dev = [by_id[data.speaker_of(p["mixture_ID"].split("_")[0])]["kind"] for p in plans["dev"][:32]]
    assert Counter(dev) == {"real": 16, "synthetic": 16}  # interleaved: the first dev examples have both


def test_held_out_speakers_and_voices_never_train(plan):
    by_id, utterances, plans, utts, spk, _ = plan
    voices = lambda split: {by_id[s]["base_voice"] for s in spk[split] if by_id[s]["kind"] == "synthetic"}
    assert voices("dev") == {"ked", "dita"} and voices("test-synth") == {"awb", "lj", "pc"}
    assert not (voices("dev") | voices("test-synth")) & voices("train-100")
    assert voices("train-100") == {v for v, spec in corpus.VOICES.items() if spec[3] == "train"}
    real = lambda split: {s for s in spk[split] if by_id[s]["kind"] == "real"}
    assert real("test") == set(corpus.REAL_HELD_OUT["test"]) and real("dev") == set(corpus.REAL_HELD_OUT["dev"])
    assert not (real("dev") | real("test")) & real("train-100") and len(real("train-100")) == 16
    assert not spk["dev"] & spk["test"] and not spk["dev"] & spk["test-synth"]
    assert spk["test-seen"] <= spk["train-100"]


def test_test_seen_utterances_and_sentences_never_train(plan):
    by_id, utterances, plans, utts, spk, _ = plan
    assert not utts["test-seen"] & utts["train-100"]
    text = lambda split, kind: {utterances[u]["text"] for u in utts[split] if utterances[u]["kind"] == kind}
    assert not text("test-seen", "synthetic") & text("train-100", "synthetic")
    assert not text("test-seen", "real") & text("train-100", "real") - {""}  # LibriSpeech
    vctk = lambda split: {u[-4:] for u in utts[split] if 10000 <= int(data.speaker_of(u)) < 100000}  # one number, one text
    assert vctk("test-seen") == {"0011", "0022"} and not vctk("test-seen") & vctk("train-100")
    files = lambda split: {utterances[u]["path"] for u in utts[split]}
    assert not files("test-seen") & files("train-100")


def test_plan_is_deterministic(plan, tmp_path):
    by_id, utterances, plans, utts, spk, _ = plan
    assert corpus.plan_demo(SIZES, 0, plan[-1])[2] == plans
    other = corpus.plan_demo(SIZES, 1, tmp_path)[2]
    assert other["test"] != plans["test"]


def test_demo_refuses_missing_tools_voices_and_foreign_folders(tmp_path, monkeypatch):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a demo corpus"):
        corpus.build_demo(tmp_path, {"train-100": 4})
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    have = corpus.installed_voices()
    monkeypatch.setattr(corpus, "installed_voices", lambda: [v for v in have if v not in ("lp", "ona")])
    with pytest.raises(DataError) as e:
        corpus.build_demo(tmp_path / "demo")
    msg = str(e.value)
    assert "voices lp, ona are missing (packages festvox-ca-ona-hts festvox-italp16k)" in msg
    assert corpus.APT in msg and "\n" not in msg
    monkeypatch.setattr(corpus.shutil, "which", lambda tool: None)
    with pytest.raises(DataError, match="apt-get install flite festival sox festvox-kdlpc16k"):
        corpus.build_demo(tmp_path / "demo")


def test_apt_packages_are_the_voices_packages():
    needed = {"flite", "festival", "sox"} | {spec[0] for spec in corpus.VOICES.values()}
    assert set(corpus.APT_PACKAGES.split()) == needed


def cli(*args):
    return subprocess.run([sys.executable, str(DATA_PY), *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_demo_corpus(tmp_path):
    out, sizes = tmp_path / "demo", ["--train", 30, "--dev", 8, "--test", 8, "--test-synth", 8, "--test-seen", 12]
    r = cli("demo", "--out", out, *sizes)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "real pseudo voices" in r.stdout and "held-out voices: ked, dita (dev)" in r.stdout
    r = cli("check", out)
    assert r.returncode == 0 and "10 CSVs, all ok" in r.stdout, r.stdout
    r = cli("demo", "--out", out, *sizes)
    assert r.returncode == 0 and "is complete" in r.stdout
    r = cli("demo", "--out", out, "--force", *sizes)  # everything from the cache
    assert r.returncode == 0 and "0 spoken" in r.stdout, r.stdout + r.stderr

    speakers = {r["speaker_ID"]: r for r in data.read_csv(out / "speakers.csv")}
    spk = {}
    for split, n in zip(("train-100", "dev", "test", "test-synth", "test-seen"), sizes[1::2]):
        ds = LibriMix(out, split, mix_type="noisy", segment=None)
        assert len(ds.mixtures) == n
        spk[split] = {u.split("-")[0] for m in ds.mixtures for u in m[3]}
        item = ds[0]
        assert item["mix"].shape == item["target"].shape and item["enroll"].abs().max() > 0.01
    held = {s for s, x in speakers.items() if x["split"] != "train"}
    pool = DynamicMix(out, "train-100").utts
    assert not held & spk["train-100"] and not held & set(pool) and set(pool) == spk["train-100"]
    assert {speakers[s]["kind"] for s in spk["test"]} == {"real"} and not spk["test"] & spk["dev"]
    assert {speakers[s]["base_voice"] for s in spk["test-synth"]} <= {"awb", "lj", "pc"}


def test_install_script_installs_what_the_corpus_needs():
    """install.sh's apt list holds every Debian package corpus.py speaks with."""
    script = (Path(__file__).resolve().parents[1] / "install.sh").read_text()
    listed = re.search(r'APT_PACKAGES="([^"]*)"', script).group(1).split()
    assert set(corpus.APT_PACKAGES.split()) <= set(listed)


# --- the voice inventory ---

def test_voices_table():
    uses = Counter(spec[3] for spec in corpus.VOICES.values())
    assert len(corpus.VOICES) >= 12 and set(uses) == {"train", "dev", "test-synth"}
    assert uses["dev"] >= 2 and uses["test-synth"] >= 2 and uses["train"] >= 8
    for voice, spec in {**corpus.VOICES, **corpus.DUPLICATES}.items():
        assert spec[1].split(":")[0] in ("flite", "festival"), voice
    assert all(60 < spec[2] < 300 for spec in corpus.VOICES.values())  # median F0, Hz
    assert not set(corpus.VOICES) & set(corpus.DUPLICATES) and corpus.STATEMENTS_ONLY <= set(corpus.VOICES)


def test_voices_evidence_says_every_voice_is_distinct():
    report = json.loads((ROOT / "docs/evidence/voices.json").read_text())
    cos, voices = report["cosine"], list(corpus.VOICES)
    assert report["n_distinct"] == len(voices) >= 12 and set(voices) <= set(report["distinct"])
    assert all(cos[a][b] <= report["threshold"] == 0.8 for a in voices for b in voices if a != b)
    assert all(cos[v][v] >= 0.85 for v in cos)  # one voice, two sentences
    for dup in corpus.DUPLICATES:  # each left-out voice is the same person as one we keep
        assert max(cos[dup][v] for v in voices) > 0.8, dup
    for v in voices:  # the F0 that centres the pitch grid, measured again
        assert abs(report["voices"][v]["f0_hz"] / corpus.VOICES[v][2] - 1) < 0.1, v


@pytest.mark.slow
def test_every_required_voice_speaks(tmp_path):
    jobs = [dict(voice=v, text="Did the brave sailor find the seven candles behind the old mill?".replace(
        "?", "." if v in corpus.STATEMENTS_ONLY else "?"), vtlp=1.06, stretch=1.0, cents=-100,
        path=str(tmp_path / f"{v}.wav")) for v in corpus.check_voices()]
    for job in jobs:
        assert corpus.synthesise([job]) == 1
        x, rate = sf.read(job["path"])
        assert rate == 16000 and 1.5 < len(x) / rate < 8 and np.sqrt(np.mean(x ** 2)) > 0.01, job["voice"]
