r"""
Write docs/results.md from the JSON files the project's commands write, and from nothing else:

    python docs/results.py --runs runs/demo-m2f runs/demo-mixture runs/demo-noise runs/demo-mask \
        --bench runs/bench.json --figures docs --out docs/results.md

  --runs     run folders holding eval_<data>_<split>_<clean|noisy>.json (python sample.py --eval)
  --bench    the JSON of python sample.py --bench
  --figures  the folder holding di.json, steps.json, example.json, single.json (docs/figures.py)
  --readme   also rewrite the clean-mixture tables in the top-level README, between its markers

A section whose JSON is missing says which command makes it. Without any input this writes the
empty template that docs/results.md starts as.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mask2flow import Config  # noqa: E402
from sample import METRICS, cell, row  # noqa: E402

RERUN = "`python docs/results.py --runs RUN ... --bench runs/bench.json --figures docs`"


def todo(command):
    return f"_Not measured yet._ Run `{command}`, then {RERUN}.\n"


def pct(x):
    return "–" if x is None else f"{100 * x:.1f}%"


def mean(m):
    return None if not isinstance(m, dict) else m["mean"]


def num(x, unit=""):
    return "–" if x is None else f"{x:.2f}{unit}"


def kind(report):
    """What a run is, from its evaluation: Mask2Flow, the fair control, or a baseline flow."""
    systems = report["systems"]
    if "mask-only" in systems:
        return "control" if report.get("stage") == 1 else "mask2flow"
    return "flow-only" if "x0 = mixture" in systems else "noise"


def sampler(report):
    """' (t_zero 0, t_power 1)' for a run trained with another time sampler than Config's default."""
    cfg, default = report.get("config", {}), Config()
    changed = [f"{f} {cfg[f]:g}" for f in ("t_zero", "t_power") if f in cfg and cfg[f] != getattr(default, f)]
    return f" ({', '.join(changed)})" if changed else ""


def system_rows(report):
    """(label, steps, metrics) of one run's report, without the rows another run already gives
    (the mixture) or that mean nothing (x0 itself for a baseline, the untrained flow of a control)."""
    k, out = kind(report), []
    for name, s in report["systems"].items():
        if s["steps"] is None:
            continue
        if k == "control":
            if s["steps"] == 0:
                out.append(("mask-only, fair control (stage 1 only, trained longer)", 0, s["metrics"]))
        elif k == "mask2flow":
            out.append(("mask-only (stage 1 of Mask2Flow)" if s["steps"] == 0 else name + sampler(report),
                        s["steps"], s["metrics"]))
        elif s["steps"] > 0:
            label = "flow-only from the mixture" if k == "flow-only" else "flow from noise"
            out.append((f"{label}, {s['steps']} step{'s' * (s['steps'] > 1)}", s["steps"], s["metrics"]))
    return out


def rtf(bench, params, steps):
    """Real-time factor of a model of this size at this many steps on the benchmark's CPU, or '–'."""
    for b in (bench or {}).get("rows", []):
        if b["device"] == "cpu" and b["parameters"] == params and str(steps) in b["rtf"]:
            return f"{b['rtf'][str(steps)]:.4f}"
    return "–"


