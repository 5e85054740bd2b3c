"""
Evaluate a Mask2Flow-TSE checkpoint on whole test splits: SI-SDR, SI-SDRi, PESQ, ESTOI, speaker similarity,
DNSMOS (SIG, BAK, OVRL) and the word error rate of Whisper tiny.en (asr.py).

    python eval.py --data demo                     # seen and unseen speakers: mask-only, 1 and 4 steps
    python eval.py --data LibriMix --split test --noisy
    python eval.py --ckpt runs/RUN/ckpt_last.pt --data demo --limit 100 -o runs/RUN/eval
    python eval.py --data LibriMix --split test --transcripts /path/to/LibriSpeech   # WER against its transcripts

Every system of the checkpoint (the mixture itself, mask-only, and each --steps count of the flow)
runs on the same examples. For each split it prints a table (mean ± 95% interval clustered by
mixture) and writes eval_<data>_<split>_<clean|noisy>.json beside the checkpoint (or into -o), with
every example's scores, so that two systems can later be compared example by example.
WER and DNSMOS are also given for the clean target (the recogniser's and the quality model's own
ceiling), and each system is paired with the one before it (mask - mixture, step - mask).
"""

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import t as student_t

from asr import heard_metrics, normalize, reference_of, wer_references, word_errors
from common import (CHUNK_SECONDS, DataError, device_name, extract_batch, extract_long, find_checkpoint, get_device,
                    load_audio, load_model, row, run, steps_label)
from data import SPEED, LibriMix, libri2mix_dir, read_csv, resolve_root, speaker_of
from mask2flow import count_parameters, si_sdr

METRICS = {"si_sdr": "SI-SDR (dB)", "si_sdri": "SI-SDRi (dB)", "pesq": "PESQ-WB", "estoi": "ESTOI",
           "spk_sim": "spk sim"}
HEARD = {"dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL", "wer": "WER (%)"}  # asr.py
ALL_METRICS = {**METRICS, **HEARD}
HEARD_DNSMOS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
OPTIONAL = ("pesq", "estoi", "spk_sim", "dnsmos", "wer")  # the metrics of requirements-eval.txt, which --skip may leave out
SPLIT_LABELS = {"test-seen": "seen speakers, held-out sentences", "test": "unseen real speakers",
                "dev": "unseen speakers (validation)"}
NOT_INSTALLED = "n/a (pip install -r requirements-eval.txt)"
SKIPPED = "skipped (--skip)"
WER_REFERENCES = {"transcript": "corpus transcripts", "whisper": "Whisper transcripts of the clean target (no "
                  "transcript, or the utterance cut by min mode)", "not English": "targets not in English: no WER"}
CONDITIONS = {"two": "the split's mixtures", "lone": "the target alone",
              "absent": "the target's speaker absent (the other voice alone): the right output is silence",
              "three": "three voices (a source of a third speaker added)"}
LEVEL = {"level_db": "output re input (dB)"}  # the metric of "absent": how much quieter than the input
CONDITION_METRIC = {"two": "si_sdri", "lone": "si_sdr", "absent": "level_db", "three": "si_sdri"}  # each judged on
LOWER_IS_BETTER = {"level_db", "wer"}  # the target absent: the right output is silence

# -----------------------------------------------------------------------------
# metrics and their intervals


def optional_metrics(sr):
    """PESQ (wide band) and ESTOI from the packages of requirements-eval.txt: name -> fn(est, target), or
    None where the package is missing. Speaker similarity, DNSMOS and WER score whole batches: asr.py."""
    fns = {"pesq": None, "estoi": None}
    try:
        from pesq import pesq
        fns["pesq"] = lambda est, target: pesq(sr, target, est, "wb")
    except ImportError:
        pass
    try:
        from pystoi import stoi
        fns["estoi"] = lambda est, target: stoi(target, est, sr, extended=True)
    except ImportError:
        pass
    return fns


def safe(fn, *args):
    """A metric that cannot be computed for one item (e.g. PESQ finds no speech) is NaN, not a crash."""
    try:
        return float(fn(*args))
    except Exception:
        return float("nan")


