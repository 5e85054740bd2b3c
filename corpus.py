"""
The offline demo corpus: real read speech and synthetic voices, mixed in the LibriMix layout, so that
data.py reads it exactly as it reads LibriMix.

    python data.py demo           # build ./data/demo (build_demo below)
    python corpus.py voices       # measure the base voices -> docs/evidence/voices.json
    python corpus.py pool         # a 15 MB Ogg Opus copy -> data/pool (for docs/gpu_train.sh)

Real speech (speech/, CC BY 4.0): 20 LibriSpeech dev-clean readers and 4 VCTK speakers. Synthetic
speech: sentences of a little grammar spoken by Debian's flite and festival voices, each base voice
made into many pseudo-speakers by sox (vocal-tract length and pitch). The splits:
    train-100    training speakers, real and synthetic; its sources are also data.py's DynamicMix pool
    dev          real speakers and synthetic voices held out of training
    test         real speakers held out of training (and of dev): the number that matters
    test-synth   synthetic voices held out of training (and of dev)
    test-seen    training speakers; utterances and sentences never in training
Speaker IDs: LibriSpeech readers keep their numbers (all below 10000); VCTK's pNNN is 10000 + NNN;
pseudo-speaker n of base voice v (its index in VOICES) is 100000 + 1000 v + n.
"""
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
from collections import defaultdict
from itertools import zip_longest
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from data import (SAMPLE_RATE, AudioError, DataError, DynamicMix, LibriMix, crop, load_audio, rms_db, speaker_of,
                  write_csv)

SPEECH = Path(__file__).resolve().parent / "speech"

# Base voices: Debian package, engine:voice, median F0 (Hz), where its pseudo-speakers go. Every pair
# is a different person to an independent speaker model (resemblyzer) on our sentences, and the F0
# is measured (`python corpus.py voices` measures both again: docs/evidence/voices.json, F0 within 8%).
# Whole voices are held out.
VOICES = {
    "slt": ("flite", "flite:slt", 168, "train"),
    "rms": ("flite", "flite:rms", 101, "train"),
    "kal16": ("flite", "flite:kal16", 88, "train"),
    "awb": ("flite", "flite:awb", 129, "test-synth"),
    "ked": ("festvox-kdlpc16k", "festival:ked_diphone", 102, "dev"),
    "dita": ("festvox-czech-dita", "festival:czech_dita", 216, "dev"),
    "krb": ("festvox-czech-krb", "festival:czech_krb", 250, "train"),  # a boy
    "machac": ("festvox-czech-machac", "festival:czech_machac", 75, "train"),
    "ph": ("festvox-czech-ph", "festival:czech_ph", 134, "train"),
    "lj": ("festvox-suopuhe-lj", "festival:suo_fi_lj_diphone", 155, "test-synth"),
    "mv": ("festvox-suopuhe-mv", "festival:hy_fi_mv_diphone", 82, "train"),
    "lp": ("festvox-italp16k", "festival:lp_diphone", 205, "train"),
    "pc": ("festvox-itapc16k", "festival:pc_diphone", 111, "test-synth"),
    "nsh": ("festvox-ru", "festival:msu_ru_nsh_clunits", 133, "train"),  # no speaking-rate control
    "ona": ("festvox-ca-ona-hts", "festival:upc_ca_ona_hts", 176, "train"),
}
# Measured and left out, as the same person as a voice above: flite's kal (kal16 at 8 kHz),
# festvox-kallpc16k (kal16), festvox-us-slt-hts (slt). festvox-{hi,mr,te}-nsk cannot read Latin letters.
DUPLICATES = {"kal": ("flite", "flite:kal"), "kal_diphone": ("festvox-kallpc16k", "festival:kal_diphone"),
              "slt_hts": ("festvox-us-slt-hts", "festival:cmu_us_slt_arctic_hts")}
