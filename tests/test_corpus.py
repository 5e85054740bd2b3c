"""Tests of corpus.py: the real speech in speech/ and its inventory, the plan of the demo corpus (who is
held out of training), the refusals of the builder, and a small build end to end."""
import shutil
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
SOURCES = ("librispeech", "vctk", "speechocean762", "commonvoice")


@pytest.fixture(scope="module")
def speech():
    return corpus.real_speech()


def test_inventory_lists_every_speaker_once_with_its_audio(speech):
    speakers, files = speech
    rows = data.read_csv(corpus.SPEECH / "speakers.csv")
    assert list(rows[0]) == ["speaker", "source", "sex", "split", "seconds"]
    assert len(rows) == len(speakers) >= 280 and Counter(r["source"] for r in rows) == {
        "librispeech": 20, "vctk": 4, "speechocean762": 250, "commonvoice": 36}
    per_speaker = Counter(data.speaker_of(u) for u in files)
    for r in rows:
        assert r["sex"] in ("F", "M", "") and r["split"] in ("train", "dev", "test")
        assert per_speaker[r["speaker"]] >= 2 and 15 < float(r["seconds"]) < 600, r
        assert (r["sex"] == "") == (r["source"] == "commonvoice")  # Common Voice does not say
    for name in ("README.md", "librispeech/SPEAKERS.TXT", "librispeech/LICENSE.TXT", "speechocean762/speakers.tsv"):
        assert (corpus.SPEECH / name).is_file()
    assert sum(f.stat().st_size for f in corpus.SPEECH.rglob("*") if f.is_file()) < 90e6


def test_held_out_speakers_per_source(speech):
    speakers, _ = speech
    count = Counter((r["split"], r["source"]) for r in speakers.values())
    assert count["test", "speechocean762"] >= 20 and count["test", "librispeech"] >= 5
    assert count["test", "commonvoice"] >= 4 and sum(n for (s, _), n in count.items() if s == "test") >= 30
    assert all(count["dev", s] >= 2 for s in ("speechocean762", "librispeech", "commonvoice"))
    test_sex = Counter(r["sex"] for r in speakers.values() if r["split"] == "test" and r["source"] == "speechocean762")
    assert test_sex["F"] == test_sex["M"]