def mean_ci(values, clusters=None):
    """Mean of the finite values with the half-width of its 95% interval, n (finite values) and
    n_failed (NaN or None: the metric failed there; excluded from the mean, never silently).
    `clusters` names each value's sampling unit (the mixture, whose two targets are not independent);
    by default every value is its own unit, which gives the plain Student t interval."""
    x = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    clusters = np.arange(len(x)) if clusters is None else np.asarray(clusters)
    assert clusters.shape == x.shape, f"{len(clusters)} cluster labels for {len(x)} values"
    ok = np.isfinite(x)
    n, x, clusters = int(ok.sum()), x[ok], clusters[ok]
    if n == 0:
        return {"mean": None, "ci95": None, "n": 0, "n_failed": len(ok), "clusters": 0}
    # cluster-robust t interval: Var(mean) = G/(G-1) * sum_g (sum_{i in g} (x_i - mean))^2 / n^2, t with G-1 dof
    resid = np.bincount(np.unique(clusters, return_inverse=True)[1].ravel(), weights=x - x.mean())
    G = len(resid)
    half = student_t.ppf(0.975, G - 1) * math.sqrt(G / (G - 1) * (resid ** 2).sum()) / n if G > 1 else None
    return {"mean": float(x.mean()), "ci95": None if half is None else float(half), "n": n,
            "n_failed": len(ok) - n, "clusters": G}


def to_json(obj, level=0):
    """json.dumps(obj, indent=2), except that a list of plain values stays on one line: a report's
    per-example scores are a few lines, not thousands."""
    pad, end = "\n" + "  " * (level + 1), "\n" + "  " * level
    if isinstance(obj, dict) and obj:
        return "{" + ",".join(f"{pad}{json.dumps(k)}: {to_json(v, level + 1)}" for k, v in obj.items()) + end + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[" + ",".join(pad + to_json(v, level + 1) for v in obj) + end + "]"
    return json.dumps(obj)


def cell(m):
    """mean ± half-width, with n where the metric failed on some examples (those are not in the mean)."""
    if m is None or isinstance(m, str):
        return m or "–"
    value = "failed" if m["mean"] is None else f"{m['mean']:.2f}"
    value += f" ± {m['ci95']:.2f}" if m["ci95"] is not None else ""
    return value + (f" (n = {m['n']})" if m.get("n_failed") else "")

# -----------------------------------------------------------------------------
# what a listener and a recogniser make of each output (asr.py): batched over all the systems at once


def score_heard(heard, refs, ests, targets, scores, clean, texts):
    """Speaker similarity, DNSMOS and word errors of one batch: every system's outputs (ests[name]) and
    the clean targets in one pass of each model. Word errors go in as counts; evaluate() scales them."""
    names = list(ests)
    wavs = [w for name in names for w in ests[name]] + list(targets)
    group = lambda values: dict(zip(names + ["clean target"], (values[i:i + len(targets)]
                                                             for i in range(0, len(wavs), len(targets)))))
    if heard.get("spk_sim"):
        e = group(heard["spk_sim"](wavs))
        for name in names:
            scores[name]["spk_sim"] += [float(a @ b) for a, b in zip(e[name], e["clean target"])]  # cosine
    if heard.get("dnsmos"):
        for name, mos in group(heard["dnsmos"](wavs)).items():
            for j, key in enumerate(HEARD_DNSMOS):
                (clean if name == "clean target" else scores[name])[key] += [float(m[j]) for m in mos]
    if heard.get("wer"):
        said = group(heard["wer"](wavs))
        texts.setdefault("reference_kind", []).extend(kind for _, kind in refs)
        refs = [words if kind == "transcript" else normalize(heard_of) if kind == "whisper" else None
                for (words, kind), heard_of in zip(refs, said["clean target"])]
        for name, hyps in said.items():
            (clean if name == "clean target" else scores[name])["wer"] += [
                None if ref is None else word_errors(ref, normalize(hyp)) for ref, hyp in zip(refs, hyps)]
            texts.setdefault(name, []).extend(hyps)
        texts.setdefault("reference", []).extend(None if r is None else " ".join(r) for r in refs)
        texts.setdefault("reference_words", []).extend(None if r is None else len(r) for r in refs)


