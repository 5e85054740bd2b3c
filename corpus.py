"""
The offline demo corpus: real read speech of the 310 speakers in speech/, mixed in the LibriMix
layout, so that data.py reads it exactly as it reads LibriMix.

    python corpus.py              # build ./data/demo in a few minutes (nothing to download)

speech/speakers.csv says which speakers are held out. The splits, under Libri2Mix/wav16k/min/:
    train-100   every utterance of the 262 training speakers but test-seen's, as sources only
                (16 kHz FLAC in s1/): train on it with dynamic mixing (train.py --dynamic-mix)
    dev         fixed two-speaker mixtures of the 15 dev speakers
    test        fixed mixtures of the 33 test speakers, never heard in training: the number that matters
    test-seen   fixed mixtures of utterances of training speakers that training never saw
Four sources, two bands: LibriSpeech (once MP3) stops near 5.8 kHz, speechocean762, Common Voice and VCTK
are full band (to 8 kHz). Mixtures are made as LibriMix makes them (levels, clip protection, min
mode, mix_both = mix_clean + noise), with coloured Gaussian noise where LibriMix has WHAM! noise.
Utterance IDs are speaker-chapter-utterance, as LibriSpeech's; the speaker IDs are speech/'s.
transcripts.csv holds what each English utterance of the fixed mixtures says (LibriSpeech's and
speechocean762's own transcripts) and its length, for eval.py's word error rate.
"""
import argparse
import csv
import json
import shutil
import sys
import time
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from common import SAMPLE_RATE, AudioError, DataError, load_audio, read_csv, write_csv
from data import LibriMix, coloured_noise, rms_db, speaker_of

SPEECH = Path(__file__).resolve().parent / "speech"
SIZES = {"dev": 100, "test": 300, "test-seen": 100}  # fixed mixtures per split
SEEN_SPEAKERS, SEEN_UTTERANCES = 50, 4  # test-seen: utterances held out of this many training speakers


def utterance_id(source, path):
    """speaker-chapter-utterance for a file of speech/<source>/ (speech/README.md gives the IDs)."""
    if source == "librispeech":
        return path.stem  # 84-121123-0000
    if source == "vctk":
        return f"{10000 + int(path.parent.name[1:])}-1-{path.stem.split('_')[1]:0>4}"  # p225/p225_003
    if source == "speechocean762":
        return f"{20000 + int(path.parent.name[7:])}-1-{path.stem}"  # SPEAKER0001/000010011
    return f"{path.parent.name.split('-')[0]}-1-{path.stem.split('_')[-1]}"  # 30001-fa-.../common_voice_fa_37027019


def real_speech(speech=SPEECH):
    """The speakers of speech/speakers.csv and every utterance ID -> its file."""
    table = speech / "speakers.csv"
    if not table.is_file():
        raise DataError(f"{table} is missing; it comes with the repository (`git checkout -- speech` restores it)")
    speakers = {r["speaker"]: r for r in read_csv(table, ("speaker", "source", "sex", "split", "seconds"))}
    files = {}
    for source, pattern in (("librispeech", "*/*/*.opus"), ("vctk", "*/*.opus"), ("speechocean762", "*/*.opus"),
                            ("commonvoice", "*/*.opus")):
        for p in sorted((speech / source).glob(pattern)):
            files[utterance_id(source, p)] = p
    found = {speaker_of(u) for u in files}
    if found != set(speakers):
        missing = sorted(set(speakers) - found, key=int)
        raise DataError(f"{speech} has no audio for {len(missing)} speakers of speakers.csv ({', '.join(missing[:5])}"
                        f"{' ...' if len(missing) > 5 else ''}); `git checkout -- speech` restores it")
    return speakers, files


