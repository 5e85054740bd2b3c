r"""
Write docs/results.md and the results block of the top-level README from the evidence committed in
docs/research/evidence/, and from nothing else (its README.md says which command wrote each file):

    python docs/research/results.py   # rewrites docs/results.md, and README.md between its two marker lines

  in docs/research/evidence/                  written by
  RUN/eval_<data>_<split>_<clean|noisy>.json  python eval.py -o docs/research/evidence/RUN
  RUN/log.csv                                 the run's own log.csv, copied
  bench.json                                  python bench.py -o docs/research/evidence/bench.json
  then.json                                   python docs/research/then_bench.py --rev REV -o docs/research/evidence/then.json
  {di,steps,example,single}.json              python docs/research/figures.py
  speakers_<split>.json                       python docs/research/figures.py speakers
  gpu/*.json                                  bash docs/research/gpu.sh docs/research/evidence/gpu (needs CUDA)

A section whose files are missing says which command makes them. Runs that evaluate a system of the
same name (e.g. "Mask2Flow 1 step") are training seeds of that system. tests/test_results.py rebuilds both
outputs with build() and readme_block() and fails on any difference.
"""

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from data import SPEED  # noqa: E402
from mask2flow import CONFIGS, Config, Mask2Flow, count_parameters  # noqa: E402
from bench import bench_mode  # noqa: E402
from eval import CONDITION_METRIC, LOWER_IS_BETTER, METRICS, cell, mean_ci  # noqa: E402
from sample import RETIRED, row, steps_label  # noqa: E402

EVIDENCE = ROOT / "docs" / "research" / "evidence"
DEMO_SH = "demo.sh"  # the evidence folder of `bash demo.sh`, the main job
RERUN = "`python docs/research/results.py`"
FIGURES = ("di", "steps", "example", "single")
M2F, MASK = "Mask2Flow 1 step", "mask-only (stage 1 of Mask2Flow)"
CONTROL = "mask-only, fair control (stage 1 only, trained longer)"
COMPARISONS = [  # (A, B, the claim "A beats B", what the paper says), each tested per example on SI-SDRi
    (M2F, MASK, "the flow stage improves on its own mask", "yes (masking over-suppresses)"),
    (M2F, CONTROL, "the flow stage beats the same budget spent on masking", "not reported"),
    (M2F, "flow-only from the mixture, 1 step", "one step from the mask beats one step from the mixture", "yes"),
    (M2F, "flow from noise, 1 step", "one step from the mask beats one step from noise", "yes"),
    ("Mask2Flow 4 steps", M2F, "four Euler steps beat one", "no: one step is enough"),
]
HOW = ("A claim \"A beats B\" is answered by the mean per-example difference A − B in SI-SDRi on the same "
       "examples, with its 95% interval clustered by mixture, and reads **yes** or **no, the reverse** only when "
       "that interval excludes zero. The interval covers the choice of test examples, not of training seeds.")
REBUILD = """_The results of the current model are being rebuilt: docs/research/evidence/ holds no evaluation yet._
For each trained run `RUN` (docs/README.md lists the runs and the commands that train them):

```
python eval.py --ckpt runs/RUN/ckpt_last.pt --data demo --limit 100 -o docs/research/evidence/RUN
python eval.py --ckpt runs/RUN/ckpt_last.pt --data demo --limit 100 --noisy -o docs/research/evidence/RUN
cp runs/RUN/log.csv docs/research/evidence/RUN/
```

then `python bench.py -o docs/research/evidence/bench.json` and `python docs/research/results.py`.
"""


def todo(command):
    return f"_Not measured yet._ Run `{command}`, then {RERUN}.\n"


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x, unit=""):
    return "–" if x is None else f"{x:.2f}{unit}"


def plural(n, word):
    return f"{'one' if n == 1 else n} {word}{'s' * (n != 1)}"

# -----------------------------------------------------------------------------
# reading the evidence


def read_evidence(folder):
    """{"runs": {name: {"reports": [...], "log": rows}}, "bench": ..., and each figure's JSON}. A run's
    reports are those of its splits' own mixtures (demo.sh's: all its conditions): eval.py's other conditions
    (the target alone or absent, three voices) are compared with docs/research/compare.py, not here."""
    folder, out = Path(folder), {"runs": {}, "demo_sh": {}}

    def load(path):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"error: cannot read {path}: {e}") from None
    for run in sorted(p for p in folder.glob("*") if p.is_dir()):
        reports = [load(path) for path in sorted(run.glob("eval_*.json"))]
        for path, r in zip(sorted(run.glob("eval_*.json")), reports):
            systems = r.get("systems") if isinstance(r, dict) else None
            if not systems or "examples" not in r or any("scores" not in s for s in systems.values()):
                raise SystemExit(f"error: {path} has no per-example scores: rewrite it with this eval.py")
            n = len(r["examples"].get("mixture_id", []))
            if any(len(v) != n for s in systems.values() for v in s["scores"].values()):
                raise SystemExit(f"error: {path}: the per-example scores do not match its {n} examples")
        if run.name != DEMO_SH:  # demo.sh's table shows its four conditions; older reports have no condition
            reports = [r for r in reports if r.get("condition", "two") == "two"]
        log = list(csv.DictReader((run / "log.csv").read_text().splitlines())) if (run / "log.csv").is_file() else []
        if reports or log:  # a run of demo.sh is read apart: its budget is not the other runs'
            out["demo_sh" if run.name == DEMO_SH else "runs"][run.name] = {"reports": reports, "log": log}
    docs = ROOT / "docs"  # results.md names the committed files from its own folder
    shown = folder.resolve().relative_to(docs) if folder.resolve().is_relative_to(docs) else Path(folder.name)
    for name in ("bench", "then", *FIGURES):
        if (folder / f"{name}.json").is_file():
            out[name] = {**load(folder / f"{name}.json"), "_file": f"{shown}/{name}.json"}
    out["gpu"] = {path.stem: {**load(path), "_file": f"{shown}/gpu/{path.name}"}
                  for path in sorted((folder / "gpu").glob("*.json"))}
    out["speakers"] = [{**load(path), "_file": f"{shown}/{path.name}"}
                       for path in sorted(folder.glob("speakers_*.json"))]
    return out


def kind(report):
    """What a run is, from its evaluation: Mask2Flow, a stage 1 alone (trained on from another run's
    stage 1: the fair control; else a masker trained from scratch), or a baseline flow."""
    systems = report["systems"]
    if "mask-only" in systems:
        if report.get("stage") != 1:
            return "mask2flow"
        return "control" if report.get("trained_on") else "masker"
    return "flow-only" if "x0 = mixture" in systems else "noise"


STAGE1_VARIANTS = ("voices", "speed", "speaker", "masker", "mask_layers", "mask_hidden", "mask_blocks", "mask_stride",
                   "spk_stride", "mask_wave_loss", "train_steps")
