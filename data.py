"""
Examples for training, extraction and evaluation from a folder in the LibriMix layout: real LibriMix,
or the demo corpus that corpus.py writes. `python data.py PATH` validates such a folder.

LibriMix (Cosentino et al., 2020) is built by its own scripts (github.com/JorisCos/LibriMix,
generate_librimix.sh). We read what they write:
    Libri2Mix/wav16k|wav8k/min|max/<split>/{mix_clean,mix_both,s1,s2,noise}/<mixture_ID>.wav
    Libri2Mix/wav16k|wav8k/min|max/metadata/mixture_<split>_<mix_clean|mix_both>.csv
A mixture ID joins the LibriSpeech utterance IDs (speaker-chapter-utterance) of s1 and s2 with '_'.
Each mixture gives two examples, s1 as target then s2; the enrollment is another utterance of the
target's speaker, taken from s1/s2 of the same split: random in training, a fixed list otherwise.
DynamicMix mixes training examples afresh every epoch from the same s1/s2 sources instead.
"""
import argparse
import math
import os
import re
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, resample_poly, sosfiltfilt

from common import SAMPLE_RATE, AudioError, DataError, load_audio, read_csv, write_csv

MIX_TYPES = {"clean": "mix_clean", "noisy": "mix_both"}
SPEED = (0.9, 1.1)  # DynamicMix's speed perturbation range: new pseudo-speakers of every voice
HOW_TO_GET = ("generate LibriMix with its upstream scripts (https://github.com/JorisCos/LibriMix, "
              "generate_librimix.sh), or build the offline demo corpus with `python corpus.py`")


def resolve_root(data):
    """'demo' -> <repo>/data/demo, 'LibriMix' -> $LIBRIMIX or <repo>/LibriMix, anything else -> that path
    (a relative one from the current directory)."""
    repo = Path(__file__).resolve().parent
    return Path({"demo": repo / "data" / "demo", "LibriMix": os.environ.get("LIBRIMIX", repo / "LibriMix")}.get(data, data))


def libri2mix_dir(root):
    return Path(root) if Path(root).name == "Libri2Mix" else Path(root) / "Libri2Mix"


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


def split_csv(root, split, mix_type, freq, mode):
    """The folder wav<freq>/<mode> of a LibriMix-layout root and the metadata CSV of a split in it."""
    if mix_type not in MIX_TYPES or freq not in ("16k", "8k") or mode not in ("min", "max"):
        raise DataError(f"unknown LibriMix option: mix_type {mix_type!r} (clean|noisy), "
                        f"freq {freq!r} (16k|8k), mode {mode!r} (min|max)")
    mode_dir = libri2mix_dir(root) / f"wav{freq}" / mode
    csv_path = mode_dir / "metadata" / f"mixture_{split}_{MIX_TYPES[mix_type]}.csv"
    if not csv_path.is_file():
        raise DataError(layout_error(Path(root), csv_path.relative_to(root)))
    return mode_dir, csv_path