def plan(speakers, files, sizes, seed):
    """Every random choice of the build: which utterances each split uses, and its mixtures."""
    rng = np.random.default_rng(seed)
    by_speaker = defaultdict(list)
    for u in sorted(files):
        by_speaker[speaker_of(u)].append(u)
    train = sorted((s for s in speakers if speakers[s]["split"] == "train"), key=int)
    seen = [s for s in rng.permutation(train) if len(by_speaker[s]) >= SEEN_UTTERANCES + 2][:SEEN_SPEAKERS]
    held = {u for s in seen for u in rng.permutation(by_speaker[s])[:SEEN_UTTERANCES]}
    pools = {"train-100": [u for s in train for u in by_speaker[s] if u not in held],
             "test-seen": sorted(held)}
    for split in ("dev", "test"):
        pools[split] = [u for s in speakers if speakers[s]["split"] == split for u in by_speaker[s]]
    mixtures = {split: mix_pairs(pools[split], n, np.random.default_rng([seed, list(SIZES).index(split)]))
                for split, n in sizes.items()}  # each split its own seed: one split's size changes no other
    return pools["train-100"], mixtures


def mix_pairs(utts, n, rng):
    """n distinct mixtures of two utterances of different speakers, each time from the least used
    speakers, then their least used utterances (ties at random), at LibriMix's levels."""
    by_speaker = defaultdict(list)
    for u in utts:
        by_speaker[speaker_of(u)].append(u)
    uses, made, out = defaultdict(int), set(), []
    least = lambda xs: min(xs, key=lambda x: (uses[x], rng.random()))
    while len(out) < n:
        a = least(sorted(by_speaker))
        b = least([s for s in sorted(by_speaker) if s != a])
        for attempt in range(100):
            pair = [least(by_speaker[a]), least(by_speaker[b])] if attempt == 0 else \
                   [rng.choice(by_speaker[a]), rng.choice(by_speaker[b])]
            if rng.random() < 0.5:
                pair.reverse()
            if "_".join(pair) not in made:
                break
        else:
            raise DataError(f"too few utterances for {n} distinct mixtures")
        made.add("_".join(pair))
        for x in (a, b, *pair):
            uses[x] += 1
        out.append(dict(mixture_ID="_".join(pair), levels=rng.uniform(-33, -25, 2).tolist(),
                        noise_db=rng.uniform(-38, -30), beta=rng.uniform(0, 2), seed=int(rng.integers(2**31))))
    return out


def write_source(job):
    """One training utterance, decoded and resampled to a 16 kHz FLAC file; its length in samples."""
    src, dst = job
    x = load_audio(src)
    sf.write(dst, x, SAMPLE_RATE, subtype="PCM_16")
    return len(x)


def write_mixture(job):
    """One min-mode mixture as LibriMix writes it (loudness, clip protection), in int16 so that
    mix_clean == s1 + s2 and mix_both == s1 + s2 + noise hold exactly. Returns its length and the
    levels of s1 to s2 and of speech to noise (dB)."""
    mixture, sources, out = job
    rng = np.random.default_rng(mixture["seed"])
    srcs = [load_audio(p) for p in sources]
    srcs = [x * 10 ** ((db - rms_db(x)) / 20) for x, db in zip(srcs, mixture["levels"])]
    srcs = [x * 0.9 / np.abs(x).max() if np.abs(x).max() >= 1 else x for x in srcs]  # a clipping source
    n = max(len(x) for x in srcs)
    noise = coloured_noise(n, mixture["beta"], rng)
    noise *= 10 ** ((mixture["noise_db"] - rms_db(noise)) / 20)
    full = noise + sum(np.pad(x, (0, n - len(x))) for x in srcs)  # max mode, where LibriMix checks
    gain = min(1.0, 0.9 / np.abs(full).max())  # a clipping mixture: scale everything
    n = min(len(x) for x in srcs)  # min mode
    s1, s2, noise = [np.round(x[:n] * gain * 32768).astype(np.int32) for x in (*srcs, noise)]
    wavs = dict(s1=s1, s2=s2, noise=noise, mix_clean=s1 + s2, mix_both=s1 + s2 + noise)
    for sub, x in wavs.items():
        sf.write(out / sub / f"{mixture['mixture_ID']}.wav", x.astype(np.int16), SAMPLE_RATE)
    db = lambda a, b: float(rms_db(wavs[a] / 32768) - rms_db(wavs[b] / 32768))
    return n, db("s1", "s2"), db("mix_clean", "noise")