STAGE1_STEPS = 4500  # the steps of demo's stage 1 (docs/README.md); a masker trained for more or fewer is a variant
FLOW_VARIANTS = ("patch", "dit_width", "dit_depth", "t_zero", "t_power", "wave_loss")


def variant(report, fields=STAGE1_VARIANTS + FLOW_VARIANTS):
    """' (t_zero 0, t_power 1)' for a run trained otherwise than its preset, the one of CONFIGS its
    saved config is closest to (stage 1's layout or loss; the flow's tokens, DiT size, time sampler or
    waveform loss), on other training data (train.py --voices, --speed), or, trained from scratch
    alone, for another number of steps than demo's stage 1. A field the run's config predates has
    Config's default, and one since retired its only value now (sample.py:RETIRED): what the model then did."""
    saved = report.get("config", {})
    retired = {k: v for k, v in RETIRED.items() if v is not None}
    default = min(CONFIGS.values(), key=lambda p: sum(v != getattr(p, f, v) for f, v in saved.items()))
    speed = "{:g}-{:g}".format
    cfg = {**dataclasses.asdict(Config()), **retired, **saved, "voices": report.get("voices", 1.0),
           "speed": speed(*report.get("speed", SPEED)),
           "train_steps": report["step"] if report.get("stage") == 1 and not report.get("trained_on") else STAGE1_STEPS}
    preset = {**dataclasses.asdict(default), **retired, "voices": 1.0, "speed": speed(*SPEED),  # train.py's defaults
              "train_steps": STAGE1_STEPS}
    changed = [f"{f} {cfg[f] if isinstance(cfg[f], str) else format(cfg[f], 'g')}"
               for f in fields if cfg[f] != preset[f]]
    return f" ({', '.join(changed)})" if changed else ""


def stage1_label(label, suffix):
    """The mask-only label (own mask or fair control) that goes with a Mask2Flow variant's suffix:
    its stage-1 part."""
    parts = [p for p in suffix.strip(" ()").split(", ") if p.split(" ")[0] in STAGE1_VARIANTS]
    return label + (f" ({', '.join(parts)})" if parts else "")


def system_rows(report):
    """(label, system) of one run's report, without the rows another run already gives (the
    mixture) or that mean nothing (x0 itself for a baseline, the untrained flow of a control)."""
    k, out = kind(report), []
    for name, s in report["systems"].items():
        if s["steps"] is None:
            continue
        if k in ("control", "masker"):  # a stage 1 alone: its flow is untrained
            if s["steps"] == 0:
                out.append(((CONTROL if k == "control" else MASK) + variant(report, STAGE1_VARIANTS), s))
        elif k == "mask2flow":
            out.append((MASK + variant(report, STAGE1_VARIANTS) if s["steps"] == 0 else name + variant(report), s))
        elif s["steps"] > 0:
            label = "flow-only from the mixture" if k == "flow-only" else "flow from noise"
            out.append((f"{label}, {s['steps']} step{'s' * (s['steps'] > 1)}", s))
    return out


def conditions(ev):
    """{(data, split, mix_type): {label: [(run, report, system), one per seed]}}. A system scored again
    by another run (a variant's run re-evaluates the same masker) is kept once: scores that agree to
    the last stored digits on every example, as the thread count may leave them, are the same system."""
    same = lambda a, b: a.keys() == b.keys() and all(
        (x is None) == (y is None) and (x is None or abs(x - y) < 1e-3) for m in a for x, y in zip(a[m], b[m]))
    order = {"mask2flow": 0, "masker": 1, "control": 2, "flow-only": 3, "noise": 4}
    found = sorted(((run, r) for run, v in ev["runs"].items() for r in v["reports"]), key=lambda x: order[kind(x[1])])
    out = {}
    for run, r in found:
        labels = out.setdefault((r["data"], r["split"], r["mix_type"]), {})
        for label, s in system_rows(r):
            if not any(same(s["scores"], other["scores"]) for _, _, other in labels.get(label, [])):
                labels.setdefault(label, []).append((run, r, s))
    return dict(sorted(out.items()))

# -----------------------------------------------------------------------------
# paired differences, clustered by mixture


def per_example(entries, metric):
    """{(mixture_id, target_index): score averaged over the seeds, None unless every seed scored it}."""
    out = {}
    for _, r, s in entries:
        for mid, k, v in zip(r["examples"]["mixture_id"], r["examples"]["target_index"], s["scores"].get(metric, [])):
            out.setdefault((mid, k), []).append(v)
    return {key: None if None in v or len(v) < len(entries) else sum(v) / len(v) for key, v in out.items()}


def paired(a, b, metric, keep=lambda key: True):
    """A - B per example on the examples either was scored on (those of them that keep((mixture_id,
    target_index)) accepts), with the interval of eval.py:mean_ci clustered by mixture; an example
    missing a score of A or B counts in n_failed. None if unscored."""
    if not any(metric in s["scores"] for entries in (a, b) for _, _, s in entries):
        return None
    A, B = per_example(a, metric), per_example(b, metric)
    keys = sorted(k for k in A.keys() | B.keys() if keep(k))
    diffs = [None if A.get(k) is None or B.get(k) is None else A[k] - B[k] for k in keys]
    return mean_ci(diffs, [mid for mid, _ in keys])


def seeds(a, b):
    """How many training runs (seeds) stand behind A and behind B: 'one seed each', '3 seeds against one'."""
    return plural(len(a), "seed") + (" each" if len(a) == len(b) else f" against {plural(len(b), 'seed')}")


def significant(d):
    return d is not None and d["mean"] is not None and d["ci95"] is not None and abs(d["mean"]) > d["ci95"]


def verdict(d, note, unit=" dB"):
    """A - B worded as a result only when its 95% interval excludes zero."""
    if d["mean"] is None:
        return f"not measured: no example was scored for both ({note})"
    if d["ci95"] is None:
        return f"too few mixtures to tell: {d['mean']:+.2f}{unit} ({note})"
    word = ("**yes**" if d["mean"] > 0 else "**no, the reverse**") if significant(d) else "no measurable difference"
    left = f", {d['n_failed']} without both scores left out" if d["n_failed"] else ""
    return (f"{word}: {d['mean']:+.2f} ± {d['ci95']:.2f}{unit} "
            f"(paired, n = {d['n']} in {d['clusters']} mixtures{left}; {note})")