def wer_scale(texts):
    """Word errors -> per-example values whose mean is the WER in % (all errors over all reference words):
    100 / the mean reference length. Two systems share the references, so the paired differences of
    these values average to the difference of the two WERs, and mean_ci gives its interval."""
    words = [w for w in texts.get("reference_words", []) if w is not None]
    return 100 / np.mean(words) if words and np.mean(words) > 0 else float("nan")


def paired_differences(systems, clean, mixture_ids):
    """A - B per example, with mean_ci's interval clustered by mixture, for each system and the one it
    builds on (mask - mixture, each step count - mask, the clean target - the first step count), on
    every metric both have: systems[name][metric] and clean[metric] are lists over the examples."""
    names = list(systems)
    pairs = [(names[1], names[0])] + [(name, names[1]) for name in names[2:]]
    both = {**systems, "clean target": clean}
    if clean:
        pairs.append(("clean target", names[min(2, len(names) - 1)]))
    out = {}
    for a, b in pairs:
        keys = [k for k in both[a] if k in both[b] and k != "si_sdr"]
        out[f"{a} − {b}"] = {k: mean_ci([None if x is None or y is None else x - y
                                         for x, y in zip(both[a][k], both[b][k])], mixture_ids) for k in keys}
    return out

# -----------------------------------------------------------------------------
# the conditions: the same targets and enrollments, other mixtures


class Condition(torch.utils.data.Dataset):
    """The examples of a LibriMix split under a condition of CONDITIONS: "two" as they are; "lone"
    the target alone; "absent" the other source alone with the target's enrollment (target: silence);
    "three" the mixture plus the first source of the next mixtures whose speaker is neither of its two."""

    def __init__(self, dataset, name):
        self.dataset, self.name, self.split = dataset, name, dataset.split

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = dict(self.dataset[i])
        m, k = self.dataset.examples[i]
        mixtures, rate = self.dataset.mixtures, self.dataset.sample_rate
        _, _, sources, utts = mixtures[m]
        n = len(item["target"])
        if self.name == "lone":
            item["mix"] = item["target"].clone()
        elif self.name == "absent":
            item["mix"], item["target"] = torch.from_numpy(load_audio(sources[2 - k], rate)[:n]), torch.zeros(n)
        elif self.name == "three":
            speakers = {speaker_of(u) for u in utts}
            for j in range(1, len(mixtures)):
                _, _, others, other_utts = mixtures[(m + j) % len(mixtures)]
                if speaker_of(other_utts[0]) not in speakers:
                    x = load_audio(others[0], rate)[:n]
                    item["mix"] = item["mix"] + torch.from_numpy(np.pad(x, (0, n - len(x))))
                    break
            else:
                raise DataError(f"{self.split} has no third speaker to add")
        return item

# -----------------------------------------------------------------------------
# evaluation of a whole split