# -----------------------------------------------------------------------------
# transcripts: the references of eval.py's word error rate


def transcripts(speech=SPEECH):
    """utterance ID -> what it says, for the sources that come with transcripts: LibriSpeech's
    *.trans.txt and speechocean762's utterances.tsv (VCTK has none here; Common Voice is not English)."""
    out = {}
    for f in sorted((speech / "librispeech").glob("*/*/*.trans.txt")):
        for line in f.read_text().splitlines():
            utt, _, text = line.partition(" ")
            out[utt] = text
    table = speech / "speechocean762" / "utterances.tsv"
    if table.is_file():
        with open(table, newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):  # speaker, utterance, text
                out[f"{20000 + int(r['speaker'][7:])}-1-{r['utterance']}"] = r["text"]
    return out


def utterance_seconds(path):
    return len(load_audio(path)) / SAMPLE_RATE


def write_transcripts(out, speech=SPEECH, workers=2):
    """out/transcripts.csv: utterance, seconds, text for every utterance with a transcript in the fixed
    mixtures (dev, test, test-seen). Its length tells eval.py whether min mode cut the utterance short."""
    mode_dir = Path(out) / "Libri2Mix" / "wav16k" / "min"
    used = sorted({u for f in sorted(mode_dir.glob("metadata/mixture_*_mix_clean.csv")) if "train" not in f.name
                   for r in read_csv(f, ("mixture_ID",)) for u in r["mixture_ID"].split("_")})
    texts = transcripts(Path(speech))
    _, files = real_speech(Path(speech))
    used = [u for u in used if u in texts]
    with Pool(max(1, workers)) as pool:
        seconds = pool.map(utterance_seconds, [files[u] for u in used], chunksize=16)
    if not used:
        return print(f"no utterance of {out}'s mixtures has a transcript: WER will be against Whisper's own")
    write_csv(Path(out) / "transcripts.csv", [dict(utterance=u, seconds=round(s, 4), text=texts[u])
                                              for u, s in zip(used, seconds)])
    print(f"wrote {Path(out) / 'transcripts.csv'}: {len(used)} utterances with a transcript")