def comparisons(labels):
    """The (A, B, claim, paper) of COMPARISONS whose systems were both evaluated, and those of each
    training variant of Mask2Flow and of its mask."""
    variants = []
    for v in (v for v in labels if v.startswith(M2F + " (")):
        suffix = v[len(M2F):]  # e.g. " (wave_loss 0.001)"
        variants += [(M2F, v, f"Config's defaults beat{suffix}", "not reported")]
        parts = suffix.strip(" ()").split(", ")
        rest = [p for p in parts if p.split(" ")[0] not in ("dit_width", "dit_depth")]
        if rest and len(rest) < len(parts):  # a DiT of another size against the same recipe at the preset's
            variants += [(f"{M2F} ({', '.join(rest)})", v, f"the preset's DiT size beats{suffix}", "not reported")]
        variants += [(a + suffix, v if b == M2F else stage1_label(b, suffix), claim + suffix, paper)  # the same claims
                     for a, b, claim, paper in COMPARISONS if a.startswith("Mask2Flow") and b in (MASK, M2F, CONTROL)]
    for v in (v for v in labels if v.startswith(MASK + " (")):  # a stage-1 variant's mask against the default's
        variants += [(MASK, v, f"Config's defaults beat{v[len(MASK):]}, mask-only", "not reported")]
    return [c for c in COMPARISONS + variants if c[0] in labels and c[1] in labels]


def voice_of(speaker):
    """The former corpus's voices: its pseudo-speakers 100000 + 1000 v + n share the base voice 'base<v>'."""
    n = int(speaker) if speaker.isdigit() else 0
    return f"base{(n - 100000) // 1000}" if n >= 100000 else speaker


def heard_comparisons(labels):
    """(B, claim, keep) for a mask trained on some of the voices (train.py --voices) against the
    default's mask A, once on the targets whose voice it heard and once on the others, where a
    split has both."""
    out = []
    for b, entries in labels.items():
        heard = entries[0][1].get("trained_voices")
        if heard and b.startswith(MASK) and MASK in labels:
            ex = entries[0][1]["examples"]
            was = {(m, k): voice_of(s) in heard for m, k, s in zip(ex["mixture_id"], ex["target_index"], ex["speaker"])}
            if len(set(was.values())) == 2:
                out += [(b, f"Config's defaults beat{b[len(MASK):]}, mask-only, on the targets whose voice it {word}",
                         lambda key, h=h, was=was: was[key] == h) for word, h in (("heard", True), ("never heard", False))]
    return out


def claim_rows(groups, mix_types):
    """One row per comparison and evaluated split: the claim, the paper's answer, ours on SI-SDRi."""
    rows = []
    for (data, split, mix_type), labels in groups.items():
        if mix_type in mix_types:
            for a, b, claim, paper in comparisons(labels):
                d = paired(labels[a], labels[b], "si_sdri")
                rows.append(row([f"{claim} ({data} {split}, {mix_type})", paper,
                                 verdict(d, seeds(labels[a], labels[b]))]))
            for b, claim, keep in heard_comparisons(labels):
                d = paired(labels[MASK], labels[b], "si_sdri", keep)
                rows.append(row([f"{claim} ({data} {split}, {mix_type})", "not reported",
                                 verdict(d, seeds(labels[MASK], labels[b]))]))
    return rows

# -----------------------------------------------------------------------------
# the sections


def claims_section(ev, groups):
    """The paper's statements, each beside the number of this page that tests it."""
    lines = ["## The paper's claims, side by side", "",
             "What the paper (arXiv 2603.12837, v2) states, beside what this page measures. " + HOW, "",
             row(["claim", "paper", "here"]), row(["---"] * 3)]
    rows = claim_rows(groups, ("clean", "noisy"))
    lines += rows or [row(["the flow stage improves on its own mask", "yes (masking over-suppresses)",
                           "being rebuilt: no evaluation in docs/research/evidence yet"])]
    p = ev.get("di", {}).get("proportions")
    for t in p or {}:
        lines += [row([f"flow-only: deletion share after step 1 ({t})", "about 94%",
                       pct(p[t].get("flow-only step 1", {}).get("delete"))]),
                  row([f"flow-only: deletion share after step 8 ({t})", "about 71%",
                       pct(p[t].get("flow-only step 8", {}).get("delete"))]),
                  row([f"clean target: insertion share ({t})", "about 25-28%",
                       pct(p[t].get("target", {}).get("insert"))])]
    if not p:
        lines.append(row(["delete/insert proportions", "Figure 2", "not measured yet"]))
    paper = [r for r in ev.get("bench", {}).get("rows", []) if r["config"] == "paper"]
    lines.append(row(["whole system size", "about 85M parameters",
                      f"`paper` config {paper[0]['parameters'] / 1e6:.1f}M" if paper else "not measured yet"]))
    c = ev.get("single", {}).get("systems", {}).get("clean", {}).get("Mask2Flow 1 step")
    lines.append(row(["a single clean voice comes out undamaged (v2)", "WER 2.9 vs 2.6 on clean speech",
                      f"SI-SDR {cell(c['si_sdr'])} dB on the clean voice alone" if c else "not measured yet"]))
    lines.append(row(["Whisper WER as an ASR front end", "Figure 4", "not run: needs downloaded Whisper weights"]))
    return lines + [""]


def quality_section(groups, bench=None, mix_types=("clean", "noisy"), level="###"):
    lines = ["## Extraction quality", ""]
    if not groups:
        return lines + [REBUILD]
    lines.append("Mean ± the half-width of its 95% interval, clustered by mixture (the two targets of one mixture "
                 "are not independent: `eval.py:mean_ci`). SI-SDRi is the SI-SDR gain over the mixture. Source: "
                 "the `eval_*.json` files of `python eval.py` in docs/research/evidence. RTF: compute time over "
                 f"audio time of that run's model, or else of a preset of that size, at that step count on "
                 f"{bench_machine(bench)}, from `python bench.py` (– where it timed no such model).")
    for (data, split, mix_type), labels in groups.items():
        if mix_type not in mix_types:
            continue
        entries = [e for es in labels.values() for e in es]
        first = entries[0][1]
        lines += ["", f"{level} {data} {split} ({first['label']}), {mix_type}", "",
                  row(["system", "steps", *METRICS.values(), "n", "parameters", "RTF", "run (stage, step, seed)"]),
                  row(["---"] * (len(METRICS) + 6))]
        mix = first["systems"]["mixture"]["metrics"]
        lines.append(row(["mixture", "–", *(cell(mix.get(k)) for k in METRICS), first["n"], "–", "–", "–"]))
        failed = False
        for label, es in labels.items():
            for run, r, s in es:
                total, seed = (r.get("parameters") or {}).get("total"), r.get("seed")
                failed |= any(isinstance(m, dict) and m["n_failed"] for m in s["metrics"].values())
                lines.append(row([label, s["steps"], *(cell(s["metrics"].get(k)) for k in METRICS), r["n"],
                                  f"{total / 1e6:.2f}M" if total else "–", rtf(bench, total, s["steps"], run),
                                  f"`{run}` ({r.get('stage')}, {r.get('step')}, {'–' if seed is None else seed})"]))
        reports = list({id(r): r for _, r, _ in entries}.values())
        lines += ["", f"Measured on {', '.join(sorted({r['machine'] for r in reports}))}; torch {first['torch']}; "
                  f"{sum(r['seconds'] for r in reports):.0f} s of evaluation in all."]
        if failed:
            lines.append("(n = k) after a value: the metric failed on the other examples, which its mean leaves out.")
        if len({r["n"] for r in reports}) > 1:
            lines.append("**The runs were evaluated on different numbers of examples: compare with care.**")
    return lines + [""]