STATEMENTS_ONLY = {"lp", "pc"}  # festival's Italian intonation fails on some English questions
APT_PACKAGES = ("flite festival sox festvox-kdlpc16k festvox-czech-dita festvox-czech-krb festvox-czech-machac "
                "festvox-czech-ph festvox-suopuhe-lj festvox-suopuhe-mv festvox-italp16k festvox-itapc16k "
                "festvox-ru festvox-ca-ona-hts")  # Debian main: everything the demo corpus needs
APT = f"sudo apt-get install {APT_PACKAGES}"

# Real speakers held out of training (SPEAKERS.TXT: sex). The other 12 LibriSpeech readers (6 F, 6 M)
# and VCTK's 4 (2 F, 2 M) train; 1/8 of each one's utterances is kept for test-seen.
REAL_HELD_OUT = {"dev": ("84", "174", "2902"),  # F M M
                 "test": ("1462", "2277", "1272", "2428", "652")}  # F F M M M
VCTK_SEX = {"p225": "F", "p226": "M", "p227": "M", "p228": "F"}  # VCTK's speaker-info.txt
VCTK_SEEN = ("011", "022")  # test-seen's VCTK sentences: one number is one text for every VCTK speaker

# Pseudo-speakers: vocal-tract-length perturbation (sox `speed` moves formants and pitch, `pitch` puts
# the pitch back) times pitch offsets around a centre half-way from the voice's own F0 to 140 Hz.
VTLP = (0.84, 0.89, 0.94, 1.0, 1.06, 1.13, 1.2)
PITCH_STEP = 250  # cents
PITCH = range(-600, 700, PITCH_STEP)  # -600 ... 650 cents
DEMO_SIZES = {"train-100": 4000, "dev": 100, "test": 200, "test-synth": 200, "test-seen": 200}  # mixtures
SPEAKERS_OF = {"train-100": "train", "dev": "dev", "test": "test", "test-synth": "test-synth", "test-seen": "train"}
REAL_SHARE = {"train-100": 0.3, "dev": 0.5, "test": 1.0, "test-synth": 0.0, "test-seen": 0.5}  # of the mixtures
USES = {"train-100": 3.0}  # mixtures per synthetic utterance (1.5 elsewhere): synthesis is most of the build

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
        pick = lambda xs: xs[rng.integers(len(xs))]
        s = re.sub(r"\{(\w+)\}", lambda m: pick(WORDS[m.group(1)]), pick(TEMPLATES))
        out[s[0].upper() + s[1:]] = None
    return list(out)


# --- the speakers: real ones from speech/, pseudo-speakers from the base voices ---