def build_demo(out="data/demo", sizes=SIZES, seed=0, workers=2, force=False, speech=SPEECH):
    """Build the demo corpus in the LibriMix layout (wav16k/min) and print a summary. A complete
    corpus is kept (force rebuilds it); any other folder at out is never written into."""
    t0, out = time.time(), Path(out)
    if (out / "build.json").is_file() and not force:
        built = json.loads((out / "build.json").read_text())["sizes"]
        print(f"{out} is complete ({', '.join(f'{k} {v}' for k, v in built.items())} mixtures); --force rebuilds it")
        if not (out / "transcripts.csv").is_file():  # built before the corpus carried its transcripts
            write_transcripts(out, speech, workers)
        return
    if out.is_dir() and any(out.iterdir()) and not (out / "Libri2Mix").is_dir():
        raise DataError(f"{out} exists and is not a demo corpus built by corpus.py; choose another --out")
    speakers, files = real_speech(Path(speech))
    train, mixtures = plan(speakers, files, {k: v for k, v in sizes.items() if v > 0}, seed)
    for p in (out / "Libri2Mix", out / "build.json", out / "transcripts.csv"):  # a previous or interrupted build
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    mode_dir = (out / "Libri2Mix" / "wav16k" / "min").resolve()
    (mode_dir / "metadata").mkdir(parents=True)
    (mode_dir / "train-100" / "s1").mkdir(parents=True)
    flac = {u: mode_dir / "train-100" / "s1" / f"{u}.flac" for u in train}
    with Pool(max(1, workers)) as pool:
        print(f"decoding {len(train)} training utterances of {len({speaker_of(u) for u in train})} speakers "
              f"with {workers} workers")
        lengths = dict(zip(train, pool.map(write_source, [(files[u], flac[u]) for u in train], chunksize=16)))
        results = {}
        for split, mixes in mixtures.items():
            for sub in ("mix_clean", "mix_both", "s1", "s2", "noise"):
                (mode_dir / split / sub).mkdir(parents=True)
            jobs = [(m, [files[u] for u in m["mixture_ID"].split("_")], mode_dir / split) for m in mixes]
            results[split] = pool.map(write_mixture, jobs, chunksize=8)

    # train-100: sources only, paired in its CSV as LibriMix pairs them (DynamicMix reads the sources)
    pairs = list(zip(train[0::2], train[1::2] + train[:1]))  # an odd last one pairs with the first
    write_csv(mode_dir / "metadata" / "mixture_train-100_mix_clean.csv", [dict(
        mixture_ID=f"{a}_{b}", original_mixture_ID=f"{a}_{b}", mixture_path=mode_dir / f"train-100/mix_clean/{a}_{b}.wav",
        source_1_path=flac[a], source_2_path=flac[b], length=min(lengths[a], lengths[b])) for a, b in pairs])
    summary = {"train-100": dict(sources=len(train), speakers=len({speaker_of(u) for u in train}),
                                 hours=round(sum(lengths.values()) / SAMPLE_RATE / 3600, 2))}
    print(f"{'split':10} {'mixtures':>8} {'speakers':>8} {'full band':>9} {'utts':>5} {'hours':>5}   "
          f"s1-to-s2 dB   speech-to-noise dB")
    print(f"{'train-100':10} {'-':>8} {summary['train-100']['speakers']:8} {'':9} {len(train):5} "
          f"{summary['train-100']['hours']:5.2f}   (sources for dynamic mixing)")
    for split, mixes in mixtures.items():
        ids = [m["mixture_ID"] for m in mixes]
        wav = lambda sub, mid: mode_dir / split / sub / f"{mid}.wav"
        for sub in ("mix_clean", "mix_both"):
            write_csv(mode_dir / "metadata" / f"mixture_{split}_{sub}.csv", [dict(
                mixture_ID=mid, original_mixture_ID=mid, mixture_path=wav(sub, mid), source_1_path=wav("s1", mid),
                source_2_path=wav("s2", mid), **({"noise_path": wav("noise", mid)} if sub == "mix_both" else {}),
                length=n) for mid, (n, _, _) in zip(ids, results[split])])
        LibriMix(out, split, segment=None)  # draws and writes the fixed enrollment list
        n, tir, snr = np.array(results[split]).T
        utts = {u for mid in ids for u in mid.split("_")}
        spk = {speaker_of(u) for u in utts}
        full = sum(speakers[s]["source"] != "librispeech" for s in spk)
        s = summary[split] = dict(mixtures=len(ids), speakers=len(spk), full_band_speakers=full,
                                  utterances=len(utts), hours=round(n.sum() / SAMPLE_RATE / 3600, 2),
                                  s1_to_s2_db=[tir.min(), tir.max()], speech_to_noise_db=[snr.min(), snr.max()])
        print(f"{split:10} {len(ids):8} {len(spk):8} {full:9} {len(utts):5} {s['hours']:5.2f}  "
              f"{tir.min():5.1f} ..{tir.max():5.1f}  {snr.min():6.1f} ..{snr.max():5.1f}")
    used = {speaker_of(u) for u in train} | {speaker_of(u) for m in mixtures.values() for x in m
                                             for u in x["mixture_ID"].split("_")}
    write_csv(out / "speakers.csv", [r for s, r in speakers.items() if s in used])
    write_transcripts(out, speech, workers)
    (out / "build.json").write_text(json.dumps(dict(sizes=sizes, seed=seed, summary=summary), indent=1))
    print(f"built {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Build the offline demo corpus from speech/ (real speech, "
                                                 "LibriMix layout).")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "data" / "demo"),
                        help="where to build it (default data/demo in this repository)")
    for split, n in SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=n, help=f"mixtures in {split} (default {n})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--force", action="store_true", help="rebuild an existing corpus")
    args = parser.parse_args()
    try:
        build_demo(args.out, {s: getattr(args, s.replace("-", "_")) for s in SIZES}, args.seed, args.workers, args.force)
    except (DataError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