def training_section(ev):
    lines = ["## Training runs", ""]
    logs = {run: v["log"] for run, v in ev["runs"].items() if v["log"]}
    if not logs:
        return lines + ["_Not measured yet._ Copy each run's `log.csv` into `docs/research/evidence/RUN/`, then "
                        f"{RERUN}.", ""]
    lines += ["From each run's `log.csv` (one row per validation): the last step and wall-clock minutes of each "
              "stage, and its best dev SI-SDR (mask-only in stage 1, one step in stage 2).", "",
              row(["run", "stage", "last step", "minutes", "best dev SI-SDR (dB)", "at step"]), row(["---"] * 6)]
    for run, log in logs.items():
        for stage in sorted({r["stage"] for r in log}, key=int):
            rs = [r for r in log if r["stage"] == stage]
            dev = "dev_mask" if stage == "1" else "dev_flow1"
            best = max(rs, key=lambda r: float(r.get(dev) or "-inf"))
            value = lambda r, k: num(float(r[k])) if r.get(k) else "–"
            lines.append(row([f"`{run}`", stage, rs[-1]["step"], value(rs[-1], "minutes"), value(best, dev),
                              best["step"]]))
    return lines + [""]


def rtf(bench, params, steps, run):
    """Real-time factor at this many steps on the benchmark's CPU, eager, of this run's checkpoint if it
    was timed (`bench.py --ckpt`), else of a preset of this size; or '–'."""
    rows = [b for b in (bench or {}).get("rows", [])
            if b["device"] == "cpu" and not b.get("compile") and str(steps) in b["rtf"]]
    for b in [b for b in rows if b.get("checkpoint") and b["config"] == run] or \
            [b for b in rows if not b.get("checkpoint") and b["parameters"] == params]:
        return f"{b['rtf'][str(steps)]:.4f}"
    return "–"


def bench_machine(bench):
    names = sorted({b["device_name"] for b in (bench or {}).get("rows", []) if b["device"] == "cpu"})
    return ", ".join(names) or "the benchmark's CPU"