def score_split(model, dataset, n, systems, fns, args, listeners={}, references=({}, set())):
    """Every system on the first n examples, one padded forward pass per batch and system. Returns
    scores[system][metric] (a list over examples, None where the metric failed), the clean target's
    scores (DNSMOS, WER), the transcripts, the examples' ids, and the seconds the model took."""
    chunk = int(CHUNK_SECONDS * model.cfg.sample_rate)
    sdr = lambda est, target: si_sdr(torch.from_numpy(est)[None], torch.from_numpy(target)[None]).item()
    metrics = LEVEL if getattr(dataset, "name", "two") == "absent" else ALL_METRICS
    scores = {name: {key: [] for key in metrics} for name in systems}
    clean, texts = ({} if metrics is LEVEL else {key: [] for key in HEARD}), {}
    listeners = {} if metrics is LEVEL else {key: fn for key, fn in listeners.items() if fn}
    examples = {"mixture_id": [], "target_index": [], "speaker": []}  # who each score belongs to
    torch.manual_seed(0)  # a "noise" start draws x0 at random
    t0, t_model = time.time(), 0.0
    for first in range(0, n, args.batch_size):
        items = [dataset[i] for i in range(first, min(n, first + args.batch_size))]
        mixes, targets, refs = ([item[k].numpy().astype(np.float32) for item in items] for k in ("mix", "target", "enroll"))
        for key, column in examples.items():
            column.extend(item[key] for item in items)
        outputs = {}
        for name, k in systems.items():
            t1 = time.time()
            if k is None:
                ests = mixes
            elif max(map(len, mixes)) <= chunk:
                ests = extract_batch(model, mixes, refs, k, args.bf16)
            else:
                ests = [extract_long(model, m, r, k, chunk, args.bf16) for m, r in zip(mixes, refs)]
            t_model += time.time() - t1
            outputs[name] = ests
            for mix, target, est in zip(mixes, targets, ests):
                if metrics is LEVEL:
                    values = {"level_db": 10 * math.log10((est.astype(np.float64) ** 2).sum() / (mix.astype(np.float64) ** 2).sum() + 1e-20)}
                else:
                    values = {"si_sdr": sdr(est, target), **{key: safe(fn, est, target) for key, fn in fns.items() if fn}}
                    values["si_sdri"] = values["si_sdr"] - sdr(mix, target)
                for key, value in values.items():  # to 1e-4, far below any difference reported; NaN -> None
                    scores[name][key].append(round(value, 4) if math.isfinite(value) else None)
        if listeners:
            refs = [reference_of(references, item, model.cfg.sample_rate) for item in items]
            score_heard(listeners, refs, outputs, targets, scores, clean, texts)
        done = first + len(items)
        eta = (time.time() - t0) / done * (n - done)
        print(f"\r{dataset.split} ({getattr(dataset, 'name', 'two')}): {done}/{n} examples, {time.time() - t0:.0f} s, ETA {eta:.0f} s ",
              end="", file=sys.stderr, flush=True)
    print(f"\n{dataset.split} ({getattr(dataset, 'name', 'two')}): the model extracted {n * (len(systems) - 1) / max(t_model, 1e-9):.1f} examples/s "
          f"(batch {args.batch_size}, {'bf16' if args.bf16 else 'fp32'})", file=sys.stderr)
    scale = wer_scale(texts)  # word errors -> per-example values whose mean is the WER (%)
    for by_metric in (*scores.values(), clean):
        for key in HEARD:
            values = [None if v is None else v * (scale if key == "wer" else 1) for v in by_metric.get(key, [])]
            by_metric[key] = [round(v, 4) if v is not None and math.isfinite(v) else None for v in values]
    return scores, clean, texts, examples, t_model


def print_table(report, path):
    n, G = report["n"], len(set(report["examples"]["mixture_id"]))
    metrics = LEVEL if report["condition"] == "absent" else ALL_METRICS
    print(f"\n### {report['data']} {report['split']} ({report['label']}), {report['mix_type']}, "
          f"{CONDITIONS[report['condition']]}, n = {n} in {G} mixture{'s' * (G > 1)}, "
          "mean ± 95% interval clustered by mixture\n")
    print(row(["system", "steps", *metrics.values()]))
    print(row(["---"] * (len(metrics) + 2)))
    for name, s in report["systems"].items():
        print(row([name, "–" if s["steps"] is None else s["steps"], *map(cell, s["metrics"].values())]))
    if report.get("clean target"):
        print(row(["clean target", "–", *(cell(report["clean target"]["metrics"].get(k)) for k in metrics)]))
    for pair, by_metric in report.get("paired", {}).items():
        print(f"paired, {pair}: " + ", ".join(f"{metrics[k]} {cell(m)}" for k, m in by_metric.items()
                                             if isinstance(m, dict) and m["mean"] is not None))
    kinds = report.get("wer_references")
    if kinds:
        print("WER against " + ", ".join(f"{n} {WER_REFERENCES[kind]}" for kind, n in kinds.items()))
    for band, by_system in report.get("bands", {}).items():
        print(f"{band}: SI-SDRi " + ", ".join(f"{name} {cell(m)}" for name, m in by_system.items()))
    for name, s in report["systems"].items():
        for key, m in s["metrics"].items():
            if isinstance(m, dict) and m["n_failed"]:
                print(f"{metrics[key]} of {name} failed on {m['n_failed']} of {n} examples: not in its mean")
    if report["stage"] == 2 and report["step"] == 0:
        print("note: stage 2 kept its untrained start (step 0 was its best on dev): the flow returns the mask, "
              "so its rows equal mask-only")
    print(f"\nwrote {path}")