def quality_section(reports, bench=None, mix_types=("clean", "noisy")):
    lines = ["## Extraction quality", ""]
    if not reports:
        return lines + ["_Not measured yet._ For each run: `python sample.py --ckpt RUN/ckpt_best.pt --eval "
                        "--data demo --limit 100` (add `--noisy` for noisy mixtures), then " + RERUN + ".", ""]
    groups = {}
    for path, r in reports:
        if r["mix_type"] in mix_types:
            groups.setdefault((r["data"], r["split"], r["mix_type"]), []).append((path, r))
    lines.append("Mean ± 95% confidence interval over the examples (Student t). SI-SDRi is the SI-SDR gain "
                 "over the mixture. Source: the `eval_*.json` files of `python sample.py --eval`. "
                 "RTF: compute time over audio time of a model of that size and step count on "
                 f"{bench_machine(bench)}, from `python sample.py --bench` (– where it timed no such model).")
    for (data, split, mix_type), items in sorted(groups.items()):
        first = items[0][1]
        lines += ["", f"### {data} {split} ({first['label']}), {mix_type}", "",
                  row(["system", "steps", *METRICS.values(), "n", "parameters", "RTF", "run (stage, step)"]),
                  row(["---"] * (len(METRICS) + 6))]
        mix = first["systems"]["mixture"]["metrics"]
        lines.append(row(["mixture", "–", *map(cell, mix.values()), first["n"], "–", "–", "–"]))
        order, shown = {"mask2flow": 0, "control": 1, "flow-only": 2, "noise": 3}, set()
        for path, r in sorted(items, key=lambda item: order[kind(item[1])]):
            total = (r.get("parameters") or {}).get("total")
            params = f"{total / 1e6:.2f}M" if total else "–"
            where = f"`{Path(path).parent.name}` ({r.get('stage')}, {r.get('step')})"
            for label, steps, metrics in system_rows(r):
                scores = tuple(cell(metrics.get(k)) for k in METRICS)
                if (label, scores) in shown:  # the same masker, evaluated again by a variant's run
                    continue
                shown.add((label, scores))
                lines.append(row([label, steps, *scores, r["n"], params, rtf(bench, total, steps), where]))
        machines = sorted({r["machine"] for _, r in items})
        lines += ["", f"Measured on {', '.join(machines)}; torch {first['torch']}; "
                  f"{sum(r['seconds'] for _, r in items):.0f} s of evaluation in all."]
        if len({r["n"] for _, r in items}) > 1:
            lines.append("**The runs were evaluated on different numbers of examples: compare with care.**")
    return lines + [""]


def bench_machine(bench):
    names = sorted({b["device_name"] for b in (bench or {}).get("rows", []) if b["device"] == "cpu"})
    return ", ".join(names) or "the benchmark's CPU"