def rtf_table(rows, steps, first):
    """A table of benchmark rows, each led by first(row): the real-time factor at each step count, the
    last / 1-step ratio and stage 1's share of a 1-step extraction, peak GPU memory."""
    lines = [row([*first(None), *map(steps_label, steps), f"{steps_label(steps[-1])} / 1 step",
                  "stage-1 share of 1 step", "peak GPU MiB"]), row(["---"] * (len(first(None)) + len(steps) + 3))]
    for r in rows:
        t = {int(k): v for k, v in r["rtf"].items()}
        lines.append(row([*first(r), *(f"{t[k]:.4f}" if k in t else "–" for k in steps),
                          f"{t[steps[-1]] / t[1]:.2f}x" if 1 in t and steps[-1] > 1 else "–",
                          f"{t[0] / t[1]:.0%}" if {0, 1} <= t.keys() else "–",
                          "–" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"]))
    return lines


def then_section(then):
    """Each preset against the code of an earlier commit, timed in turn in one process (docs/research/then_bench.py)."""
    if not then:
        return []
    lines = [f"Against the code of commit `{then['commit'].split()[0]}` (`{then['now']}` now), each preset as that commit "
             f"built it and as it is now, on {then['machine']}, median of {then['repeats']} runs taken in turn in "
             f"one process. Source: `{then['_file']}` (`python docs/research/then_bench.py --rev {then['rev']}`).", "",
             row(["preset", "parameters then", "now", *[c for k in then["steps"]
                                                        for c in (f"{steps_label(k)} then", "now", "as fast as then")]]),
             row(["---"] * (3 + 3 * len(then["steps"])))]
    for r in then["rows"]:
        t = {w: {int(k): v for k, v in r["rtf"][w].items()} for w in ("then", "now")}
        lines.append(row([r["config"], f"{r['parameters']['then'] / 1e6:.2f}M", f"{r['parameters']['now'] / 1e6:.2f}M",
                          *[c for k in then["steps"] for c in (f"{t['then'][k]:.4f}", f"{t['now'][k]:.4f}",
                                                               f"{t['then'][k] / t['now'][k]:.2f}x")]]))
    return lines + [""]


def bench_section(bench, gpu=None, then=None):
    lines = ["## Size and speed", ""]
    if bench is None:
        return lines + [todo("python bench.py -o docs/research/evidence/bench.json")]
    lines += [f"Real-time factor (compute time / audio time, lower is faster) on {bench['audio_seconds']:.0f} s of "
              f"audio, median of {bench['repeats']} runs; torch {bench['torch']}. "
              f"Source: `{bench['_file']}` (`python bench.py`).", ""]
    first = lambda r: (["config", "parameters", "machine"] if r is None else
                       [r["config"], f"{r['parameters'] / 1e6:.2f}M", f"{r['device']}: {r['device_name']}"])
    return lines + rtf_table(bench["rows"], [0] + bench["steps"], first) + [""] + speedups(bench["rows"]) + \
        then_section(then) + gpu_section(gpu or {})


def speedups(rows):
    """How many times faster each preset's one-step extraction is than the same preset before its
    speed-up, timed in the same run (the `, before` rows of an earlier bench.json): eager against eager, and under
    torch.compile (`--compile`) against both."""
    one = {(r["config"], r["device"]): r["rtf"]["1"] for r in rows if "1" in r["rtf"]}
    C = ", torch.compile"
    lines = []
    for (name, device), rtf in one.items():
        preset = name.removesuffix(C)
        for old in [f"{preset}, before{C}"] * name.endswith(C) + [f"{preset}, before"] * (", before" not in name):
            if (old, device) in one:
                lines.append(f"- `{name}` on {device}: one step {one[(old, device)] / rtf:.2f}x as fast as "
                             f"`{old}` (RTF {rtf:.4f} against {one[(old, device)]:.4f}, same run)")
    return lines + [""] if lines else []


def gpu_section(gpu):
    lines = ["### On a GPU", ""]
    if not gpu:
        return lines + [todo("bash docs/research/gpu.sh docs/research/evidence/gpu")]
    if "train_speed_paper" in gpu:
        sp = gpu["train_speed_paper"]
        masker = sp.get("masker", "conv")  # older files name the masker; it is always conv now
        lines += [f"Training step of the `{sp['config']}` preset ({masker} masker) on {sp['device']}, torch "
                  f"{sp['torch']}: random 3 s batches made on the GPU, median of {sp['repeats']} steps after 3 "
                  f"warm-up steps. Source: `{sp['_file']}` (`docs/research/train_bench.py speed`).", "",
                  row(["batch", "precision", "stage 1 ms/step", "stage 1 examples/s", "stage 2 ms/step",
                       "stage 2 examples/s"]), row(["---"] * 6)]
        cells = lambda r: [f"{1000 * r['seconds']:.1f}", f"{r['examples_per_s']:.0f}"]
        for (B, prec) in dict.fromkeys((r["batch"], r["precision"]) for r in sp["rows"]):
            by = {r["stage"]: r for r in sp["rows"] if (r["batch"], r["precision"]) == (B, prec)}
            lines.append(row([B, prec, *cells(by[1]), *cells(by[2])]))
        lines.append("")
    if "precision_small" in gpu:
        pr = gpu["precision_small"]
        lines += [f"fp32 against bf16 autocast training of the `{pr['config']}` preset on {pr['device']}: the same "
                  f"initial weights and the same {pr['steps']} batches of {pr['batch']} per stage (stage 2 on the fp32 "
                  f"stage 1); mean loss over the first and the last {pr['every']} steps. Source: `{pr['_file']}` "
                  "(`docs/research/train_bench.py precision`).", "",
                  row(["stage", "fp32 first", "fp32 last", "bf16 first", "bf16 last", "fell, fp32", "fell, bf16"]),
                  row(["---"] * 7)]
        for stage in (1, 2):
            a, b = pr["mean_loss"][f"stage{stage}_fp32"], pr["mean_loss"][f"stage{stage}_bf16"]
            lines.append(row([stage, *(f"{x:.5f}" for x in (a[0], a[-1], b[0], b[-1])),
                              f"{a[0] / a[-1]:.2f}x", f"{b[0] / b[-1]:.2f}x"]))
        lines.append("")
    benches = [b for name, b in gpu.items() if name.startswith("bench")]
    if benches:
        steps = sorted({0, *(k for b in benches for k in b["steps"])})
        rows = [{**r, "_file": b["_file"]} for b in benches for r in b["rows"]]
        first = lambda r: (["config", "parameters", "precision", "source"] if r is None else
                           [r["config"], f"{r['parameters'] / 1e6:.2f}M", bench_mode(r.get("bf16"), r.get("compile")),
                            f"`{Path(r['_file']).name}`"])
        lines += [f"Real-time factor of extraction on {', '.join(sorted({r['device_name'] for r in rows}))}, torch "
                  f"{', '.join(sorted({b['torch'] for b in benches}))}, batch 1, {benches[0]['audio_seconds']:.0f} s of "
                  f"audio, median of {benches[0]['repeats']} runs after a warm-up (`python bench.py --device "
                  "cuda`, with `--bf16` or `--compile`). The rows of one file were measured side by side; eager "
                  "extraction at batch 1 waits on the host's kernel launches, so compare rows of different files "
                  "with care. Sources: `docs/research/evidence/gpu/`.", ""]
        lines += rtf_table(rows, steps, first) + [""]
        sizes = {name: count_parameters(Mask2Flow(cfg)) for name, cfg in CONFIGS.items()}
        earlier = sorted({r["config"] for r in rows if sizes.get(r["config"], r["parameters"]) != r["parameters"]})
        lines += [f"The `{name}` rows above were timed on an earlier layout of that preset: today's has "
                  f"{sizes[name] / 1e6:.2f}M parameters (`python mask2flow.py`)." for name in earlier]
        lines += [""] if earlier else []
    return lines


def source(fig, what):
    return (f"Source: `{fig['_file']}` ({what}), from `{Path(fig.get('ckpt') or '').parent.name or '–'}` "
            f"on {fig['data']} {fig['split']}, n = {fig['n']}, {fig['machine']}.")


def di_section(di):
    lines = ["## Delete/insert proportions", ""]
    if di is None:
        return lines + [todo("python docs/research/figures.py di --ckpt ... --flow-only ...")]
    props, bins = di["proportions"], di.get("bin_proportions", {})
    names = list(next(iter(props.values())))
    cols = [(t, "energy", props[t]) for t in props] + [(t, "bins", bins[t]) for t in bins]
    lines += ["Insertion share of the change from the mixture (deletion is the rest): weighted by energy, "
              "I/(D+I), as in the paper's definition; and, as a variant, the share of changed bins that gained "
              "energy. Flow-only rows are cumulative after each Euler step. " +
              source(di, "docs/research/figures.py di"), "",
              row(["", *(f"{t}, {w}" for t, w, _ in cols)]), row(["---"] * (len(cols) + 1))]
    for n in names:
        lines.append(row([n, *(pct(p.get(n, {}).get("insert")) for _, _, p in cols)]))
    return lines + [""]  # docs/di.png draws the 310-speaker corpus now


def steps_section(st):
    lines = ["## Quality against steps", ""]
    if st is None:
        return lines + [todo("python docs/research/figures.py steps --ckpt ... --flow-only ... --noise ...")]
    metrics = [m for m in ("si_sdr", "pesq") if any(m in v for v in st["references"].values())]
    lines += ["Mean SI-SDR (dB)" + (" / PESQ-WB" if "pesq" in metrics else "") + " of the clean test mixtures. "
              + source(st, "docs/research/figures.py steps"), "",
              row(["system", *(f"{k} step{'s' * (k > 1)}" for k in st["steps"])]),
              row(["---"] * (len(st["steps"]) + 1))]
    fmt = lambda v: " / ".join(num((v.get(m) or {}).get("mean")) for m in metrics)
    for name, by_k in st["systems"].items():
        lines.append(row([name, *(fmt(by_k[str(k)]) for k in st["steps"])]))
    for name, v in st["references"].items():
        lines.append(row([f"{name} (no flow)", fmt(v), *[""] * (len(st["steps"]) - 1)]))
    return lines + ["", "![quality against steps](steps.png)", ""]


def example_section(ex):
    lines = ["## Over-suppression", ""]
    if ex is None:
        return lines + [todo("python docs/research/figures.py spectrograms --ckpt ...")]
    e, pooled = ex["example"], ex["pooled"]
    lines += ["Target energy missing from each output, sum max(|S|^2 - |X|^2, 0) / sum |S|^2, and energy "
              "beyond the target, sum max(|X|^2 - |S|^2, 0) / sum |S|^2. The mixture's missing share is the floor "
              "no mask in [0, 1] can go below. " + source(ex, "docs/research/figures.py spectrograms"), "",
              row(["", "SI-SDR, drawn example", "missing, drawn example", "excess, drawn example",
                   f"missing, {ex['n']} examples", f"excess, {ex['n']} examples"]), row(["---"] * 6)]
    for k in pooled:
        lines.append(row([k, num(e["si_sdr"].get(k), " dB"), pct(e["missing"][k]), pct(e["excess"][k]),
                          pct(pooled[k]["missing"]), pct(pooled[k]["excess"])]))
    return lines + ["", f"Drawn example: `{e['mixture_id']}` ({ex['mix_type']}).", "",
                    "![spectrograms](spectrograms.png)", "", "![over-suppression](oversuppression.png)", ""]


def single_section(sg):
    lines = ["## Single-speaker input", ""]
    if sg is None:
        return lines + [todo("python docs/research/figures.py single --ckpt ... --control ...")]
    keys = ["si_sdr", "pesq", "estoi", "spk_sim"]
    lines += ["Inputs that hold the target voice alone; the output should equal the input's voice. Mean ± 95% "
              "interval clustered by mixture. " + source(sg, "docs/research/figures.py single")]
    for kind_, rows in sg["systems"].items():
        lines += ["", f"**{kind_}**: {sg['inputs'][kind_]}", "",
                  row(["system", *(METRICS[k] for k in keys)]), row(["---"] * (len(keys) + 1))]
        for name, m in rows.items():
            lines.append(row([name, *(cell(m.get(k)) if k in m else "n/a" for k in keys)]))
    return lines + [""]


def demo_sh_section(run):
    """`bash demo.sh` end to end: its stages (its log.csv), and per split and condition the score of the
    checkpoint it evaluates, mask-only and at one step, and their paired difference."""
    lines = ["## The main job: demo.sh", ""]
    if run is None:
        return lines + [todo(f"bash demo.sh`, then `cp runs/demo-DATE/{{eval_*.json,log.csv}} "
                             f"docs/research/evidence/{DEMO_SH}/")]
    stages = [[r for r in run["log"] if r["stage"] == st] for st in sorted({r["stage"] for r in run["log"]}, key=int)]
    trained = ", ".join(f"stage {rs[-1]['stage']} {rs[-1]['step']} steps in {num(float(rs[-1]['minutes']))} min"
                        for rs in stages)
    lines += [f"`bash demo.sh` from a built corpus to its evaluation table: it trained {trained or '(no log.csv)'} "
              "(its `log.csv`), then evaluated `ckpt_best.pt`, the best dev score of stage 2, where step 0 (the "
              "untrained flow, which returns the mask) counts. Two and three voices: SI-SDRi; target absent: the "
              "output's level re the input; target alone: SI-SDR; in dB, mean ± 95% interval clustered by mixture; "
              f"the difference is paired per example. Source: `evidence/{DEMO_SH}/`.", "",
              row(["split", "condition", "evaluated (stage, step)", "mask-only", "1 step", "1 step − mask-only, dB"]),
              row(["---"] * 6)]
    for r in run["reports"]:
        key = CONDITION_METRIC[r.get("condition", "two")]
        mask, m2f = [[(DEMO_SH, r, r["systems"][name])] for name in ("mask-only", M2F)]
        d, sign = paired(m2f, mask, key), -1 if key in LOWER_IS_BETTER else 1
        word = ("better" if sign * d["mean"] > 0 else "worse") if significant(d) else "no measurable difference"
        lines.append(row([f"{r['data']} {r['split']} ({r['label']})", f"{r.get('condition', 'two')}, {r['mix_type']}",
                          f"{r.get('stage')}, {r.get('step')}", cell(mask[0][2]["metrics"][key]),
                          cell(m2f[0][2]["metrics"][key]), f"{word}: {d['mean']:+.2f} ± {d['ci95']:.2f}"]))
    machines = sorted({r["machine"] for r in run["reports"]})
    return lines + ["", f"Measured on {', '.join(machines) or '–'}.", ""]


def speakers_section(sp):
    lines = ["## Speaker conditioning: seen and unseen voices", ""]
    if not sp:
        return lines + [todo("python docs/research/figures.py speakers --ckpt ... --split test")]
    lines += ["For each example, whether the enrollment's embedding is nearer the target's clean source than the "
              "other voice's (share of examples; ours and resemblyzer's pretrained encoder), and SI-SDRi against "
              "the target with the example's own enrollment minus with the other voice's, paired per example: "
              "near 0 dB, the output does not follow the enrollment. Mean ± 95% interval clustered by mixture. "
              "Source: `docs/research/figures.py speakers`, one file per split.", "",
              row(["split", "checkpoint", "pairs", "matched, ours", "matched, resemblyzer", "mask-only, own enrollment",
                   "mask-only, own − other's enrollment", "1 step, own − other's enrollment"]), row(["---"] * 8)]
    for f in sp:
        s = f["scores"]
        get = lambda key: cell(s[key]) if key in s else "n/a"
        lines.append(row([f"{f['data']} {f['split']} (`{f['_file']}`)", f"`{Path(f.get('ckpt') or '').parent.name}`",
                          str(f["n_pairs"]), get("matched, ours"), get("matched, resemblyzer"),
                          get("mask-only, own enrollment"), get("mask-only, own minus other voice's enrollment"),
                          get("Mask2Flow 1 step, own minus other voice's enrollment")]))
    return lines + ["", f"Machine: {sp[0]['machine']}.", ""]

# -----------------------------------------------------------------------------
# the corpus of 310 real speakers (docs/research/evidence/real310): its own tables

REAL310 = "real310"
REAL310_RUNS = [  # (folder, system, what it is): the README's table
    ("shipped", "mask-only", "`pretrained/demo.pt`, mask-only"),
    ("shipped", M2F, "`pretrained/demo.pt`, 1 step"),
    ("control", "mask-only", "fair control: its stage 1 trained on for stage 2's steps"),
    ("former", "mask-only", "former shipped model (trained on the former corpus), mask-only"),
    ("former", M2F, "former shipped model, 1 step"),
]
TTS_RUNS = [  # (with the former synthetic voices, without, step): stage 1 only, one recipe and schedule
    ("tts-voices/real-tts", "tts-voices/real", 2000), ("tts-voices/real-tts-3000", "tts-voices/real-3000", 3000)]
WIDE_RUNS = [  # (twice as wide, the small preset, step): stage 1 only, the same recipe and schedule
    ("wide/step-2000", "tts-voices/real", 2000), ("wide/step-3000", "tts-voices/real-3000", 3000),
    ("wide/step-4000", "small-4000", 4000), ("wide/step-5000", "small-5000", 5000),
    ("wide/step-7000", "small-7000", 7000), ("wide/step-8000", "small-8000", 8000),
    ("wide/step-11000", "small-11000", 11000)]  # a row once both are evaluated
SPK_RUNS = [  # (with the auxiliary speaker classification loss, without, step): stage 1 only, the same recipe
    ("spk/step-2000", "tts-voices/real", 2000)]
CONDITION_FILES = {"two": "", "absent": "_absent", "lone": "_lone", "three": "_three"}


def real310_reports(folder):
    """{run: {condition: report}} of the test split, and the oracle JSONs."""
    folder, runs = Path(folder) / REAL310, {}
    for run in {r for r, _, _ in REAL310_RUNS} | {r for pair in TTS_RUNS + WIDE_RUNS + SPK_RUNS for r in pair[:2]}:
        runs[run] = {c: json.loads(p.read_text()) for c, suffix in CONDITION_FILES.items()
                     if (p := folder / run / f"eval_demo_test_clean{suffix}.json").is_file()}
    oracle = {p.stem: json.loads(p.read_text()) for p in sorted((folder / "oracle").glob("*.json"))}
    return runs, oracle


def metric(report, system, key):
    return cell(report["systems"][system]["metrics"][key]) if report else "–"


def difference(a, system_a, b, system_b, key="si_sdri"):
    """system_a of report a minus system_b of report b, per example on key, clustered by mixture;
    None unless both were scored on the same examples."""
    if not a or not b or system_a not in a["systems"] or system_b not in b["systems"] or \
            a["examples"] != b["examples"]:
        return None
    x, y = a["systems"][system_a]["scores"][key], b["systems"][system_b]["scores"][key]
    return mean_ci([None if u is None or v is None else u - v for u, v in zip(x, y)], a["examples"]["mixture_id"])


def real310_table(folder=EVIDENCE):
    """The headline table: unseen test speakers of the demo corpus, four conditions; then what one step
    of the shipped model buys over its mask and over the fair control."""
    runs, _ = real310_reports(folder)
    if not any(runs[r] for r, _, _ in REAL310_RUNS):
        return [f"_No evaluation on the 310-speaker corpus yet: see research/evidence/{REAL310}/README.md._"]
    lines = [row(["system", "2 voices: SI-SDRi (dB)", "1 step − mask", "target absent: output re input (dB)",
                  "target alone: SI-SDR (dB)", "3 voices: SI-SDRi (dB)", "n"]), row(["---"] * 7)]
    for run, system, what in (x for x in REAL310_RUNS if runs[x[0]]):  # the runs evaluated so far
        r = runs[run]
        two = r.get("two")
        d = difference(two, M2F, two, "mask-only") if system == M2F else None
        lines.append(row([what.format(step=two and two["step"]), metric(two, system, "si_sdri"), cell(d) if d else "",
                          metric(r.get("absent"), system, "level_db"), metric(r.get("lone"), system, "si_sdr"),
                          metric(r.get("three"), system, "si_sdri"), two["n"] if two else "–"]))
    control, former = runs["control"].get("two"), runs["former"].get("two")
    d = difference(runs["shipped"].get("two"), M2F, former, M2F)
    if d:
        lines += ["", "Does `pretrained/demo.pt` beat the former shipped model, one step each? " +
                  verdict(d, "2 voices, SI-SDRi") + "."]
    two = runs["shipped"].get("two")
    if two and two["stage"] == 2 and two["step"] == 0:
        lines += ["", "The stage 2 of `pretrained/demo.pt` kept its untrained start (step 0 was its best on dev), so "
                  "its one step returns its mask."]
    else:
        for than, d in (("its own mask", difference(two, M2F, two, "mask-only")),
                        ("the fair control", difference(two, M2F, control, "mask-only"))):
            if d:
                lines += ["", f"Does one step of `pretrained/demo.pt` beat {than}? " + verdict(d, "2 voices, SI-SDRi") + "."]
        absent, lone = runs["shipped"].get("absent"), runs["shipped"].get("lone")
        d = difference(absent, "mask-only", absent, M2F, "level_db")  # mask minus one step: > 0 when one step is quieter
        if d:
            lines += ["", "Where the target is absent, is its one step quieter than its mask? " +
                      verdict(d, "mask minus 1 step, output re input") + "."]
        d = difference(lone, M2F, lone, "mask-only", "si_sdr")
        if d:
            lines += ["", "Does its one step keep a lone target voice as well as its mask? " +
                      verdict(d, "1 step minus mask, SI-SDR") + "."]
    return lines


def real310_section(folder=EVIDENCE):
    runs, oracle = real310_reports(folder)
    lines = ["## The corpus of 310 real speakers", "",
             "The demo corpus of `python corpus.py`: unseen `test` speakers (24 speechocean762, 5 LibriSpeech, 4 Common "
             "Voice), mean ± 95% interval clustered by mixture; the conditions are eval.py's (the same targets and "
             f"enrollments). Files: research/evidence/{REAL310}/, whose README.md gives the commands.", ""]
    lines += real310_table(folder) + [""]
    for arms, question, a_name, b_name in (
            (TTS_RUNS, "Do the synthetic voices of the former corpus still help? Stage 1 alone, one recipe and its "
             "20000-step schedule, with and without them beside the real voices", "real voices only",
             "with the synthetic voices"),
            (WIDE_RUNS, "Does a wider stage 1 do better? The same recipe, schedule and seed, the masker and speaker "
             "encoder twice as wide (`--mask-hidden 128 --mask-channels 16 --spk-hidden 128 --spk-dim 128`: 1.11M "
             "parameters against the `small` preset's 0.31M)", "`small`", "twice as wide"),
            (SPK_RUNS, "Does an auxiliary speaker classification loss (`--spk-loss 0.01`: cross-entropy over the "
             "training speakers on the enrollment's embedding) shorten the start near 0 dB? The same recipe, schedule "
             "and seed", "without", "with it")):
        done = [(w, wo, step) for w, wo, step in arms if runs[w].get("two") and runs[wo].get("two")]
        if done:
            lines += [question + ", on the same two-voice test examples:", "",
                      row(["stage-1 step", f"{a_name}: SI-SDRi (dB)", b_name, f"{b_name} minus {a_name}", "n"]),
                      row(["---"] * 5)]
            for w, wo, step in done:
                a, b = runs[w]["two"], runs[wo]["two"]
                lines.append(row([step, metric(b, "mask-only", "si_sdri"), metric(a, "mask-only", "si_sdri"),
                                  verdict(difference(a, "mask-only", b, "mask-only"), "one seed each"), b["n"]]))
            lines.append("")
    for run, what in (("shipped", "`pretrained/demo.pt`"), ("former", "the former shipped model")):
        bands = runs[run].get("two", {}).get("bands") or {}
        if bands:
            lines += [f"By band, SI-SDRi of {what}: " + "; ".join(
                f"{band}: mask-only {cell(m['mask-only'])}, 1 step {cell(m[M2F])}" for band, m in bands.items()), ""]
    ceil = oracle.get("ceilings_test")
    if ceil:
        lines += ["### Oracle starts", "", f"What masks built from the clean target give, on {ceil['n']} test examples "
                  "(`docs/research/oracle.py ceilings`), SI-SDR (dB):", "",
                  row(["start", "SI-SDR", "minus the bounded mask"]), row(["---"] * 3)]
        for k, v in ceil["mean"].items():
            lines.append(row([k, f"{v:.2f}", cell(ceil["minus_bounded"][k]) if k in ceil["minus_bounded"] else ""]))
        lines.append("")
    for name, o in oracle.items():
        if name.startswith("oracle_gamma"):
            lines += [f"The small DiT ({o.get('head', 'velocity')} head) trained {o['steps']} steps from the oracle "
                      f"start IRM^{o['gamma']:g} · Y (`docs/research/oracle.py train`), one step, on {o['n']} test "
                      f"examples: SI-SDR {o['mean']['start']:.2f} dB at the start, {o['mean']['one step']:.2f} after one "
                      "step; " + "; ".join(f"{k} minus the start {cell(v)} dB" for k, v in o["minus_start"].items())
                      + ".", ""]
    gain, velocity = oracle.get("oracle_gamma1_gain_test"), oracle.get("oracle_gamma1_test")
    if gain and velocity and velocity.get("mixture_id") is not None and gain.get("mixture_id") == velocity["mixture_id"]:
        d = mean_ci([a - b for a, b in zip(gain["scores"]["one step"], velocity["scores"]["one step"])],
                    gain["mixture_id"])
        lines += ["Does a DiT that outputs complex gains, v = G_Y Y + G_x x_t, reach more than one that outputs the "
                  "velocity (with `mask2flow.py:Skip`)? Gain head minus velocity head, one step from the same oracle "
                  "start: " + verdict(d, f"the same {gain['steps']} steps and seed"), ""]
    return lines + real310_di(folder, oracle)


def real310_di(folder, oracle):
    """Delete/insert shares of one model (figures.py di; the shipped one) and of the oracle runs, both conventions."""
    path = Path(folder) / REAL310 / "di.json"
    if not path.is_file():
        return []
    di = {**json.loads(path.read_text()), "_file": f"research/evidence/{REAL310}/di.json"}
    panels = {(t, "mixture scale"): p for t, p in di["proportions"].items()}
    panels.update({(t, "bins"): p for t, p in di["bin_proportions"].items()})
    panels.update({(t, "normalised"): di["normalised_proportions"][f"{t}, normalised"] for t in di["proportions"]})
    order = ("mixture scale", "bins", "normalised")
    cols = sorted(panels, key=lambda c: (c[0] != "clean", order.index(c[1])))
    lines = ["### Delete/insert, two conventions", "",
             "Insertion share I/(D+I) of the change from the mixture (docs/6), in two conventions: at the mixture's scale, "
             "on the plain STFT power; and with each signal normalised to unit energy on its own, on the compressed "
             "magnitude |X|^0.5; *bins* counts the changed bins at the mixture's scale instead of weighing them. "
             f"Source: `{di['_file']}` (`docs/research/figures.py di --ckpt {di['ckpt']}`), on "
             f"{di['data']} {di['split']}, n = {di['n']}, {di['machine']}; oracle rows: `docs/research/oracle.py eval`, "
             "on the same clean mixtures.", "",
             row(["", *(f"{t}, {c}" for t, c in cols)]), row(["---"] * (len(cols) + 1))]
    for name in panels[cols[0]]:
        lines.append(row([f"`{di['ckpt']}`: {name}" if name != "target" else "clean target",
                          *(pct(panels[c].get(name, {}).get("insert")) for c in cols)]))
    shown = set()  # the runs from one oracle start share its row
    for o in (o for o in oracle.values() if "insertion" in o):
        for state in ("start", "one step"):
            what = f"oracle IRM^{o['gamma']:g} · Y" + ("" if state == "start" else f", {o['head']} DiT 1 step")
            if what not in shown:
                shown.add(what)
                lines.append(row([what, *(pct(o["insertion"]["mixture" if c == "mixture scale" else c][state])
                                          if t == "clean" and c != "bins" else "–" for t, c in cols)]))
    return lines + ["", "![delete/insert proportions, two conventions](di.png)", ""]

# -----------------------------------------------------------------------------
# the two outputs


def build(evidence=EVIDENCE):
    """The text of docs/results.md."""
    ev = read_evidence(evidence)
    groups = conditions(ev)
    lines = ["# Results", "",
             "<!-- Written by docs/research/results.py from docs/research/evidence; do not edit by hand: rerun it. -->",
             "", "Every number on this page is read from a file in [research/evidence/](research/evidence/README.md), "
             "which says the command that wrote it; each section names its files. `tests/test_results.py` fails "
             "when this page differs from what they give.", ""]
    lines += real310_section(evidence) + demo_sh_section(ev["demo_sh"].get(DEMO_SH))
    lines += ["## The former corpus", "", "The sections below measure the former demo corpus (16 real readers and "
              "synthetic voices; splits test, test-synth, test-seen). Where they name `pretrained/demo.pt`, it is the "
              "former shipped model (`git show f3c16eb:pretrained/demo.pt`).", ""]
    lines += claims_section(ev, groups) + quality_section(groups, ev.get("bench")) + training_section(ev)
    lines += bench_section(ev.get("bench"), ev.get("gpu"), ev.get("then")) + di_section(ev.get("di")) + steps_section(ev.get("steps"))
    lines += example_section(ev.get("example")) + single_section(ev.get("single"))
    lines += speakers_section(ev.get("speakers"))
    return "\n".join(lines).rstrip("\n") + "\n"


BEGIN, END = "<!-- results.py: begin -->", "<!-- results.py: end -->"


def readme_block(evidence=EVIDENCE):
    """What the README holds between BEGIN and END: the headline table of the 310-speaker corpus."""
    return "\n".join(real310_table(evidence)) + "\n"


def with_block(text, block, name="README.md"):
    """text with its part between the BEGIN and END lines replaced by block."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"error: {name} needs one '{BEGIN}' line and one '{END}' line")
    head, rest = text.split(BEGIN)
    return head + BEGIN + "\n" + block.rstrip("\n") + "\n" + END + rest.split(END)[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--evidence", type=Path, default=EVIDENCE, help="folder of the committed evidence")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md",
                   help=f"the file whose lines between {BEGIN} and {END} get the claims and clean-mixture tables")
    args = p.parse_args(argv)
    for path, is_there in ((args.evidence, args.evidence.is_dir()), (args.readme, args.readme.is_file())):
        if not is_there:
            raise SystemExit(f"error: {path} does not exist")
    readme = with_block(args.readme.read_text(), readme_block(args.evidence), args.readme)  # checked before writing
    args.out.write_text(build(args.evidence))
    args.readme.write_text(readme)
    print(f"wrote {args.out} and the results block of {args.readme}")


if __name__ == "__main__":
    main()