def test_some_audio_of_every_source_decodes(speech):
    _, files = speech
    by_source = {s: sorted(p for p in files.values() if p.relative_to(corpus.SPEECH).parts[0] == s) for s in SOURCES}
    for source, paths in by_source.items():
        for p in paths[::max(1, len(paths) // 10)]:
            x = data.load_audio(p)
            assert 0.5 < len(x) / 16000 < 40 and np.sqrt(np.mean(x ** 2)) > 0.002, p  # not silent
    band = lambda p: (lambda x: np.abs(np.fft.rfft(x)) ** 2)(data.load_audio(p))
    top = lambda p: (lambda P: P[int(len(P) * 6.5 / 8):].sum() / P.sum())(band(p))  # share above 6.5 kHz
    assert np.median([top(p) for p in by_source["librispeech"][:20]]) < 1e-4  # the MP3s stop near 5.8 kHz
    assert np.median([top(p) for p in by_source["speechocean762"][:20]]) > 1e-4  # full band


@pytest.fixture(scope="module")
def plan(speech):
    speakers, files = speech
    return corpus.plan(speakers, files, corpus.SIZES, 0)


def test_plan_holds_speakers_and_utterances_out_of_training(speech, plan):
    speakers, _ = speech
    train, mixtures = plan
    utts = {split: {u for m in ms for u in m["mixture_ID"].split("_")} for split, ms in mixtures.items()}
    spk = {split: {data.speaker_of(u) for u in us} for split, us in utts.items()}
    trained = {data.speaker_of(u) for u in train}
    assert trained == {s for s, r in speakers.items() if r["split"] == "train"}
    assert spk["test"] == {s for s, r in speakers.items() if r["split"] == "test"}  # every test speaker is used
    assert spk["dev"] == {s for s, r in speakers.items() if r["split"] == "dev"}
    assert not trained & (spk["dev"] | spk["test"]) and not spk["dev"] & spk["test"]
    assert spk["test-seen"] <= trained and not utts["test-seen"] & set(train)
    for split, ms in mixtures.items():
        assert len(ms) == corpus.SIZES[split] and len({m["mixture_ID"] for m in ms}) == len(ms)
        assert all(len({data.speaker_of(u) for u in m["mixture_ID"].split("_")}) == 2 for m in ms)


def test_plan_is_deterministic_and_splits_are_independent(speech, plan):
    speakers, files = speech
    assert corpus.plan(speakers, files, corpus.SIZES, 0) == plan
    assert corpus.plan(speakers, files, {"test": 300}, 0)[1]["test"] == plan[1]["test"]  # another dev size
    assert corpus.plan(speakers, files, corpus.SIZES, 1)[1]["test"] != plan[1]["test"]


@pytest.fixture(scope="module")
def small_speech(tmp_path_factory, speech):
    """A speech/ folder of 12 speakers (train 6, dev 3, test 3) from all four sources."""
    speakers, files = speech
    out = tmp_path_factory.mktemp("speech")
    pick = []
    for split, n in (("train", 6), ("dev", 3), ("test", 3)):
        mine = [s for s in speakers.values() if s["split"] == split]
        for source in SOURCES:
            pick += [s for s in mine if s["source"] == source][:max(1, n // 4)]
    for s in pick:
        for u, p in files.items():
            if data.speaker_of(u) == s["speaker"]:
                dst = out / p.relative_to(corpus.SPEECH)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, dst)
    data.write_csv(out / "speakers.csv", pick)
    for f in [*(corpus.SPEECH / "librispeech").glob("*/*/*.trans.txt"), corpus.SPEECH / "speechocean762" / "utterances.tsv"]:
        if (out / f.relative_to(corpus.SPEECH)).parent.is_dir():  # the transcripts of the sources copied
            shutil.copy(f, out / f.relative_to(corpus.SPEECH))
    return out


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "corpus.py"), *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_demo_corpus(tmp_path, small_speech, monkeypatch):
    out, sizes = tmp_path / "demo", {"dev": 6, "test": 8, "test-seen": 4}
    monkeypatch.setattr(corpus, "SEEN_SPEAKERS", 4)
    monkeypatch.setattr(corpus, "SEEN_UTTERANCES", 2)
    corpus.build_demo(out, sizes, speech=small_speech)
    assert not data.check(out)  # every mixture is the sum of its sources, lengths and rates agree
    speakers = {r["speaker"]: r for r in data.read_csv(out / "speakers.csv")}
    spk = {}
    for split, n in sizes.items():
        ds = LibriMix(out, split, mix_type="noisy", segment=None)
        assert len(ds.mixtures) == n and (out / f"Libri2Mix/wav16k/min/metadata/enrollment_{split}.csv").is_file()
        spk[split] = {u.split("-")[0] for m in ds.mixtures for u in m[3]}
        item = ds[0]
        assert item["mix"].shape == item["target"].shape and item["enroll"].abs().max() > 0.01
    pool = DynamicMix(out, "train-100", three=0.5, absent=0.1)
    assert set(pool.utts) == {s for s, r in speakers.items() if r["split"] == "train"}
    assert not set(pool.utts) & (spk["dev"] | spk["test"]) and spk["test-seen"] <= set(pool.utts)
    assert pool[0]["mix"].shape == pool[0]["target"].shape
    with pytest.raises(DataError, match="--dynamic-mix"):
        LibriMix(out, "train-100")
    # what the English utterances of the fixed mixtures say, and how long each is whole
    said = {r["utterance"]: r for r in data.read_csv(out / "transcripts.csv", ("utterance", "seconds", "text"))}
    used = {u for split in sizes for m in LibriMix(out, split, segment=None).mixtures for u in m[3]}
    sources = {u: speakers[data.speaker_of(u)]["source"] for u in used}
    assert set(said) == {u for u, src in sources.items() if src in ("librispeech", "speechocean762")}
    texts = corpus.transcripts(small_speech)
    for u, r in said.items():
        assert r["text"] == texts[u] and r["text"].isupper()
    _, files = corpus.real_speech(small_speech)
    u = next(iter(said))
    assert float(said[u]["seconds"]) == pytest.approx(len(data.load_audio(files[u])) / 16000, abs=1e-4)
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    corpus.build_demo(out, sizes, speech=small_speech)  # complete: kept as it is
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before
    (out / "transcripts.csv").unlink()  # a corpus built before it carried transcripts: only they are added
    corpus.build_demo(out, sizes, speech=small_speech)
    assert {r["utterance"] for r in data.read_csv(out / "transcripts.csv")} == set(said)


def test_builder_refuses_foreign_folders_and_broken_speech(tmp_path, small_speech):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    r = cli("--out", tmp_path / "mine")
    assert r.returncode == 2 and "not a demo corpus" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    broken = tmp_path / "speech"
    shutil.copytree(small_speech, broken)
    shutil.rmtree(next(p for p in (broken / "speechocean762").iterdir() if p.is_dir()))
    with pytest.raises(DataError, match="no audio for 1 speakers"):
        corpus.build_demo(tmp_path / "demo", speech=broken)
    (broken / "speakers.csv").unlink()
    with pytest.raises(DataError, match="speakers.csv is missing"):
        corpus.build_demo(tmp_path / "demo", speech=broken)