def bands(root, examples, scores):
    """SI-SDRi of each system over the examples whose target speaker is band-limited (LibriSpeech's
    MP3s) and over the full-band ones, when the corpus lists its speakers' sources (the demo's)."""
    table = Path(root) / "speakers.csv"
    if not table.is_file() or "si_sdri" not in next(iter(scores.values())):
        return {}
    source = {r["speaker"]: r["source"] for r in read_csv(table, ("speaker", "source"))}
    limited = np.array([source.get(s) == "librispeech" for s in examples["speaker"]])
    out = {}
    for band, keep in (("band-limited (LibriSpeech MP3)", limited), ("full band", ~limited)):
        if keep.any():
            ids = np.array(examples["mixture_id"])[keep]
            out[band] = {name: mean_ci(np.array(v["si_sdri"], dtype=float)[keep], ids) for name, v in scores.items()}
    return out


def evaluate(args):
    device = get_device(args.device)
    ckpt_path = Path(args.ckpt) if args.ckpt else find_checkpoint()
    model, ckpt = load_model(ckpt_path, device)
    trained_with = ckpt.get("args") or {}  # train.py's arguments (none in a shipped checkpoint)
    root = resolve_root(args.data)
    data_name = args.data if args.data in ("demo", "LibriMix") else Path(args.data).resolve().name
    mix_type = "noisy" if args.noisy else "clean"
    out_dir = Path(args.output) if args.output else ckpt_path.parent
    listeners = heard_metrics(model.cfg.sample_rate, args.skip)  # batched: speaker embedding, DNSMOS, Whisper
    fns = {key: fn for key, fn in optional_metrics(model.cfg.sample_rate).items() if key not in args.skip}
    have = {key for key, fn in {**fns, **listeners}.items() if fn}
    package = lambda key: "dnsmos" if key.startswith("dnsmos") else key  # the part of requirements-eval.txt
    missing = {key: SKIPPED if package(key) in args.skip else NOT_INSTALLED
               for key in ALL_METRICS if package(key) in OPTIONAL and package(key) not in have}
    references = wer_references(root, args.transcripts) if listeners["wer"] else ({}, set())
    masked = model.cfg.start == "masked"
    systems = {"mixture": None, "mask-only" if masked else f"x0 = {model.cfg.start}": 0,
               **{f"{'Mask2Flow' if masked else 'flow'} {steps_label(k)}": k for k in args.steps}}

    present = [s for s in ("test", "test-seen")  # the demo corpus has both
               if any(libri2mix_dir(root).glob(f"wav*/*/metadata/mixture_{s}_*.csv"))]
    for split, condition in ((s, c) for s in args.split or present or ["test"] for c in args.conditions):
        t0 = time.time()
        dataset = Condition(LibriMix(root, split=split, mix_type=mix_type, segment=None,
                                     sample_rate=model.cfg.sample_rate, seed=0), condition)
        n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        scores, clean, texts, examples, t_model = score_split(model, dataset, n, systems, fns, args, listeners, references)
        report = {"data": data_name, "root": str(root), "split": split, "label": SPLIT_LABELS.get(split, split),
                  "condition": condition, "mix_type": mix_type, "n": n, "checkpoint": str(ckpt_path), "stage": ckpt.get("stage"),
                  "step": ckpt.get("step"), "seed": trained_with.get("seed"),
                  "trained_on": trained_with.get("stage1"), "speed": list(trained_with.get("speed", SPEED)),
                  "config": ckpt["config"],
                  "parameters": {"total": count_parameters(model),
                                 **{part: count_parameters(getattr(model, part)) for part in ("speaker", "masker", "dit")}},
                  "device": str(device), "machine": device_name(device),
                  "platform": platform.platform(), "torch": torch.__version__,
                  "seconds": round(time.time() - t0, 1), "model_seconds": round(t_model, 1),
                  "batch_size": args.batch_size, "bf16": args.bf16, "examples": examples, "systems": {}}
        for name, k in systems.items():  # intervals clustered by mixture: its two targets are not independent
            metrics = {key: missing[key] if key in missing else mean_ci(v, examples["mixture_id"])
                       for key, v in scores[name].items()}
            report["systems"][name] = {"steps": k, "metrics": metrics,
                                       "scores": {key: v for key, v in scores[name].items() if key not in missing}}
        if any(key not in missing for key in clean):  # WER or DNSMOS measured
            report["clean target"] = {"metrics": {key: missing[key] if key in missing else mean_ci(v, examples["mixture_id"])
                                                  for key, v in clean.items()},
                                      "scores": {key: v for key, v in clean.items() if key not in missing}}
        report["paired"] = paired_differences({name: report["systems"][name]["scores"] for name in systems},
                                              (report.get("clean target") or {}).get("scores", {}), examples["mixture_id"])
        if texts:
            kinds = texts["reference_kind"]
            report["wer_references"] = {kind: kinds.count(kind) for kind in WER_REFERENCES if kind in kinds}
            report["transcripts"] = texts  # Whisper's, per system, and each example's reference
        report["bands"] = bands(root, examples, scores)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"eval_{data_name}_{split}_{mix_type}{'' if condition == 'two' else '_' + condition}.json"
        path.write_text(to_json(report) + "\n")
        print_table(report, path)

