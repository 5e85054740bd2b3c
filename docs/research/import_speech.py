"""
How speech/ was made from the four openly licensed sets described in speech/README.md (a folder laid
out as ../shared/speech: librispeech-dev-clean-20, vctk-4, speechocean762-250, commonvoice-cc0), and
its inventory speech/speakers.csv. Run once; the repository holds the result.

    python docs/research/import_speech.py SRC [--out speech]

Speaker IDs are numbers, unique across sources: a LibriSpeech reader keeps its own; VCTK pNNN is
10000 + NNN; speechocean762 SPEAKERnnnn is 20000 + nnnn; the k-th Common Voice contributor (sorted by
folder) is 30000 + k, its folder <ID>-<language>-<client prefix>. Held out, whole speakers, drawn from
seed 0 and balanced by sex (speechocean762 also by age): test 24 speechocean762, 5 LibriSpeech, 4 Common
Voice; dev 10, 3, 2. Every other speaker trains.
"""
import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

LIBRI_HELD_OUT = {"dev": ("84", "174", "2902"), "test": ("1462", "2277", "1272", "2428", "652")}  # as before
HELD_OUT = {"speechocean762": {"test": 24, "dev": 10}, "commonvoice": {"test": 4, "dev": 2}}
VCTK_SEX = {"p225": "F", "p226": "M", "p227": "M", "p228": "F"}  # VCTK's speaker-info.txt


def seconds(files):
    return round(sum(sf.info(f).frames / sf.info(f).samplerate for f in files), 1)


def hold_out(speakers, counts, rng):
    """Split a source's speakers: sorted by stratum (ties at random), test takes evenly spaced ones,
    then dev evenly spaced ones of the rest."""
    left = sorted(speakers, key=lambda s: (s["stratum"], rng.random()))
    for s in speakers:
        s["split"] = "train"
    for split, k in counts.items():
        picks = [left[int((j + 0.5) * len(left) / k)] for j in range(k)]
        for s in picks:
            s["split"] = split
        left = [s for s in left if s not in picks]


def main(src, out):
    src, out, rng = Path(src), Path(out), np.random.default_rng(0)
    rows = []
    # LibriSpeech: as it is (MP3)
    libri = out / "librispeech"
    if not libri.is_dir():
        shutil.copytree(src / "librispeech-dev-clean-20", libri)
    sex = dict(line.replace(" ", "").split("|")[:2] for line in (libri / "SPEAKERS.TXT").read_text().splitlines()
               if line.strip() and not line.startswith(";"))
    held = {spk: split for split, spks in LIBRI_HELD_OUT.items() for spk in spks}
    for d in sorted(libri.glob("[0-9]*"), key=lambda d: int(d.name)):
        rows.append(dict(speaker=d.name, source="librispeech", sex=sex[d.name], split=held.get(d.name, "train"),
                         seconds=seconds(d.glob("*/*.mp3"))))
    # VCTK: the WAVs in Ogg Opus
    for d in sorted((src / "vctk-4").glob("p[0-9]*")):
        dst = out / "vctk" / d.name
        dst.mkdir(parents=True, exist_ok=True)
        for w in sorted(d.glob("*.wav")):
            x, rate = sf.read(w)
            sf.write(dst / (w.stem + ".opus"), x, rate, format="OGG", subtype="OPUS")
        rows.append(dict(speaker=str(10000 + int(d.name[1:])), source="vctk", sex=VCTK_SEX[d.name], split="train",
                         seconds=seconds(dst.glob("*.opus"))))
    # speechocean762: as it is (Opus), with its speaker and utterance tables
    ocean = out / "speechocean762"
    if not ocean.is_dir():
        shutil.copytree(src / "speechocean762-250", ocean)
    info = list(csv.DictReader(open(ocean / "speakers.tsv"), delimiter="\t"))
    group = [dict(speaker=str(20000 + int(r["speaker"][7:])), source="speechocean762", sex=r["gender"].upper(),
                  stratum=(r["gender"], int(r["age"])), seconds=seconds((ocean / r["speaker"]).glob("*.opus")))
             for r in info]
    hold_out(group, HELD_OUT["speechocean762"], rng)
    rows += group
    # Common Voice: one folder per contributor, renamed <ID>-<language>-<client prefix>
    cv = out / "commonvoice"
    group = []
    for k, d in enumerate(sorted((src / "commonvoice-cc0").iterdir()), 1):
        if not d.is_dir():
            continue
        dst = cv / f"{30000 + k}-{d.name}"
        if not dst.is_dir():
            shutil.copytree(d, dst)
        group.append(dict(speaker=str(30000 + k), source="commonvoice", sex="", stratum=(d.name[:2],),
                          seconds=seconds(dst.glob("*.opus"))))
    hold_out(group, HELD_OUT["commonvoice"], rng)
    rows += group
    with open(out / "speakers.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["speaker", "source", "sex", "split", "seconds"], extrasaction="ignore",
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    for split in ("train", "dev", "test"):
        mine = [r for r in rows if r["split"] == split]
        by = {s: sum(r["source"] == s for r in mine) for s in ("librispeech", "vctk", "speechocean762", "commonvoice")}
        print(f"{split:6} {len(mine):4} speakers, {sum(r['seconds'] for r in mine) / 3600:.2f} h: {by}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("--out", default="speech")
    a = p.parse_args()
    main(a.src, a.out)