def real_speakers(seed):
    """Every LibriSpeech and VCTK speaker of speech/ with its split, and their utterances. Held out of
    a training speaker's for test-seen: 1/8 of a LibriSpeech reader's (drawn from the seed), VCTK_SEEN."""
    libri, vctk = SPEECH / "librispeech", SPEECH / "vctk"
    found = [(d.name, "librispeech", sorted(d.glob("*/*.mp3"))) for d in libri.glob("[0-9]*")]
    found += [(str(10000 + int(d.name[1:])), "vctk", sorted(d.glob("*.flac"))) for d in vctk.glob("p[0-9]*")]
    held = {spk: split for split, spks in REAL_HELD_OUT.items() for spk in spks}
    if not (libri / "SPEAKERS.TXT").is_file() or len(found) < 24 or held.keys() - {f[0] for f in found}:
        raise DataError(f"{SPEECH} lacks LibriSpeech or VCTK speakers; it comes with the repository "
                        f"(`git checkout -- speech` restores it)")
    sex = dict(line.replace(" ", "").split("|")[:2] for line in (libri / "SPEAKERS.TXT").read_text().splitlines()
               if line.strip() and not line.startswith(";"))
    texts = dict(line.split(" ", 1) for t in libri.glob("*/*/*.trans.txt") for line in t.read_text().splitlines())
    speakers, utterances = [], {}
    for spk, source, files in sorted(found, key=lambda f: int(f[0])):
        ids = [p.stem if source == "librispeech" else f"{spk}-1-{p.stem.split('_')[1]:0>4}" for p in files]
        split = held.get(spk, "train")
        seen = set(np.random.default_rng([seed, int(spk)]).permutation(ids)[:max(2, len(ids) // 8)]
                   if source == "librispeech" else [u for u in ids if u.endswith(VCTK_SEEN)])
        speakers.append(dict(speaker_ID=spk, kind="real", split=split, base_voice=source,
                             sex=sex[spk] if source == "librispeech" else VCTK_SEX[f"p{int(spk) - 10000}"],
                             vtlp=1.0, pitch_cents=0, f0_hz="", stretch=1.0))
        for u, p in zip(ids, files):
            use = split if split != "train" else "seen" if u in seen else "train"
            utterances[u] = dict(kind="real", use=use, path=str(p), text=texts.get(u, "").lower())
    return speakers, utterances


def make_speakers(seed, voices):
    """Every base voice x VTLP x pitch, as pseudo-speakers. Each voice draws from its own seed, so
    that a voice more or less changes no other voice's speakers."""
    speakers = []
    for v, voice in enumerate(VOICES):
        if voice not in voices:
            continue
        rng, f0, use = np.random.default_rng([seed, v]), VOICES[voice][2], VOICES[voice][3]
        centre = 600 * math.log2(140 / f0)
        grid = [(vtlp, p) for vtlp in VTLP for p in PITCH]
        for j, g in enumerate(rng.permutation(len(grid))):
            vtlp, cents = grid[g]
            speakers.append(dict(speaker_ID=str(100000 + 1000 * v + j), kind="synthetic", split=use,
                                 base_voice=voice, sex="", vtlp=vtlp, pitch_cents=round(centre + cents),
                                 f0_hz=round(f0 * 2 ** ((centre + cents) / 1200)),
                                 stretch=round(rng.uniform(0.88, 1.12), 3)))  # speaking rate, as duration
    return speakers


def apart(a, b):
    """Two speakers of one base voice must be more than one step apart on the VTLP x pitch grid."""
    if a["kind"] == "real" or a["base_voice"] != b["base_voice"]:
        return True
    return abs(VTLP.index(a["vtlp"]) - VTLP.index(b["vtlp"])) + abs(a["pitch_cents"] - b["pitch_cents"]) / PITCH_STEP >= 2


# --- the plan: every random choice of the build ---

def plan_demo(sizes, seed, cache, voices=tuple(VOICES)):
    """Speakers, utterances and mixtures of every split. The corpus depends on the seed alone; each
    split and kind (real, synthetic) draws from its own seed, so that an optional voice, which
    trains, changes train-100 and test-seen only."""
    real, utterances = real_speakers(seed)
    synth = make_speakers(seed, voices)
    texts = make_sentences(np.random.default_rng(seed), 6 * sum(sizes.values()) + 100)
    held_out = len(texts) // 3  # sentences of dev, test-synth and test-seen, never in training
    plans = {}
    for c, (split, n_mix) in enumerate(sizes.items()):
        group, rng = SPEAKERS_OF[split], np.random.default_rng([seed, 1000 + c])
        n_real = round(n_mix * REAL_SHARE[split])
        use = "seen" if split == "test-seen" else group
        real_pool = [s for s in real if s["split"] == group][:max(4, n_real // 3)]  # enough mixtures per speaker
        mine = [u for u, x in utterances.items() if x["kind"] == "real" and x["use"] == use]
        real_plans = pair_utterances(rng, split, n_real, real_pool, utterances, mine)
        # at least 6 slots per speaker (for enrollments); voices interleave when only some are used
        pool = sorted((s for s in synth if s["split"] == group), key=lambda s: int(s["speaker_ID"]) % 1000)
        pool = pool[:max(4, (n_mix - n_real) // 3)] if n_mix > n_real else []
        per = max(2, math.ceil(2 * (n_mix - n_real) / max(1, len(pool)) / USES.get(split, 1.5)))
        sents = texts[held_out:] if split == "train-100" else texts[:held_out]
        mine = []
        for s in pool:
            for j in range(per):
                u = dict(kind="synthetic", use=split, voice=s["base_voice"], vtlp=s["vtlp"],
                         text=sents[rng.integers(len(sents))], stretch=round(s["stretch"] * rng.uniform(0.93, 1.07), 3),
                         cents=s["pitch_cents"] + int(rng.integers(-60, 61)))
                if u["voice"] in STATEMENTS_ONLY:
                    u["text"] = u["text"].replace("?", ".")
                key = json.dumps([u[k] for k in ("voice", "vtlp", "text", "stretch", "cents")])
                u["path"] = str(cache / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".wav"))
                utterances[f"{s['speaker_ID']}-{c + 1}-{j:04d}"] = u  # speaker-chapter-utterance
                mine.append(f"{s['speaker_ID']}-{c + 1}-{j:04d}")
        synth_plans = pair_utterances(rng, split, n_mix - n_real, pool, utterances, mine)
        plans[split] = [p for pair in zip_longest(real_plans, synth_plans) for p in pair if p]  # interleaved
    return real + synth, utterances, plans


def pair_utterances(rng, split, n_mix, pool, utterances, mine):
    """Mixtures of two speakers, each time the least used speakers and utterances, LibriMix levels."""
    if n_mix == 0:
        return []
    spk = {s["speaker_ID"]: s for s in pool}
    by_spk = defaultdict(list)
    for u in mine:
        by_spk[speaker_of(u)].append(u)
    uses = defaultdict(int)
    least = lambda xs: min(zip(xs, rng.random(len(xs))), key=lambda x: (uses[x[0]], x[1]))[0]  # ties: at random
    plans, seen = [], set()
    for _ in range(n_mix):
        for attempt in range(100):
            a = least(spk)
            b = least([x for x in spk if x != a and apart(spk[a], spk[x])] or [x for x in spk if x != a])
            pick = lambda xs: xs[rng.integers(len(xs))]
            u = [least(by_spk[a]), least(by_spk[b])] if attempt == 0 else [pick(by_spk[a]), pick(by_spk[b])]
            if rng.random() < 0.5:
                u.reverse()
            if "_".join(u) not in seen:
                break
        else:
            raise DataError(f"too few utterances for {n_mix} distinct mixtures in {split}")
        seen.add("_".join(u))
        for x in (a, b, *u):
            uses[x] += 1
        others = [mine[k] for k in rng.choice(len(mine), min(10, len(mine)), replace=False) if speaker_of(mine[k]) not in (a, b)]
        babble = others[:rng.integers(3, 6)] if rng.random() < 0.5 else []  # else coloured noise
        plans.append(dict(mixture_ID="_".join(u), sources=[utterances[v]["path"] for v in u],
                          levels=rng.uniform(-33, -25, 2).tolist(), noise_db=rng.uniform(-38, -30),  # as LibriMix
                          babble=[utterances[v]["path"] for v in babble], beta=rng.uniform(0, 2),
                          seed=int(rng.integers(2**31))))
    return plans


# --- speaking: flite and festival, then sox ---

def run(cmd):
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        said = " ".join(r.stderr.decode(errors="replace").split()[-20:])
        raise DataError(f"{cmd[0]} failed (exit {r.returncode}: {said}); the demo needs: {APT}")


def installed_voices():
    """The base voices (VOICES and DUPLICATES) that this machine can speak."""
    have = set()
    if shutil.which("flite"):
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        have |= {f"flite:{v}" for v in listed}
    if shutil.which("festival"):
        r = subprocess.run(["festival", "--pipe"], input="(print (voice.list))", capture_output=True, text=True)
        have |= {f"festival:{v}" for v in re.findall(r"[\w-]+", r.stdout)}
    return [v for v, spec in {**VOICES, **DUPLICATES}.items() if spec[1] in have]


def check_voices():
    """The voices to use: every one of VOICES, or a one-line error naming what to install."""
    if any(shutil.which(tool) is None for tool in ("flite", "festival", "sox")):
        raise DataError(f"the demo corpus is spoken by flite and festival, then shaped by sox: {APT}")
    have = installed_voices()
    missing = [v for v in VOICES if v not in have]
    if missing:
        packages = sorted({VOICES[v][0] for v in missing})
        raise DataError(f"voices {', '.join(missing)} are missing (packages {' '.join(packages)}); "
                        f"the demo corpus needs: {APT}")
    return list(VOICES)


def synthesise(jobs):
    """Speak utterances of one base voice into the cache (cached ones are skipped)."""
    jobs = [j for j in jobs if not Path(j["path"]).is_file()]
    if not jobs:
        return 0
    engine, name = {**VOICES, **DUPLICATES}[jobs[0]["voice"]][1].split(":")
    with tempfile.TemporaryDirectory() as tmp:
        raw = [f"{tmp}/{n}.wav" for n in range(len(jobs))]
        # the synthesiser sets the speaking rate, times vtlp since sox `speed` shortens by vtlp
        if engine == "festival":  # one festival for the batch: it takes 0.3 s to start
            hts = name.endswith("_hts")  # diphone voices read Duration_Stretch, HTS ones -r (a rate)
            lines = [f"(voice_{name})"] + ["(set! hts_base hts_engine_params)"] * hts
            for j, r in zip(jobs, raw):
                stretch = j["stretch"] * j["vtlp"]
                lines += [f"(set! hts_engine_params (append hts_base (list (list \"-r\" {1 / stretch:.4f}))))" if hts
                          else f"(Parameter.set 'Duration_Stretch {stretch:.4f})",
                          f"(unwind-protect (utt.save.wave (utt.synth (Utterance Text \"{j['text']}\")) \"{r}\" 'riff) nil)"]
            Path(tmp, "batch.scm").write_text("\n".join(lines))
            run(["festival", "-b", f"{tmp}/batch.scm"])
        for j, r in zip(jobs, raw):
            if engine == "flite":
                run(["flite", "-voice", name, "--setf", f"duration_stretch={j['stretch'] * j['vtlp']:.4f}",
                     "-t", j["text"], "-o", r])
            if not Path(r).is_file():
                raise DataError(f"{engine} voice {name} could not say {j['text']!r}")
            cents = j["cents"] - 1200 * math.log2(j["vtlp"])  # `pitch` first: sox 14.4.2 crashes on `speed pitch`
            part = j["path"][:-4] + ".part.wav"
            run(["sox", "-G", r, "-b", "16", part, "pitch", f"{cents:.1f}", "speed", str(j["vtlp"]),
                 "rate", str(SAMPLE_RATE)])
            os.replace(part, j["path"])
    return len(jobs)


# --- mixing, as LibriMix does ---

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
    voices = check_voices()
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
    speakers, utterances, plans = plan_demo(sizes, seed, out / "cache", voices)

    jobs = defaultdict(list)  # base voice -> utterances to speak
    for u in utterances.values():
        if u["kind"] == "synthetic":
            jobs[u["voice"]].append(u)
    mode_dir, results = (out / "Libri2Mix" / "wav16k" / "min").resolve(), {}
    with Pool(max(1, workers)) as pool:
        n_synth = sum(map(len, jobs.values()))
        print(f"speaking {n_synth} utterances with {len(jobs)} voices and {workers} workers")
        batches = [v[i:i + 40] for v in jobs.values() for i in range(0, len(v), 40)]
        spoken = sum(pool.imap_unordered(synthesise, batches))
        print(f"{spoken} spoken, {n_synth - spoken} from the cache ({time.time() - t0:.0f} s); mixing")
        for split, split_plans in plans.items():
            for sub in ("mix_clean", "mix_both", "s1", "s2", "noise"):
                (mode_dir / split / sub).mkdir(parents=True)
            results[split] = pool.map(write_mixture, [(p, mode_dir / split) for p in split_plans], chunksize=8)

    (mode_dir / "metadata").mkdir()
    summary, used, by_id = {}, set(), {s["speaker_ID"]: s for s in speakers}
    print(f"{'split':10} {'mixtures':>8} {'real':>5} {'pseudo':>6} {'voices':>6} {'utts':>5} {'hours':>5}   "
          f"s1-to-s2 dB   speech-to-noise dB")
    for split, split_plans in plans.items():
        ids = [p["mixture_ID"] for p in split_plans]
        wav = lambda sub, mid: mode_dir / split / sub / f"{mid}.wav"
        for sub in ("mix_clean", "mix_both"):
            write_csv(mode_dir / "metadata" / f"mixture_{split}_{sub}.csv", [dict(
                mixture_ID=mid, original_mixture_ID=mid, mixture_path=wav(sub, mid), source_1_path=wav("s1", mid),
                source_2_path=wav("s2", mid), **({"noise_path": wav("noise", mid)} if sub == "mix_both" else {}),
                length=n) for mid, (n, _, _) in zip(ids, results[split])])
        if not split.startswith("train"):
            LibriMix(out, split, segment=None)  # draws and writes the fixed enrollment list
        n, tir, snr = np.array(results[split]).T
        utts = {u for mid in ids for u in mid.split("_")}
        used |= utts
        spk = [by_id[s] for s in {speaker_of(u) for u in utts}]
        s = summary[split] = dict(
            mixtures=len(ids), real_speakers=sum(x["kind"] == "real" for x in spk),
            pseudo_speakers=sum(x["kind"] == "synthetic" for x in spk),
            base_voices=sorted({x["base_voice"] for x in spk if x["kind"] == "synthetic"}), utterances=len(utts),
            hours=round(n.sum() / SAMPLE_RATE / 3600, 2), s1_to_s2_db=[tir.min(), tir.max()],
            speech_to_noise_db=[snr.min(), snr.max()])
        print(f"{split:10} {len(ids):8} {s['real_speakers']:5} {s['pseudo_speakers']:6} {len(s['base_voices']):6} "
              f"{len(utts):5} {s['hours']:5.2f}  {tir.min():5.1f} ..{tir.max():5.1f}  {snr.min():6.1f} ..{snr.max():5.1f}")
    write_csv(out / "speakers.csv", [s for s in speakers if s["speaker_ID"] in {speaker_of(u) for u in used}])
    write_csv(out / "utterances.csv", [dict(utterance_ID=u, text=utterances[u]["text"]) for u in sorted(used)])
    (out / "build.json").write_text(json.dumps(dict(sizes=sizes, seed=seed, voices=voices, summary=summary), indent=1))
    held = lambda use: ", ".join(v for v in voices if VOICES[v][3] == use)
    print(f"built {out} in {time.time() - t0:.0f} s; held-out voices: {held('dev')} (dev), {held('test-synth')} "
          f"(test-synth); held-out readers: {', '.join(REAL_HELD_OUT['dev'])} (dev), {', '.join(REAL_HELD_OUT['test'])} (test)")


# --- a small copy for a machine without the voices or with little room ---

def build_pool(src="data/demo", out="data/pool", max_mb=15.0, max_seconds=3.5, dev_mixtures=50, quality=0.96):
    """Copy the demo corpus in Ogg Opus (compression level `quality`) into about max_mb: the
    dev mixtures, their sources and enrollments; and train-100's source utterances, cropped to
    max_seconds, taken one per speaker in turn until the budget is spent. train-100 holds sources only
    (its CSV pairs them), for `train.py --dynamic-mix`, which draws fresh mixtures anyway. Made for
    a lent GPU machine, which has no flite or sox and takes 64 MiB with the repository."""
    t0, out = time.time(), Path(out)
    if out.exists():
        raise DataError(f"{out} exists; choose another --out or delete it")
    mode_dir, budget = out / "Libri2Mix" / "wav16k" / "min", max_mb * 1e6
    opus = lambda x, path: (path.parent.mkdir(parents=True, exist_ok=True),
                            sf.write(path, x, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=quality))
    dev = LibriMix(src, "dev", segment=None)  # its fixed enrollments too
    rows, enrolls = [], []
    for mid, mix, (s1, s2), _ in dev.mixtures[:dev_mixtures]:
        new = {sub: f"dev/{sub}/{mid}.ogg" for sub in ("mix_clean", "s1", "s2")}
        audio = {sub: load_audio(f) for sub, f in zip(new, (mix, s1, s2))}
        for sub, x in audio.items():
            opus(x, mode_dir / new[sub])
        rows.append(dict(mixture_ID=mid, original_mixture_ID=mid, mixture_path=new["mix_clean"],
                         source_1_path=new["s1"], source_2_path=new["s2"], length=len(audio["s1"])))
        for k in (1, 2):
            if (mid, k) in dev.fixed:
                enroll = dev.fixed[mid, k]
                e = f"dev/{enroll.parent.name}/{enroll.stem}.ogg"  # a source of dev
                if not (mode_dir / e).is_file():
                    opus(load_audio(enroll), mode_dir / e)
                enrolls.append(dict(mixture_ID=mid, target_index=k, enrollment_path=e))
    (mode_dir / "metadata").mkdir(parents=True)
    write_csv(mode_dir / "metadata" / "mixture_dev_mix_clean.csv", rows)
    write_csv(mode_dir / "metadata" / "enrollment_dev.csv", enrolls)
    used = sum(f.stat().st_size for f in out.rglob("*.ogg"))

    train = DynamicMix(src, "train-100")
    turns = zip_longest(*(train.utts[s] for s in sorted(train.utts)))  # one utterance per speaker in turn
    pool, path = [], lambda u: f"train-100/s1/{u}.ogg"
    for u, f in (x for turn in turns for x in turn if x):
        if used > budget:
            break
        x, dst = load_audio(f)[:int(max_seconds * SAMPLE_RATE)], mode_dir / path(u)
        opus(x, dst)
        used += dst.stat().st_size
        pool.append((u, len(x)))
    write_csv(mode_dir / "metadata" / "mixture_train-100_mix_clean.csv", [dict(
        mixture_ID=f"{a}_{b}", original_mixture_ID=f"{a}_{b}", mixture_path=f"train-100/mix_clean/{a}_{b}.wav",
        source_1_path=path(a), source_2_path=path(b), length=min(n, m))
        for (a, n), (b, m) in zip(pool[0::2], pool[1::2] + pool[:1])])  # an odd last one pairs with the first
    speakers = {speaker_of(u) for u, _ in pool}
    print(f"wrote {out}: {len(rows)} dev mixtures, {len(pool)} training utterances of {len(speakers)} speakers "
          f"(of {sum(map(len, train.utts.values()))} utterances, {len(train.utts)} speakers), "
          f"{used / 1e6:.1f} MB, in {time.time() - t0:.0f} s; train on it with --dynamic-mix")

# --- the voice inventory, measured ---

def median_f0(x, rate=SAMPLE_RATE, lo=50, hi=400):
    """Median F0 (Hz) of the voiced 40 ms frames: the peak of the autocorrelation, corrected for
    the window's own, between 1/hi and 1/lo seconds."""
    n, lags = int(0.04 * rate), np.arange(rate // hi, rate // lo)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::n // 4]  # (frames, n)
    frames = frames - frames.mean(1, keepdims=True)
    energy = (frames ** 2).sum(1)
    frames = frames[energy > 0.3 * np.median(energy[energy > 0])]  # speech, not pauses
    ac = lambda y: np.fft.irfft(np.abs(np.fft.rfft(y, 2 * n)) ** 2)[..., :n]
    r = ac(frames * np.hanning(n)) / ac(np.hanning(n))
    r = r / r[:, :1]
    best = lags[r[:, lags].argmax(1)]
    voiced = r[np.arange(len(r)), best] > 0.5
    return float(np.median(rate / best[voiced]))


def measure_voices(out="docs/evidence/voices.json", n=8, seed=0, threshold=0.8, workers=2):
    """Speak n sentences with every installed base voice (VOICES, and DUPLICATES to show why they are
    left out), embed each utterance with resemblyzer's pretrained speaker encoder (trained on
    thousands of speakers, independent of ours), and compare: the mean cosine between utterances of
    two voices, and between different sentences of one voice. A voice is distinct when it scores at
    most `threshold` with each distinct voice before it."""
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError:
        raise DataError("measuring voices needs resemblyzer: pip install -r requirements-eval.txt") from None
    voices = installed_voices()
    texts = make_sentences(np.random.default_rng([seed, 99]), n)
    with tempfile.TemporaryDirectory() as tmp, Pool(max(1, workers)) as pool:
        jobs = {v: [dict(voice=v, text=t.replace("?", ".") if v in STATEMENTS_ONLY else t, vtlp=1.0, stretch=1.0,
                         cents=0, path=f"{tmp}/{v}-{k}.wav") for k, t in enumerate(texts)] for v in voices}
        pool.map(synthesise, jobs.values())
        wavs = {v: [load_audio(j["path"]) for j in js] for v, js in jobs.items()}
    encoder = VoiceEncoder("cpu", verbose=False)
    emb = {v: np.stack([encoder.embed_utterance(preprocess_wav(x, SAMPLE_RATE)) for x in xs]) for v, xs in wavs.items()}
    off_diagonal = ~np.eye(n, dtype=bool)
    score = lambda a, b: float((emb[a] @ emb[b].T)[off_diagonal if a == b else slice(None)].mean())
    cosine = {a: {b: round(score(a, b), 3) for b in voices} for a in voices}
    distinct = []
    for v in voices:
        if all(cosine[v][d] <= threshold for d in distinct):
            distinct.append(v)
    report = dict(
        what="resemblyzer cosine between base voices reading our sentences: mean over utterance pairs, "
             "different sentences on the diagonal", threshold=threshold, sentences=texts,
        distinct=distinct, n_distinct=sum(v in VOICES for v in distinct), voices={})
    for v in voices:
        spec = {**VOICES, **DUPLICATES}[v]
        nearest = max((b for b in voices if b != v), key=lambda b: cosine[v][b])
        report["voices"][v] = dict(package=spec[0], engine=spec[1], use=spec[3] if v in VOICES else "not used",
                                   f0_hz=round(float(np.median([median_f0(x) for x in wavs[v]]))),
                                   same_voice=cosine[v][v], nearest=nearest, nearest_cosine=cosine[v][nearest])
    report["cosine"] = cosine
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'voice':11} {'use':10} {'F0':>4} " + " ".join(f"{v[:6]:>6}" for v in voices))
    for v in voices:
        r = report["voices"][v]
        print(f"{v:11} {r['use']:10} {r['f0_hz']:4} " + " ".join(f"{cosine[v][b]:6.2f}" for b in voices))
    print(f"{report['n_distinct']} distinct base voices of {len(VOICES)} (cosine <= {threshold} to each other; "
          f"the same voice on two sentences scores {min(cosine[v][v] for v in voices):.2f} or more); wrote {out}")
    return report


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="The demo corpus's voice inventory and its small copy (build it: python data.py demo).")
    sub = parser.add_subparsers(dest="command", required=True)
    voices = sub.add_parser("voices", help="measure how distinct the base voices are (resemblyzer) and their F0")
    voices.add_argument("--out", default="docs/evidence/voices.json")
    voices.add_argument("--sentences", type=int, default=8)
    pool = sub.add_parser("pool", help="a small Ogg Opus copy (dev, and train-100's sources for --dynamic-mix), "
                                       "e.g. for a GPU machine without flite or sox")
    pool.add_argument("--data", default="data/demo", help="the demo corpus (default data/demo)")
    pool.add_argument("--out", default="data/pool")
    pool.add_argument("--max-mb", type=float, default=15.0, help="size budget in MB (default 15)")
    pool.add_argument("--max-seconds", type=float, default=3.5, help="crop training utterances (default 3.5)")
    args = parser.parse_args()
    try:
        if args.command == "pool":
            build_pool(args.data, args.out, args.max_mb, args.max_seconds)
        else:
            measure_voices(args.out, args.sentences)
    except (DataError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