# -----------------------------------------------------------------------------


def main(argv=None):
    """Run the command line; returns the exit status (2 with one `error:` line for bad input)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="demo", metavar="demo|LibriMix|PATH",
                   help="demo (<repo>/data/demo), LibriMix ($LIBRIMIX or <repo>/LibriMix) or a LibriMix-layout folder")
    p.add_argument("--split", nargs="+", metavar="NAME",
                   help="splits (default: those of test and test-seen the corpus has)")
    p.add_argument("--noisy", action="store_true", help="noisy mixtures (mix_both) instead of clean")
    p.add_argument("--limit", type=int, metavar="N",
                   help="only the first N examples of each split (two per mixture: each speaker as the target)")
    p.add_argument("--steps", type=int, nargs="+", metavar="N", default=[1, 4],
                   help="Euler step counts compared with mask-only (default 1 4)")
    p.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS), metavar="NAME",
                   help="two (the mixtures), lone (the target alone), absent (the other voice alone: output level "
                        "re input), three (a third voice added); default all four, on the same targets")
    p.add_argument("-o", "--output", metavar="DIR", help="folder of the JSON reports (default: the checkpoint's)")
    p.add_argument("--ckpt", metavar="PATH", help="checkpoint (default: as sample.py, the newest finished "
                   "Mask2Flow model in runs/, else pretrained/demo.pt)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto = cuda when present")
    p.add_argument("--batch-size", type=int, metavar="N", default=8,
                   help="examples per forward pass (padding is masked, so results do not depend on it)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast: for GPUs (on most CPUs it is slower)")
    p.add_argument("--transcripts", metavar="PATH", help="LibriSpeech folder (its *.trans.txt) of a LibriMix corpus: "
                   "WER against them; without it WER is against Whisper's transcript of the clean target (the demo "
                   "corpus brings its transcripts)")
    p.add_argument("--skip", nargs="+", choices=OPTIONAL, default=[], metavar="NAME",
                   help=f"optional metrics left out even when installed ({', '.join(OPTIONAL)}): WER and DNSMOS "
                        "cost about a second per signal on a busy 2-core CPU")
    args = p.parse_args(argv)
    if min(args.steps) < 1 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        p.error("--steps, --batch-size and --limit must be at least 1")
    return run(evaluate, args)


if __name__ == "__main__":
    sys.exit(main())