def locator(rows, mode_dir):
    """CSV paths are absolute on the machine that built the corpus: when they are not here, take
    their last three parts (<split>/<subdir>/<file>) relative to wav<freq>/<mode>."""
    here = Path(rows[0]["source_1_path"]).is_file()
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
        self.split, self.sample_rate, self.seed, self.epoch = split, sample_rate, seed, 0
        self.segment = None if segment is None else int(segment * sample_rate)
        self.enroll_segment = None if enroll_segment is None else int(enroll_segment * sample_rate)
        self.train = split.startswith("train")  # train: random enrollments; else a fixed list
        self.dir, csv_path = split_csv(root, split, mix_type, freq, mode)
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
            if self.mixtures[0][2][0].is_file():  # the demo's train-100
                raise DataError(f"{csv_path} lists sources without their mixtures: train on {split} with "
                                f"--dynamic-mix, which mixes them afresh")
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
        enrollment being s1/<mixture ID> or s2/<mixture ID> of this split."""
        index = {mid: (srcs, utts) for mid, _, srcs, utts in self.mixtures}
        fixed, same = {}, 0
        for n, line in enumerate(path.read_text().splitlines(), 1):
            f = line.split()
            if not f or f[0].startswith("#") or f[0] not in index:
                continue  # blank, comment, or a mixture not in this CSV
            srcs, utts = index[f[0]]
            if len(f) != 3 or f[1] not in utts:
                raise DataError(f"{path}:{n}: expected '<mixture ID> <target utterance ID> <enrollment>', got: {line}")
            sub, _, other = f[2].partition("/")
            if sub not in ("s1", "s2") or other not in index:
                raise DataError(f"{path}:{n}: enrollment {f[2]} is not a source of {self.split}")
            enroll, enroll_utt = index[other][0][int(sub[1]) - 1], index[other][1][int(sub[1]) - 1]
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
        return dict(mix=torch.from_numpy(mix), target=torch.from_numpy(target), enroll=torch.from_numpy(enroll),
                    mixture_id=mid, target_index=k, speaker=speaker_of(utts[k - 1]))


def rms_db(x):
    return 10 * np.log10(np.mean(x ** 2) + 1e-10)


class DynamicMix(torch.utils.data.Dataset):
    """Training examples mixed on the fly (dynamic mixing, as in the Asteroid, WeSep and SpeakerBeam
    recipes) from every source utterance (s1/s2 files, each once, its longest copy) of a LibriMix-layout
    split, grouped by speaker. Item i of epoch e depends on (seed, e, i) alone:
      - a target utterance, another of its speaker as the enrollment, an interferer of another speaker,
        each crop `segment` seconds (the enrollment `enroll_segment`; the interferer zero-padded);
      - speed perturbation by factors drawn from `speed` (a new pseudo-speaker: pitch and formants move),
        one for the target and its enrollment, another for the interferer;
      - the target at -33..-25 dBFS, the interferer within +-rel_db dB of it; "noisy": a noise file at -38..-30;
      - shares: `single` without interferer, `absent` with the target absent (target = silence), `three`
        with a second interferer, `lowpass` recordings low-passed at 3.5-7.5 kHz (a band-limited channel),
        `light_noise` with coloured noise (1/f^0..2) 15-30 dB below the target.
    A mixture that would clip is scaled down with its target; `length` items make an epoch (default two
    per mixture). The mixture_id joins the utterances mixed, the target's first ('absent_' if absent)."""

    def __init__(self, root, split="train-100", mix_type="clean", freq="16k", mode="min", segment=3.0,
                 sample_rate=SAMPLE_RATE, seed=0, enroll_segment=None, length=None, single=0.1,
                 speed=SPEED, rel_db=5.0, absent=0.0, three=0.0, lowpass=0.0, light_noise=0.0):
        shares = dict(single=single, absent=absent, three=three, lowpass=lowpass, light_noise=light_noise)
        if not (all(0 <= v <= 1 for v in shares.values()) and single + absent <= 1 and 0.5 <= speed[0] <= speed[1] <= 2
                and rel_db >= 0):
            raise DataError(f"DynamicMix needs shares in [0, 1] (single + absent <= 1), 0.5 <= speed low <= high <= 2, "
                            f"rel_db >= 0; got {', '.join(f'{k} {v}' for k, v in shares.items())}, "
                            f"speed {tuple(speed)}, rel_db {rel_db}")
        self.sample_rate, self.seed, self.epoch, self.speed, self.rel_db = sample_rate, seed, 0, tuple(speed), rel_db
        self.single, self.absent, self.three, self.lowpass, self.light_noise = single, absent, three, lowpass, light_noise
        self.segment = None if segment is None else int(segment * sample_rate)
        self.enroll_segment = None if enroll_segment is None else int(enroll_segment * sample_rate)
        self.dir, csv_path = split_csv(root, split, mix_type, freq, mode)
        noise = ("noise_path",) if mix_type == "noisy" else ()
        rows = read_csv(csv_path, ("mixture_ID", "mixture_path", "source_1_path", "source_2_path") + noise)
        path = locator(rows, self.dir)
        longest = {}  # utterance ID -> (samples, a source file of it)
        for r in rows:
            n = int(float(r.get("length") or 0))
            for u, key in zip(utterances_of(r, csv_path), ("source_1_path", "source_2_path")):
                if u not in longest or n > longest[u][0]:
                    longest[u] = (n, path(r[key]))
        self.utts = defaultdict(list)  # speaker -> [(utterance ID, file)], sorted
        for u, (_, p) in sorted(longest.items()):
            self.utts[speaker_of(u)].append((u, p))
        self.targets = [(s, j) for s in sorted(self.utts) if len(self.utts[s]) > 1 for j in range(len(self.utts[s]))]
        self.pool = [(s, j) for s in sorted(self.utts) for j in range(len(self.utts[s]))]
        self.noise = sorted({path(r["noise_path"]) for r in rows}) if noise else []
        self.length = length or 2 * len(rows)
        if len(self.utts) < 2 + (three > 0) or not self.targets:
            raise DataError(f"{csv_path}: dynamic mixing needs {2 + (three > 0)} speakers and one with two utterances; "
                            f"found {len(self.utts)} speakers, {len(self.targets)} enrollable utterances")
        first = self.utts[self.pool[0][0]][0][1]
        if not first.is_file():
            raise DataError(f"{csv_path} lists {first}, which is missing; {HOW_TO_GET}")

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.length

    def read(self, path, factor, n, rng):
        """A random window of n samples (all, when shorter or n is None) of an utterance played factor
        times faster, low-passed with probability `lowpass`, and the level (dB) of the whole utterance."""
        x = load_audio(path, self.sample_rate)
        down = round(100 * factor)  # factor in steps of 0.01
        x = crop(x, None if n is None else math.ceil(n * down / 100), rng)
        y = resample_poly(x, 100, down).astype(np.float32) if down != 100 else x
        if rng.random() < self.lowpass:
            sos = butter(8, rng.uniform(3500, min(7500, 0.45 * self.sample_rate)), fs=self.sample_rate, output="sos")
            y = sosfiltfilt(sos, y).astype(np.float32)
        return y[:n], rms_db(x)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        spk, j = self.targets[rng.integers(len(self.targets))]
        utt, path = self.utts[spk][j]
        enroll_path = self.utts[spk][(j + 1 + rng.integers(len(self.utts[spk]) - 1)) % len(self.utts[spk])][1]
        f_target = rng.uniform(*self.speed)
        target, level = self.read(path, f_target, self.segment, rng)
        enroll, _ = self.read(enroll_path, f_target, self.enroll_segment, rng)
        target_db = rng.uniform(-33, -25)
        target = target * 10 ** ((target_db - level) / 20)
        mix, ids = target.copy(), [utt]
        kind = rng.random()  # < single: the target alone; < single + absent: the target absent
        n_others = 0 if kind < self.single else 2 if rng.random() < self.three else 1
        if self.single <= kind < self.single + self.absent:
            mix, target, ids = np.zeros_like(target), np.zeros_like(target), ["absent", utt]
        for _ in range(n_others):  # interferers: other speakers, each its own speed and level
            other = spk
            while other == spk or any(u.startswith(other + "-") for u in ids):
                other, k = self.pool[rng.integers(len(self.pool))]
            x, level = self.read(self.utts[other][k][1], rng.uniform(*self.speed), len(target), rng)
            start = rng.integers(len(target) - len(x) + 1)
            mix[start:start + len(x)] += x * 10 ** ((target_db - rng.uniform(-self.rel_db, self.rel_db) - level) / 20)
            ids.append(self.utts[other][k][0])
        if self.noise:
            x = load_audio(self.noise[rng.integers(len(self.noise))], self.sample_rate)
            x = crop(np.tile(x, len(mix) // len(x) + 1), len(mix), rng)
            mix = mix + x * 10 ** ((rng.uniform(-38, -30) - rms_db(x)) / 20)
        if rng.random() < self.light_noise:
            x = coloured_noise(len(mix), rng.uniform(0, 2), rng, self.sample_rate)
            mix = mix + x * 10 ** ((target_db - rng.uniform(15, 30) - rms_db(x)) / 20)
        gain = min(1.0, 0.9 / max(np.abs(mix).max(), 1e-9))  # clip protection, as LibriMix
        return dict(mix=torch.from_numpy((mix * gain).astype(np.float32)),
                    target=torch.from_numpy((target * gain).astype(np.float32)),
                    enroll=torch.from_numpy(enroll), mixture_id="_".join(ids), target_index=1, speaker=spk)


def coloured_noise(n, beta, rng, sample_rate=SAMPLE_RATE):
    """n samples of Gaussian noise with a 1/f^beta power spectrum (flat below 50 Hz)."""
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    return np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.maximum(f, 50) ** (beta / 2), n).astype(np.float32)


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
        sources_only = not path_of(rows[0]["mixture_path"]).is_file() and path_of(rows[0]["source_1_path"]).is_file()
        for r in rows:
            bad = lambda what: problems.append(f"{c.name}: {r['mixture_ID']}: {what}")
            try:  # the mixture, then its sources (and noise); the sources alone in a split for dynamic mixing
                keys = [k for k in r if k.endswith("_path") and not (sources_only and k == "mixture_path")]
                wavs = [load_audio(path_of(r[k]), None, return_rate=True) for k in keys]
                lengths = {len(x) for x, _ in wavs} | {int(float(r["length"]))}
            except (AudioError, ValueError) as e:
                bad(e)
                continue
            samples += len(wavs[0][0])
            if {sr for _, sr in wavs} != {rate}:
                bad(f"sample rates {sorted({sr for _, sr in wavs})}, expected {rate} in {mode_dir.parent.name}")
            if sources_only:
                if min(lengths) != int(float(r["length"])):
                    bad(f"the CSV's length {r['length']} is not that of the shorter source")
            elif len(lengths) > 1:
                bad(f"the files and the CSV disagree on the length: {sorted(lengths)}")
            elif np.abs(wavs[0][0] - sum(x for x, _ in wavs[1:])).max() > tolerance:
                bad("the mixture is not the sum of its sources (and noise)")
        found = len(problems) - before
        what = "pairs of sources (no mixtures: for dynamic mixing)" if sources_only else "mixtures"
        print(f"{c.relative_to(path)}: {len(rows)} {what}, {samples / (rate or 1) / 3600:.2f} h, "
              f"{f'{found} problem(s)' if found else 'ok'}")
    for p in problems[:50]:
        print(p)
    print(f"{len(problems)} problem(s)" if problems else f"{path}: {len(csvs)} CSVs, all ok")
    return problems


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Check a LibriMix-layout folder (the demo corpus: python corpus.py).")
    parser.add_argument("path")
    parser.add_argument("--limit", type=int, default=None, help="check only the first N mixtures of each CSV")
    args = parser.parse_args()
    try:
        if check(args.path, args.limit):
            sys.exit(1)
    except (DataError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
