"""
Examples for training, extraction and evaluation: one reader for the LibriMix layout, and an
offline demo corpus written in that same layout.

    python data.py demo           # build ./data/demo from Debian speech synthesis packages
    python data.py check PATH     # validate any LibriMix-layout folder

LibriMix (Cosentino et al., 2020) is built by its own scripts (github.com/JorisCos/LibriMix,
generate_librimix.sh). We read what they write:
    Libri2Mix/wav16k|wav8k/min|max/<split>/{mix_clean,mix_both,s1,s2,noise}/<mixture_ID>.wav
    Libri2Mix/wav16k|wav8k/min|max/metadata/mixture_<split>_<mix_clean|mix_both>.csv
A mixture ID joins the LibriSpeech utterance IDs (speaker-chapter-utterance) of s1 and s2 with '_'.
Each mixture gives two examples, s1 as target then s2; the enrollment is another utterance of the
target's speaker, taken from s1/s2 of the same split: random in training, a fixed list otherwise.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
MIX_TYPES = {"clean": "mix_clean", "noisy": "mix_both"}
HOW_TO_GET = ("generate LibriMix with its upstream scripts (https://github.com/JorisCos/LibriMix, "
              "generate_librimix.sh), or build the offline demo corpus with `python data.py demo`")


class AudioError(Exception):
    """A file that cannot be used as audio. The message (one line) names the file."""


class DataError(Exception):
    """A corpus that cannot be read or built. The message (one line) says what to do."""


def load_audio(path, sample_rate=SAMPLE_RATE, return_rate=False):
    """Read a sound file as float32 mono (L,), resampled to sample_rate (None keeps the file's)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        x, rate = sf.read(path, dtype="float32", always_2d=True)  # (L, C)
    except Exception as e:
        raise AudioError(f"cannot read audio file {path}: {' '.join(str(e).split())}") from None
    if x.size == 0:
        raise AudioError(f"audio file is empty: {path}")
    if not np.isfinite(x).all():
        raise AudioError(f"audio file contains NaN or infinite samples: {path}")
    x = x.mean(axis=1)  # downmix to mono
    if sample_rate and rate != sample_rate:
        g = math.gcd(rate, sample_rate)
        x = resample_poly(x, sample_rate // g, rate // g).astype(np.float32)
    return (x, rate) if return_rate else x


def resolve_root(data):
    """'demo' -> <repo>/data/demo, 'LibriMix' -> $LIBRIMIX or <repo>/LibriMix, anything else -> that path
    (a relative one from the current directory)."""
    repo = Path(__file__).resolve().parent
    return Path({"demo": repo / "data" / "demo", "LibriMix": os.environ.get("LIBRIMIX", repo / "LibriMix")}.get(data, data))


def read_csv(path, required=()):
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    missing = [c for c in required if rows and c not in rows[0]]
    if not rows or missing:
        raise DataError(f"{path} is empty or lacks the columns {', '.join(missing or required)}")
    return rows


def write_csv(path, rows):
    part = f"{path}.{os.getpid()}.part"  # then renamed: readers never see half a file
    with open(part, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")  # as LibriMix's (pandas) CSVs
        w.writeheader()
        w.writerows(rows)
    os.replace(part, path)


def libri2mix_dir(root):
    root = Path(root)
    return root if root.name == "Libri2Mix" else root / "Libri2Mix"


def layout_error(root, expected):
    """What was found, what was expected, and how LibriMix is made: one line."""
    found = sorted(str(p.relative_to(root)) for depth in ("", "*/")
                   for p in root.glob(depth + "wav*/*/metadata/mixture_*.csv"))
    if found:
        what = "only " + ", ".join(found[:8]) + (" ..." if len(found) > 8 else "")
    elif root.is_dir():
        what = f"no metadata CSVs (it holds: {', '.join(sorted(p.name for p in root.iterdir())[:8]) or 'nothing'})"
    else:
        what = "no such folder"
    return f"{root} is not a LibriMix folder: found {what}; expected {expected}; {HOW_TO_GET}"


def locator(rows, mode_dir):
    """CSV paths are absolute on the machine that built the corpus: when they are not here, take
    their last three parts (<split>/<subdir>/<file>) relative to wav<freq>/<mode>."""
    here = Path(rows[0]["mixture_path"]).is_file()
    return lambda p: Path(p) if here else mode_dir.joinpath(*Path(p).parts[-3:])


def utterances_of(row, csv_path):
    """The two LibriSpeech utterance IDs joined in a mixture ID."""
    mid = row.get("original_mixture_ID") or row["mixture_ID"]
    utts = mid.split("_")
    if len(utts) != 2 or not all(re.fullmatch(r"\d+-\d+-\d+", u) for u in utts):
        raise DataError(f"{csv_path}: mixture ID {mid} does not join two utterance IDs "
                        f"(speaker-chapter-utterance) with '_'")
    return utts


def speaker_of(utt):
    return utt.split("-")[0]


def crop(x, n, rng):
    """Random window of n samples over the last dim (all of x when shorter or n is None)."""
    if n is None or x.shape[-1] <= n:
        return x
    start = rng.integers(x.shape[-1] - n + 1)
    return x[..., start:start + n]


class LibriMix(torch.utils.data.Dataset):
    """Target speaker extraction examples from a LibriMix-layout folder (real or demo)."""

    def __init__(self, root, split="train-100", mix_type="clean", freq="16k", mode="min",
                 segment=3.0, sample_rate=SAMPLE_RATE, seed=0, enroll_segment=None):
        if mix_type not in MIX_TYPES or freq not in ("16k", "8k") or mode not in ("min", "max"):
            raise DataError(f"unknown LibriMix option: mix_type {mix_type!r} (clean|noisy), "
                            f"freq {freq!r} (16k|8k), mode {mode!r} (min|max)")
        self.split, self.sample_rate, self.seed, self.epoch = split, sample_rate, seed, 0
        self.segment = None if segment is None else int(segment * sample_rate)
        self.enroll_segment = None if enroll_segment is None else int(enroll_segment * sample_rate)
        self.train = split.startswith("train")  # train: random enrollments; else a fixed list
        self.dir = libri2mix_dir(root) / f"wav{freq}" / mode
        csv_path = self.dir / "metadata" / f"mixture_{split}_{MIX_TYPES[mix_type]}.csv"
        if not csv_path.is_file():
            raise DataError(layout_error(Path(root), csv_path.relative_to(root)))
        rows = read_csv(csv_path, ("mixture_ID", "mixture_path", "source_1_path", "source_2_path"))
        path = locator(rows, self.dir)
        self.mixtures = []  # (mixture ID, mixture path, (s1 path, s2 path), (utt1, utt2))
        self.utts = defaultdict(dict)  # speaker -> {utterance ID: a source file of it}
        for r in rows:
            utts = utterances_of(r, csv_path)
            srcs = (path(r["source_1_path"]), path(r["source_2_path"]))
            self.mixtures.append((r["mixture_ID"], path(r["mixture_path"]), srcs, utts))
            for u, p in zip(utts, srcs):
                self.utts[speaker_of(u)].setdefault(u, p)
        self.utts = {spk: sorted(by_utt.items()) for spk, by_utt in self.utts.items()}
        if not self.mixtures[0][1].is_file():
            raise DataError(f"{csv_path} lists {self.mixtures[0][1]}, which is missing; {HOW_TO_GET}")
        self.fixed = None if self.train else self.fixed_enrollments()
        self.examples = [(m, k) for m, (mid, _, _, utts) in enumerate(self.mixtures) for k in (1, 2)
                         if (self.candidates(utts[k - 1]) if self.train else (mid, k) in self.fixed)]
        if len(self.examples) < 2 * len(self.mixtures):
            print(f"{csv_path.name}: skipped {2 * len(self.mixtures) - len(self.examples)} targets "
                  f"whose speaker has no other utterance in {split}")
        if not self.examples:
            raise DataError(f"{csv_path}: no speaker has two utterances in {split}, so no enrollment")

    def candidates(self, utt):
        """Enrollment files for a target utterance: the speaker's other utterances, sorted."""
        return [p for u, p in self.utts[speaker_of(utt)] if u != utt]

    def fixed_enrollments(self):
        """dev/test: SpeakerBeam's <split>/map_mixture2enrollment when present, else our
        metadata/enrollment_<split>.csv, else draw one (seeded by the mixture ID) and write it."""
        speakerbeam = self.dir / self.split / "map_mixture2enrollment"
        if speakerbeam.is_file():
            return self.read_speakerbeam(speakerbeam)
        path = self.dir / "metadata" / f"enrollment_{self.split}.csv"
        if path.is_file():
            rows = read_csv(path, ("mixture_ID", "target_index", "enrollment_path"))
            fixed = {(r["mixture_ID"], r["target_index"]): self.dir / r["enrollment_path"] for r in rows}
            fixed = {(mid, int(k)): p for (mid, k), p in fixed.items() if k in ("1", "2")}
            targets = [(mid, k) for mid, _, _, utts in self.mixtures for k in (1, 2) if self.candidates(utts[k - 1])]
            missing = sum(t not in fixed for t in targets)  # of every target that can be enrolled
            if missing:
                raise DataError(f"{path} lacks {missing} of the {len(targets)} target rows of {self.split}, which "
                                f"would go unevaluated; delete it to draw the list again")
            return fixed
        fixed = {}
        for mid, _, _, utts in self.mixtures:
            for k in (1, 2):
                cands = self.candidates(utts[k - 1])
                if cands:
                    rng = np.random.default_rng(zlib.crc32(f"{mid} {k}".encode()))
                    fixed[mid, k] = cands[rng.integers(len(cands))]
        rows = [dict(mixture_ID=mid, target_index=k, enrollment_path=os.path.relpath(p, self.dir))  # movable
                for (mid, k), p in fixed.items()]
        try:
            write_csv(path, rows)
        except OSError as e:
            print(f"note: could not save the enrollment list {path} ({e.strerror}); it is redrawn identically")
        return fixed

    def read_speakerbeam(self, path):
        """Lines '<mixture ID> <target utterance ID> <enrollment>' as in the SpeakerBeam recipe, the
        enrollment being s1/<mixture ID> or s2/<mixture ID> of this split, or an utterance ID of it."""
        index = {mid: (srcs, utts) for mid, _, srcs, utts in self.mixtures}
        files = {u: p for by_utt in self.utts.values() for u, p in by_utt}
        fixed, same = {}, 0
        for n, line in enumerate(path.read_text().splitlines(), 1):
            f = line.split()
            if not f or f[0].startswith("#") or f[0] not in index:
                continue  # blank, comment, or a mixture not in this CSV
            srcs, utts = index[f[0]]
            if len(f) != 3 or f[1] not in utts:
                raise DataError(f"{path}:{n}: expected '<mixture ID> <target utterance ID> <enrollment>', got: {line}")
            sub, _, other = f[2].partition("/")
            if sub in ("s1", "s2") and other in index:
                enroll, enroll_utt = index[other][0][int(sub[1]) - 1], index[other][1][int(sub[1]) - 1]
            elif f[2] in files:
                enroll, enroll_utt = files[f[2]], f[2]
            else:
                raise DataError(f"{path}:{n}: enrollment {f[2]} is not a source of {self.split}")
            same += enroll_utt == f[1]
            fixed[f[0], utts.index(f[1]) + 1] = enroll
        missing = 2 * len(index) - len(fixed)
        if missing:
            raise DataError(f"{path} lacks {missing} targets of {self.split}; is it the list of this split?")
        if same:
            print(f"note: {path} enrolls {same} of {len(fixed)} targets with the target utterance itself (kept)")
        return fixed

    def set_epoch(self, epoch):
        self.epoch = epoch  # training re-draws enrollments and crops from (seed, epoch, index)

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        m, k = self.examples[i]
        mid, mix_path, srcs, utts = self.mixtures[m]
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, i])
        mix, target = load_audio(mix_path, self.sample_rate), load_audio(srcs[k - 1], self.sample_rate)
        n = min(len(mix), len(target))
        mix, target = crop(np.stack([mix[:n], target[:n]]), self.segment, rng)  # same window for both
        enroll = self.candidates(utts[k - 1]) if self.train else [self.fixed[mid, k]]
        enroll = crop(load_audio(enroll[rng.integers(len(enroll))], self.sample_rate), self.enroll_segment, rng)
        return dict(mix=torch.from_numpy(mix), target=torch.from_numpy(target),
                    enroll=torch.from_numpy(enroll), mixture_id=mid, target_index=k,
                    speaker=speaker_of(utts[k - 1]))


def collate(batch):
    """Pad waveforms to the longest in the batch; lengths give the true sizes."""
    def pad(key):
        lengths = torch.tensor([len(b[key]) for b in batch])
        out = torch.zeros(len(batch), int(lengths.max()))  # (B, L)
        for j, b in enumerate(batch):
            out[j, :len(b[key])] = b[key]
        return out, lengths
    (mix, lengths), (target, _), (enroll, enroll_lengths) = pad("mix"), pad("target"), pad("enroll")
    return dict(mix=mix, target=target, lengths=lengths, enroll=enroll, enroll_lengths=enroll_lengths,
                **{key: [b[key] for b in batch] for key in ("mixture_id", "target_index", "speaker")})


# --- the offline demo corpus ---
# Base voices from Debian packages: their measured median F0 (Hz), and the speakers they give. An
# independent speaker model rates them as clearly different people. Not used: flite's kal (8 kHz) and
# awb_time, espeak-ng (its accents and +m/+f variants sound like one speaker), MBROLA (Debian non-free).
VOICES = {"slt": (176, "train"), "rms": (103, "train"), "kal16": (87, "train"),  # flite
          "awb": (131, "dev/test"), "ked": (102, "dev/test")}  # flite; festival + festvox-kdlpc16k
APT = "sudo apt-get install flite festival festvox-kdlpc16k sox"
# Pseudo-speakers: vocal-tract-length perturbation (sox `speed` moves formants and pitch, `pitch` puts
# the pitch back) times pitch offsets around a centre half-way from the voice's own F0 to 140 Hz.
VTLP = (0.84, 0.89, 0.94, 1.0, 1.06, 1.13, 1.2)
PITCH_STEP = 250  # cents
PITCH = range(-600, 700, PITCH_STEP)  # -600 ... 650 cents
DEMO_SIZES = {"train-100": 3000, "dev": 200, "test": 200, "test-seen": 200}  # mixtures
SPEAKERS_OF = {"train-100": "train", "dev": "dev", "test": "test", "test-seen": "train"}
USES = {"train-100": 3.0}  # mixtures per utterance (1.5 elsewhere): synthesis is most of the build time

WORDS = dict(
    adj="old young quiet busy happy tired clever gentle brave careful curious patient proud lucky".split(),
    person="farmer teacher sailor doctor painter baker driver student captain gardener writer singer nurse".split(),
    thing="basket letter lantern bicycle blanket window ladder kettle mirror wagon barrel candle ribbon".split(),
    colour="red green blue yellow silver brown white golden grey purple".split(),
    verb="carry mend paint clean open find hide sell fetch lift wash move".split(),
    past="carried mended painted cleaned opened found hid sold fetched lifted washed moved".split(),
    number="two three four five six seven eight nine ten eleven twelve twenty".split(),
    name="Anna Peter Maria John Clara Thomas Helen Oscar Laura Victor Nora Felix".split(),
    place="near the river|across the market|behind the old mill|under the bridge|in the kitchen|at the station|"
          "by the harbour|on the hill|inside the barn|along the road".split("|"),
    time="this morning|before noon|after supper|on Sunday|last winter|every evening|at dawn|in the spring|"
         "yesterday|late at night".split("|"))
TEMPLATES = [
    "the {adj} {person} {past} the {colour} {thing} {place}.",
    "{time}, the {person} {past} {number} {colour} {thing}s {place}.",
    "did the {adj} {person} {verb} the {thing} {place} {time}?",
    "{name} and {name} {past} the {adj} {person} {place} {time}.",
    "please {verb} the {colour} {thing} {place} before {name} comes home.",
    "the {thing} {place} was {colour} and the {person} was {adj}, said {name}.",
    "{name} said that the {adj} {person} would {verb} {number} {thing}s {time}.",
    "why would the {adj} {person} {verb} the {colour} {thing} {place} {time}?",
]


def make_sentences(rng, n):
    """n distinct sentences from the little grammar above."""
    out = {}
    while len(out) < n:
        s = re.sub(r"\{(\w+)\}", lambda m: rng.choice(WORDS[m.group(1)]), rng.choice(TEMPLATES))
        out[s[0].upper() + s[1:]] = None
    return list(out)


def make_speakers(rng):
    """Every base voice x VTLP x pitch. Held-out voices alternate their speakers between dev and test."""
    speakers = []
    for f, (voice, (f0, use)) in enumerate(VOICES.items()):
        centre = 600 * math.log2(140 / f0)
        grid = [(v, p) for v in VTLP for p in PITCH]
        for j, g in enumerate(rng.permutation(len(grid))):
            vtlp, cents = grid[g]
            split = use if use == "train" else ("dev", "test")[j % 2]
            speakers.append(dict(speaker_ID=str(1000 * (f + 1) + j), split=split,
                                 base_voice=voice, vtlp=vtlp, pitch_cents=round(centre + cents),
                                 f0_hz=round(f0 * 2 ** ((centre + cents) / 1200)),
                                 stretch=round(rng.uniform(0.88, 1.12), 3)))  # speaking rate, as duration
    return speakers


def apart(a, b):
    """Two speakers of one base voice must be more than one step apart on the VTLP x pitch grid."""
    steps = abs(VTLP.index(a["vtlp"]) - VTLP.index(b["vtlp"])) + abs(a["pitch_cents"] - b["pitch_cents"]) / PITCH_STEP
    return a["base_voice"] != b["base_voice"] or steps >= 2


def plan_demo(sizes, seed, cache):
    """Every random choice of the build, made here: the corpus depends on the seed alone."""
    rng = np.random.default_rng(seed)
    speakers = make_speakers(rng)
    texts = make_sentences(rng, 6 * sum(sizes.values()) + 100)
    held_out = len(texts) // 3  # sentences of dev, test and test-seen, never in training
    utterances, plans = {}, {}
    for c, (split, n_mix) in enumerate(sizes.items()):
        # at least 6 slots per speaker (for enrollments); voices interleave when only some are used
        pool = [s for s in speakers if s["split"] == SPEAKERS_OF[split]]
        pool.sort(key=lambda s: int(s["speaker_ID"]) % 1000)
        pool = pool[:max(4, n_mix // 3)]
        per = max(2, math.ceil(2 * n_mix / len(pool) / USES.get(split, 1.5)))
        sents = texts[held_out:] if split == "train-100" else texts[:held_out]
        for s in pool:
            for j in range(per):
                u = dict(split=split, voice=s["base_voice"], vtlp=s["vtlp"], text=sents[rng.integers(len(sents))],
                         stretch=round(s["stretch"] * rng.uniform(0.93, 1.07), 3),
                         cents=s["pitch_cents"] + int(rng.integers(-60, 61)))
                key = json.dumps([u[k] for k in ("voice", "vtlp", "text", "stretch", "cents")])
                u["path"] = str(cache / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".wav"))
                utterances[f"{s['speaker_ID']}-{c + 1}-{j:04d}"] = u  # speaker-chapter-utterance
        plans[split] = pair_utterances(rng, split, n_mix, pool, utterances)
    return speakers, utterances, plans


def pair_utterances(rng, split, n_mix, pool, utterances):
    """Mixtures of two speakers, each time the least used speakers and utterances, LibriMix levels."""
    spk = {s["speaker_ID"]: s for s in pool}
    mine = [u for u in utterances if utterances[u]["split"] == split]
    by_spk = {a: [u for u in mine if speaker_of(u) == a] for a in spk}
    uses = defaultdict(int)
    least = lambda xs: min(xs, key=lambda x: (uses[x], rng.random()))
    plans, seen = [], set()
    for _ in range(n_mix):
        for attempt in range(100):
            a = least(spk)
            b = least([x for x in spk if x != a and apart(spk[a], spk[x])] or [x for x in spk if x != a])
            u = [least(by_spk[a]), least(by_spk[b])] if attempt == 0 else [rng.choice(by_spk[a]), rng.choice(by_spk[b])]
            if rng.random() < 0.5:
                u.reverse()
            if "_".join(u) not in seen:
                break
        else:
            raise DataError(f"too few utterances for {n_mix} distinct mixtures in {split}")
        seen.add("_".join(u))
        for x in (a, b, *u):
            uses[x] += 1
        others = [v for v in rng.choice(mine, min(10, len(mine)), replace=False) if speaker_of(v) not in (a, b)]
        babble = others[:rng.integers(3, 6)] if rng.random() < 0.5 else []  # else coloured noise
        plans.append(dict(mixture_ID="_".join(u), sources=[utterances[v]["path"] for v in u],
                          levels=rng.uniform(-33, -25, 2).tolist(), noise_db=rng.uniform(-38, -30),  # as LibriMix
                          babble=[utterances[v]["path"] for v in babble], beta=rng.uniform(0, 2),
                          seed=int(rng.integers(2**31))))
    return plans


def run(cmd):
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        said = " ".join(r.stderr.decode(errors="replace").split()[-20:])
        raise DataError(f"{cmd[0]} failed (exit {r.returncode}: {said}); the demo needs: {APT}")


def synthesise(jobs):
    """Speak utterances of one base voice into the cache (cached ones are skipped)."""
    jobs = [j for j in jobs if not Path(j["path"]).is_file()]
    with tempfile.TemporaryDirectory() as tmp:
        raw = [f"{tmp}/{n}.wav" for n in range(len(jobs))]
        # the synthesiser sets the speaking rate, times vtlp since sox `speed` shortens by vtlp
        if jobs and jobs[0]["voice"] == "ked":  # one festival for the batch: it takes 0.3 s to start
            Path(tmp, "batch.scm").write_text("(voice_ked_diphone)\n" + "\n".join(
                f"(Parameter.set 'Duration_Stretch {j['stretch'] * j['vtlp']:.4f})\n"
                f"(utt.save.wave (utt.synth (Utterance Text \"{j['text']}\")) \"{r}\" 'riff)"
                for j, r in zip(jobs, raw)))
            run(["festival", "-b", f"{tmp}/batch.scm"])
        for j, r in zip(jobs, raw):
            if j["voice"] != "ked":
                run(["flite", "-voice", j["voice"], "--setf", f"duration_stretch={j['stretch'] * j['vtlp']:.4f}",
                     "-t", j["text"], "-o", r])
            cents = j["cents"] - 1200 * math.log2(j["vtlp"])  # `pitch` first: sox 14.4.2 crashes on `speed pitch`
            part = j["path"][:-4] + ".part.wav"
            run(["sox", "-G", r, "-b", "16", part, "pitch", f"{cents:.1f}", "speed", str(j["vtlp"]),
                 "rate", str(SAMPLE_RATE)])
            os.replace(part, j["path"])
    return len(jobs)


def rms_db(x):
    return 10 * np.log10(np.mean(x ** 2) + 1e-10)


def make_noise(plan, n, rng):
    """Babble of 3-5 other voices of the split, or Gaussian noise with a 1/f^beta spectrum."""
    if plan["babble"]:
        voices = [np.tile(x, n // len(x) + 2) for x in map(load_audio, plan["babble"])]
        return sum(crop(x, n, rng) / 10 ** (rms_db(x) / 20) for x in voices)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    return np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.maximum(f, 50) ** (plan["beta"] / 2), n)


def write_mixture(args):
    """Write one min-mode mixture as LibriMix does (loudness, clip protection), in int16 so that
    mix_clean == s1 + s2 and mix_both == s1 + s2 + noise hold exactly."""
    plan, out = args
    rng = np.random.default_rng(plan["seed"])
    srcs = [load_audio(p) for p in plan["sources"]]
    srcs = [x * 10 ** ((db - rms_db(x)) / 20) for x, db in zip(srcs, plan["levels"])]
    srcs = [x * 0.9 / np.abs(x).max() if np.abs(x).max() >= 1 else x for x in srcs]  # a clipping source
    n = max(len(x) for x in srcs)
    noise = make_noise(plan, n, rng)
    noise *= 10 ** ((plan["noise_db"] - rms_db(noise)) / 20)
    full = noise + sum(np.pad(x, (0, n - len(x))) for x in srcs)  # max mode, where LibriMix checks
    gain = min(1.0, 0.9 / np.abs(full).max())  # a clipping mixture: scale everything
    n = min(len(x) for x in srcs)  # min mode
    s1, s2, noise = [np.round(x[:n] * gain * 32768).astype(np.int32) for x in (*srcs, noise)]
    wavs = dict(s1=s1, s2=s2, noise=noise, mix_clean=s1 + s2, mix_both=s1 + s2 + noise)
    for sub, x in wavs.items():
        sf.write(out / sub / f"{plan['mixture_ID']}.wav", x.astype(np.int16), SAMPLE_RATE)
    db = lambda a, b: float(rms_db(wavs[a] / 32768) - rms_db(wavs[b] / 32768))
    return n, db("s1", "s2"), db("mix_clean", "noise")


def build_demo(out="data/demo", sizes=DEMO_SIZES, seed=0, workers=2, force=False):
    """Build the demo corpus in the LibriMix layout (wav16k/min) and print a summary."""
    t0, out = time.time(), Path(out)
    if any(shutil.which(tool) is None for tool in ("flite", "festival", "sox")):
        raise DataError(f"the demo corpus is spoken by flite and festival, then shaped by sox: {APT}")
    if (out / "build.json").is_file() and not force:
        built = json.loads((out / "build.json").read_text())["sizes"]
        print(f"{out} is complete ({', '.join(f'{k} {v}' for k, v in built.items())} mixtures); --force rebuilds it")
        return
    if out.is_dir() and any(out.iterdir()) and not (out / "cache").is_dir():
        raise DataError(f"{out} exists and is not a demo corpus built by data.py; choose another --out")
    for p in (out / "Libri2Mix", out / "build.json"):  # a previous or interrupted build; the cache stays
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    sizes = {k: v for k, v in sizes.items() if v > 0}
    speakers, utterances, plans = plan_demo(sizes, seed, out / "cache")

    jobs = defaultdict(list)  # base voice -> utterances
    for u in utterances.values():
        jobs[u["voice"]].append(u)
    mode_dir, results = (out / "Libri2Mix" / "wav16k" / "min").resolve(), {}
    with Pool(max(1, workers)) as pool:
        print(f"speaking {len(utterances)} utterances with {workers} workers")
        batches = [v[i:i + 40] for v in jobs.values() for i in range(0, len(v), 40)]
        spoken = sum(pool.imap_unordered(synthesise, batches))
        print(f"{spoken} spoken, {len(utterances) - spoken} from the cache ({time.time() - t0:.0f} s); mixing")
        for split, split_plans in plans.items():
            for sub in ("mix_clean", "mix_both", "s1", "s2", "noise"):
                (mode_dir / split / sub).mkdir(parents=True)
            results[split] = pool.map(write_mixture, [(p, mode_dir / split) for p in split_plans], chunksize=8)

    (mode_dir / "metadata").mkdir()
    summary, used = {}, set()
    print(f"{'split':10} {'mixtures':>8} {'speakers':>8} {'utts':>6} {'hours':>6}   s1-to-s2 dB   speech-to-noise dB")
    for split, split_plans in plans.items():
        ids = [p["mixture_ID"] for p in split_plans]
        wav = lambda sub, mid: mode_dir / split / sub / f"{mid}.wav"
        for sub in ("mix_clean", "mix_both"):
            write_csv(mode_dir / "metadata" / f"mixture_{split}_{sub}.csv", [dict(
                mixture_ID=mid, original_mixture_ID=mid, mixture_path=wav(sub, mid), source_1_path=wav("s1", mid),
                source_2_path=wav("s2", mid), **({"noise_path": wav("noise", mid)} if sub == "mix_both" else {}),
                length=n) for mid, (n, _, _) in zip(ids, results[split])])
        if split != "train-100":
            LibriMix(out, split, segment=None)  # draws and writes the fixed enrollment list
        n, tir, snr = np.array(results[split]).T
        utts = {u for mid in ids for u in mid.split("_")}
        used |= utts
        s = summary[split] = dict(mixtures=len(ids), speakers=len({speaker_of(u) for u in utts}), utterances=len(utts),
                                  hours=round(n.sum() / SAMPLE_RATE / 3600, 2), s1_to_s2_db=[tir.min(), tir.max()],
                                  speech_to_noise_db=[snr.min(), snr.max()])
        print(f"{split:10} {len(ids):8} {s['speakers']:8} {len(utts):6} {s['hours']:6.2f}  "
              f"{tir.min():5.1f} ..{tir.max():5.1f}  {snr.min():6.1f} ..{snr.max():5.1f}")
    write_csv(out / "speakers.csv", [s for s in speakers if s["speaker_ID"] in {speaker_of(u) for u in used}])
    write_csv(out / "utterances.csv", [dict(utterance_ID=u, text=utterances[u]["text"]) for u in sorted(used)])
    (out / "build.json").write_text(json.dumps(dict(sizes=sizes, seed=seed, summary=summary), indent=1))
    voices = lambda use: ", ".join(v for v in VOICES if VOICES[v][1] == use)
    print(f"built {out} in {time.time() - t0:.0f} s; voices {voices('train')} train, {voices('dev/test')} dev and test")


def check(path, limit=None, tolerance=1e-3):
    """Validate a LibriMix-layout folder; print and return the problems found (none: fine)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    csvs = sorted(libri2mix_dir(path).glob("wav*/*/metadata/mixture_*.csv"))
    problems = [] if csvs else [layout_error(path, "Libri2Mix/wav16k/min/metadata/mixture_<split>_mix_clean.csv")]
    for c in csvs:
        mode_dir, before, samples = c.parent.parent, len(problems), 0
        rate = int(mode_dir.parent.name[3:-1]) * 1000 if re.fullmatch(r"wav\d+k", mode_dir.parent.name) else None
        try:
            rows = read_csv(c, ("mixture_ID", "mixture_path", "length"))[:limit]
        except DataError as e:
            problems.append(str(e))
            continue
        path_of = locator(rows, mode_dir)
        for r in rows:
            bad = lambda what: problems.append(f"{c.name}: {r['mixture_ID']}: {what}")
            try:  # the mixture, then its sources (and noise)
                wavs = [load_audio(path_of(r[k]), None, return_rate=True) for k in r if k.endswith("_path")]
                lengths = {len(x) for x, _ in wavs} | {int(float(r["length"]))}
            except (AudioError, ValueError) as e:
                bad(e)
                continue
            samples += len(wavs[0][0])
            if {sr for _, sr in wavs} != {rate}:
                bad(f"sample rates {sorted({sr for _, sr in wavs})}, expected {rate} in {mode_dir.parent.name}")
            if len(lengths) > 1:
                bad(f"the files and the CSV disagree on the length: {sorted(lengths)}")
            elif np.abs(wavs[0][0] - sum(x for x, _ in wavs[1:])).max() > tolerance:
                bad("the mixture is not the sum of its sources (and noise)")
        found = len(problems) - before
        print(f"{c.relative_to(path)}: {len(rows)} mixtures, {samples / (rate or 1) / 3600:.2f} h, "
              f"{f'{found} problem(s)' if found else 'ok'}")
    for p in problems[:50]:
        print(p)
    print(f"{len(problems)} problem(s)" if problems else f"{path}: {len(csvs)} CSVs, all ok")
    return problems


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build the offline demo corpus, or check a LibriMix-layout folder.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a small corpus in the LibriMix layout from flite, festival and sox")
    demo.add_argument("--out", default="data/demo")
    for split, n in DEMO_SIZES.items():
        demo.add_argument(f"--{split.removesuffix('-100')}", type=int, default=n, help=f"mixtures in {split} ({n})")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    demo.add_argument("--force", action="store_true", help="rebuild an existing corpus (the cache is kept)")
    chk = sub.add_parser("check", help="validate a LibriMix-layout folder (exit 1 when anything is wrong)")
    chk.add_argument("path")
    chk.add_argument("--limit", type=int, default=None, help="check only the first N mixtures of each CSV")
    args = parser.parse_args()
    try:
        if args.command == "demo":
            sizes = {"train-100": args.train, "dev": args.dev, "test": args.test, "test-seen": args.test_seen}
            build_demo(args.out, sizes, args.seed, args.workers, args.force)
        elif check(args.path, args.limit):
            sys.exit(1)
    except (DataError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