def bench_section(bench):
    lines = ["## Size and speed", ""]
    if bench is None:
        return lines + [todo("python sample.py --bench")]
    steps = [0] + bench["steps"]
    label = lambda k: "mask-only" if k == 0 else f"{k} step{'s' * (k > 1)}"
    lines += [f"Real-time factor (compute time / audio time, lower is faster) on {bench['audio_seconds']:.0f} s of "
              f"audio, median of {bench['repeats']} runs; torch {bench['torch']}. "
              "Source: `python sample.py --bench`.", "",
              row(["config", "parameters", "machine", *map(label, steps), "peak GPU MiB"]),
              row(["---"] * (len(steps) + 4))]
    for r in bench["rows"]:
        lines.append(row([r["config"], f"{r['parameters'] / 1e6:.2f}M", f"{r['device']}: {r['device_name']}",
                          *(f"{r['rtf'][str(k)]:.4f}" for k in steps),
                          "–" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"]))
    return lines + [""]


def source(fig, what):
    return (f"Source: `{fig['_file']}` ({what}), from `{Path(fig.get('ckpt') or '').parent.name or '–'}` "
            f"on {fig['data']} {fig['split']}, n = {fig['n']}, {fig['machine']}.")


def di_section(di):
    lines = ["## Delete/insert proportions", ""]
    if di is None:
        return lines + [todo("python docs/figures.py di --ckpt ... --flow-only ...")]
    props, bins = di["proportions"], di.get("bin_proportions", {})
    names = list(next(iter(props.values())))
    cols = [(t, "energy", props[t]) for t in props] + [(t, "bins", bins[t]) for t in bins]
    lines += ["Insertion share of the change from the mixture (deletion is the rest): weighted by energy, "
              "I/(D+I), as in the paper's definition; and, as a variant, the share of changed bins that gained "
              "energy. Flow-only rows are cumulative after each Euler step. " + source(di, "docs/figures.py di"), "",
              row(["", *(f"{t}, {w}" for t, w, _ in cols)]), row(["---"] * (len(cols) + 1))]
    for n in names:
        lines.append(row([n, *(pct(p.get(n, {}).get("insert")) for _, _, p in cols)]))
    return lines + ["", "![delete/insert proportions](di.png)", ""]


def steps_section(st):
    lines = ["## Quality against steps", ""]
    if st is None:
        return lines + [todo("python docs/figures.py steps --ckpt ... --flow-only ... --noise ...")]
    metrics = [m for m in ("si_sdr", "pesq") if any(m in v for v in st["references"].values())]
    lines += ["Mean SI-SDR (dB)" + (" / PESQ-WB" if "pesq" in metrics else "") + " of the clean test mixtures. "
              + source(st, "docs/figures.py steps"), "",
              row(["system", *(f"{k} step{'s' * (k > 1)}" for k in st["steps"])]),
              row(["---"] * (len(st["steps"]) + 1))]
    fmt = lambda v: " / ".join(num(mean(v.get(m))) for m in metrics)
    for name, by_k in st["systems"].items():
        lines.append(row([name, *(fmt(by_k[str(k)]) for k in st["steps"])]))
    for name, v in st["references"].items():
        lines.append(row([f"{name} (no flow)", fmt(v), *[""] * (len(st["steps"]) - 1)]))
    return lines + ["", "![quality against steps](steps.png)", ""]


def example_section(ex):
    lines = ["## Over-suppression", ""]
    if ex is None:
        return lines + [todo("python docs/figures.py spectrograms --ckpt ...")]
    e, pooled = ex["example"], ex["pooled"]
    lines += ["Target energy missing from each output, sum max(|S|^2 - |X|^2, 0) / sum |S|^2, and energy "
              "beyond the target, sum max(|X|^2 - |S|^2, 0) / sum |S|^2. The mixture's missing share is the floor "
              "no mask in [0, 1] can go below. " + source(ex, "docs/figures.py spectrograms"), "",
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
        return lines + [todo("python docs/figures.py single --ckpt ... --control ...")]
    keys = ["si_sdr", "pesq", "estoi", "spk_sim"]
    lines += ["Inputs that hold the target voice alone; the output should equal the input's voice. "
              + source(sg, "docs/figures.py single")]
    for kind_, rows in sg["systems"].items():
        lines += ["", f"**{kind_}**: {sg['inputs'][kind_]}", "",
                  row(["system", *(METRICS[k] for k in keys)]), row(["---"] * (len(keys) + 1))]
        for name, m in rows.items():
            lines.append(row([name, *(cell(m.get(k)) if k in m else "n/a" for k in keys)]))
    return lines + [""]


def claims_section(reports, bench, di, st, sg):
    """The paper's statements, each beside the number of this page that tests it."""
    lines = ["## The paper's claims, side by side", "",
             "What the paper (arXiv 2603.12837, v2) states, beside the number of this page that tests it.", "",
             row(["claim", "paper", "here"]), row(["---"] * 3)]
    p = di and di["proportions"]
    for t in ("clean", "noisy"):
        if p and t in p:
            ins = lambda n: pct(p[t].get(n, {}).get("insert"))
            lines += [row([f"flow-only: deletion share after step 1 ({t})", "about 94%",
                           pct(p[t].get("flow-only step 1", {}).get("delete"))]),
                      row([f"flow-only: deletion share after step 8 ({t})", "about 71%",
                           pct(p[t].get("flow-only step 8", {}).get("delete"))]),
                      row([f"clean target: insertion share ({t})", "about 25-28%", ins("target")])]
    if not p:
        lines.append(row(["delete/insert proportions", "Figure 2", "not measured yet"]))
    if st and "Mask2Flow" in st["systems"]:
        s = st["systems"]["Mask2Flow"]
        lines.append(row(["Mask2Flow: one Euler step is enough", "yes",
                          f"SI-SDR {num(mean(s['1']['si_sdr']), ' dB')} at 1 step, "
                          f"{num(mean(s[str(st['steps'][-1])]['si_sdr']), ' dB')} at {st['steps'][-1]}"]))
    else:
        lines.append(row(["Mask2Flow: one Euler step is enough", "yes", "not measured yet"]))
    paper = [r for r in (bench or {}).get("rows", []) if r["config"] == "paper"]
    lines.append(row(["whole system size", "about 85M parameters",
                      f"`paper` config {paper[0]['parameters'] / 1e6:.1f}M" if paper else "not measured yet"]))
    m2f = [r for _, r in reports if kind(r) == "mask2flow" and r["split"] == "test" and r["mix_type"] == "clean"]
    if m2f:
        sy = m2f[0]["systems"]
        one = next((v for k, v in sy.items() if v["steps"] == 1), None)
        lines.append(row(["the flow stage improves on masking", "yes (masking over-suppresses)",
                          f"SI-SDRi {cell(sy['mask-only']['metrics']['si_sdri'])} mask-only, "
                          f"{cell(one['metrics']['si_sdri']) if one else '–'} Mask2Flow 1 step (test, clean)"]))
    for split in ("test", "test-seen"):
        control = [r for _, r in reports if kind(r) == "control" and r["split"] == split and r["mix_type"] == "clean"]
        m2f = [r for _, r in reports if kind(r) == "mask2flow" and r["split"] == split and r["mix_type"] == "clean"]
        if control and m2f:
            one = next((v for v in m2f[0]["systems"].values() if v["steps"] == 1), None)
            lines.append(row([f"the flow stage beats the same budget spent on masking ({split}, clean)",
                              "not reported",
                              f"SI-SDRi {cell(control[0]['systems']['mask-only']['metrics']['si_sdri'])} fair control, "
                              f"{cell(one['metrics']['si_sdri']) if one else '–'} Mask2Flow 1 step"]))
    if sg:
        c = sg["systems"]["clean"].get("Mask2Flow 1 step")
        lines.append(row(["a single clean voice comes out undamaged (v2)", "WER 2.9 vs 2.6 on clean speech",
                          f"SI-SDR {cell(c['si_sdr'])} dB on the clean voice alone" if c else "–"]))
    lines.append(row(["Whisper WER as an ASR front end", "Figure 4", "not run: needs downloaded Whisper weights"]))
    return lines + [""]


def read_reports(runs):
    """(path, report) of every eval_*.json in the run folders, in the order the runs are given."""
    return [(str(p), json.loads(p.read_text())) for run in runs for p in sorted(Path(run).glob("eval_*.json"))]


def build(runs=(), bench=None, figures=None):
    reports = read_reports(runs)
    bench = json.loads(Path(bench).read_text()) if bench and Path(bench).is_file() else None
    figs = {}
    for name in ("di", "steps", "example", "single"):
        path = Path(figures) / f"{name}.json" if figures else None
        if path and path.is_file():
            figs[name] = {**json.loads(path.read_text()), "_file": str(path)}
    lines = ["# Results", "",
             "<!-- Written by docs/results.py from JSON files; do not edit by hand: rerun it. -->", "",
             "Every number on this page is read from a JSON file that a command of the project wrote; "
             "each section names its file. How to produce them all: [README](README.md).", ""]
    lines += claims_section(reports, bench, figs.get("di"), figs.get("steps"), figs.get("single"))
    lines += quality_section(reports, bench)
    lines += bench_section(bench)
    lines += di_section(figs.get("di"))
    lines += steps_section(figs.get("steps"))
    lines += example_section(figs.get("example"))
    lines += single_section(figs.get("single"))
    return "\n".join(lines)


BEGIN, END = "<!-- results.py: begin -->", "<!-- results.py: end -->"


def update_readme(path, runs, bench):
    """Replace the README's block between BEGIN and END with the clean-mixture tables."""
    text = Path(path).read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"error: {path} needs one '{BEGIN}' line and one '{END}' line")
    table = quality_section(read_reports(runs), json.loads(Path(bench).read_text()) if bench else None, ("clean",))[2:]
    head, rest = text.split(BEGIN)
    Path(path).write_text(head + BEGIN + "\n" + "\n".join(table).replace("### ", "#### ") + END + rest.split(END)[1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="*", default=[], help="run folders with eval_*.json")
    p.add_argument("--bench", help="the JSON of python sample.py --bench")
    p.add_argument("--figures", help="folder with the JSON of docs/figures.py")
    p.add_argument("--out", type=Path, default=Path("docs/results.md"))
    p.add_argument("--readme", type=Path, help="also write the clean-mixture tables into this file, between "
                   f"the lines {BEGIN} and {END}")
    args = p.parse_args(argv)
    args.out.write_text(build(args.runs, args.bench, args.figures).rstrip("\n") + "\n")
    print(f"wrote {args.out}")
    if args.readme:
        update_readme(args.readme, args.runs, args.bench)
        print(f"updated the results block of {args.readme}")


if __name__ == "__main__":
    main()
