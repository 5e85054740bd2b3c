r"""
Write docs/results.md and the results block of the top-level README from the evidence committed in
docs/research/evidence/, and from nothing else (its README.md gives the command that wrote each file):

    python docs/research/results.py   # rewrites docs/results.md, and README.md between its two marker lines

  in docs/research/evidence/                   written by
  real310/{shipped,control,dev-choice,opus12}/ python eval.py ... -o docs/research/evidence/real310/RUN
  real310/shipped/log.csv                      the shipped model's training log, copied
  real310/{oversuppression,ceilings,di}.json   python analysis.py COMMAND -o docs/research/evidence/real310
  demo.sh/                                     bash demo.sh, its run folder's eval_*.json and log.csv copied

tests/test_results.py rebuilds both outputs with build() and readme_block() and fails on any difference.
A claim "A beats B" is worded as a result only when the 95% interval of the paired difference A - B,
clustered by mixture (eval.py:mean_ci), excludes zero.
"""
import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from eval import CONDITION_METRIC, LOWER_IS_BETTER, cell, mean_ci  # noqa: E402

EVIDENCE = ROOT / "docs" / "research" / "evidence"
REAL310, DEMO_SH = "real310", "demo.sh"  # the shipped model's evidence; that of `bash demo.sh`, the main job
M2F, MASK = "Mask2Flow 1 step", "mask-only"
CONDITION_FILES = {"two": "", "absent": "_absent", "lone": "_lone", "three": "_three"}
BEGIN, END = "<!-- results.py: begin -->", "<!-- results.py: end -->"


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def pct(x):
    return f"{100 * x:.1f}%"


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read {path}: {e}") from None


def reports(folder, split="test"):
    """{condition: eval.py report} of one run folder's split (none where it was not evaluated)."""
    out = {}
    for condition, suffix in CONDITION_FILES.items():
        found = sorted(Path(folder).glob(f"eval_*_{split}_clean{suffix}.json"))  # eval_<data>_...: demo's, or a copy's
        if len(found) > 1:
            raise SystemExit(f"error: {folder} holds {len(found)} reports of {split}, {condition}: keep one")
        for path in found:
            r = load(path)
            if "examples" not in r or any("scores" not in s for s in r.get("systems", {}).values()):
                raise SystemExit(f"error: {path} has no per-example scores: rewrite it with this eval.py")
            out[condition] = r
    return out


def difference(a, system_a, b, system_b, key="si_sdri"):
    """system_a of report a minus system_b of report b per example on key, clustered by mixture; None
    unless both scored the same examples."""
    if not a or not b or system_a not in a["systems"] or system_b not in b["systems"] or a["examples"] != b["examples"]:
        return None
    x, y = a["systems"][system_a]["scores"][key], b["systems"][system_b]["scores"][key]
    return mean_ci([None if u is None or v is None else u - v for u, v in zip(x, y)], a["examples"]["mixture_id"])


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
    return f"{word}: {d['mean']:+.2f} ± {d['ci95']:.2f}{unit} (paired, n = {d['n']} in {d['clusters']} mixtures{left}; {note})"


def metric(report, system, key):
    return cell(report["systems"][system]["metrics"][key]) if report and system in report["systems"] else "–"

# --- the shipped model ---


def shipped_table(evidence=EVIDENCE):
    """The headline: the shipped model on unseen test speakers in eval.py's four conditions, its fair
    control, and what its one step buys over its mask and over the control."""
    run, control = reports(Path(evidence) / REAL310 / "shipped"), reports(Path(evidence) / REAL310 / "control")
    if not run.get("two"):
        return ["_No evaluation of the shipped model yet: see docs/research/evidence/README.md._"]
    lines = [row(["system", "2 voices: SI-SDRi (dB)", "1 step − mask", "target absent: output re input (dB)",
                  "target alone: SI-SDR (dB)", "3 voices: SI-SDRi (dB)", "n"]), row(["---"] * 7)]
    two = run["two"]
    for r, system, what in ((run, MASK, "`pretrained/demo.pt`, mask-only"), (run, M2F, "`pretrained/demo.pt`, 1 step"),
                            (control, MASK, "fair control: its stage 1 trained on for stage 2's steps")):
        if r.get("two"):
            d = difference(two, M2F, two, MASK) if system == M2F else None
            lines.append(row([what, metric(r["two"], system, "si_sdri"), cell(d) if d else "",
                              metric(r.get("absent"), system, "level_db"), metric(r.get("lone"), system, "si_sdr"),
                              metric(r.get("three"), system, "si_sdri"), r["two"]["n"]]))
    claims = [("Does one step of `pretrained/demo.pt` beat its own mask?", difference(two, M2F, two, MASK),
               "2 voices, SI-SDRi"),
              ("Does one step of `pretrained/demo.pt` beat the fair control?", difference(two, M2F, control.get("two"), MASK),
               "2 voices, SI-SDRi"),
              ("Where the target is absent, is its one step quieter than its mask?",
               difference(run.get("absent"), MASK, run.get("absent"), M2F, "level_db"), "mask minus 1 step, output re input"),
              ("Does its one step keep a lone target voice as well as its mask?",
               difference(run.get("lone"), M2F, run.get("lone"), MASK, "si_sdr"), "1 step minus mask, SI-SDR")]
    for question, d, note in claims:
        if d:
            lines += ["", f"{question} {verdict(d, note)}."]
    return lines


def training_lines(log):
    """Each stage of the shipped run's log.csv: its last step and its best dev SI-SDR."""
    out = []
    for stage, dev in (("1", "dev_mask"), ("2", "dev_flow1")):
        rs = [r for r in log if r["stage"] == stage]
        if rs:
            best = max(rs, key=lambda r: float(r[dev]))
            out.append(f"stage {stage} to step {rs[-1]['step']}, best dev SI-SDR {float(best[dev]):.2f} dB at step "
                       f"{best['step']} (its first validation: {float(rs[0][dev]):.2f} dB at step {rs[0]['step']})")
    return out


def shipped_section(evidence=EVIDENCE):
    folder = Path(evidence) / REAL310
    lines = ["## The shipped model", "",
             "`pretrained/demo.pt` on the demo corpus of `python corpus.py`: unseen `test` speakers, mean ± 95% interval "
             "clustered by mixture; the conditions are eval.py's (the same targets and enrollments). Files: "
             "research/evidence/real310/, whose commands research/evidence/README.md gives.", ""] + shipped_table(evidence) + [""]
    bands = reports(folder / "shipped").get("two", {}).get("bands") or {}
    if bands:
        lines += ["By band, SI-SDRi: " + "; ".join(f"{band}: mask-only {cell(m[MASK])}, 1 step {cell(m[M2F])}"
                                                  for band, m in bands.items()) + ".", ""]
    log_path = folder / "shipped" / "log.csv"
    if log_path.is_file():
        log = list(csv.DictReader(log_path.read_text().splitlines()))
        lines += ["Its training (`shipped/log.csv`; stage 2 starts from stage 1's best checkpoint): " +
                  "; ".join(training_lines(log)) + ".", ""]
    dev = reports(folder / "dev-choice", "dev")
    if dev:
        said = {"two": (M2F, MASK, "2 voices, one step minus mask, SI-SDRi"),
                "absent": (MASK, M2F, "target absent, mask minus one step, output re input"),
                "lone": (M2F, MASK, "target alone, one step minus mask, SI-SDR")}
        lines += ["Chosen on dev, 200 examples (`dev-choice/`): " + "; ".join(
            verdict(difference(dev[c], a, dev[c], b, CONDITION_METRIC[c]), note)
            for c, (a, b, note) in said.items() if c in dev) + ".", ""]
    return lines

# --- the analyses of analysis.py ---


def oversuppression_section(ov):
    lines = ["## Over-suppression", "",
             f"How much of the target's energy each output lacks, sum max(|S|² − |X|², 0) / sum |S|², and how much it has "
             f"in excess of the target, sum max(|X|² − |S|², 0) / sum |S|², pooled over the first {ov['n']} examples of "
             f"{ov['data']} {ov['split']} (`python analysis.py oversuppression`, {ov['ckpt']}; "
             f"research/evidence/{REAL310}/oversuppression.json). The mixture's lack is the floor of a bounded mask.", "",
             row(["output", "target energy missing", "energy in excess of the target"]), row(["---"] * 3)]
    lines += [row([k, pct(v["missing"]), pct(v["excess"])]) for k, v in ov["pooled"].items()]
    per = ov["per_example"]
    for key, what in (("missing", "Does one step miss more of the target's energy than its mask?"),
                      ("excess", "Does one step leave less energy in excess of the target than its mask?")):
        sign = 1 if key == "missing" else -1
        d = mean_ci([sign * 100 * (a - b) for a, b in zip(per["one step"][key], per["mask"][key])], ov["mixture_id"])
        lines += ["", f"{what} {verdict(d, 'share of the target energy, per example', ' points')}."]
    return lines + ["", "![over-suppression of one example](oversuppression.png)", ""]


def ceilings_section(ce):
    lines = ["## Oracle ceilings", "",
             f"What masks built from the clean target reach, on the first {ce['n']} examples of {ce['data']} {ce['split']} "
             f"(`python analysis.py ceilings`; research/evidence/{REAL310}/ceilings.json), SI-SDR in dB:", "",
             row(["start", "SI-SDR", "minus the bounded mask"]), row(["---"] * 3)]
    for k, v in ce["mean"].items():
        lines.append(row([k, f"{v:.2f}", cell(ce["minus_bounded"][k]) if k in ce["minus_bounded"] else ""]))
    return lines + [""]


def di_section(di):
    sh = di["insertion_shares"]
    cols = list(sh)
    lines = ["## Delete/insert, two conventions", "",
             "Insertion share I/(D+I) of the change from the mixture (reading 6): at the mixture's scale, on the plain "
             "STFT power; *bins* counts the changed bins there instead of weighing them; *normalised*: each signal scaled "
             "to unit energy on its own, on the compressed magnitude |X|^0.5. Pooled over the first "
             f"{di['n']} examples of {di['data']} {di['split']} (`python analysis.py di`, {di['ckpt']}; "
             f"research/evidence/{REAL310}/di.json).", "", row(["", *cols]), row(["---"] * (len(cols) + 1))]
    lines += [row([name, *(pct(sh[c][name]["insert"]) for c in cols)]) for name in sh[cols[0]]]
    return lines + ["", "![delete/insert proportions, two conventions](di.png)", ""]

# --- the re-encoded speech and the main job ---


def opus12_section(evidence=EVIDENCE):
    folder = Path(evidence) / REAL310
    new, old = reports(folder / "opus12").get("two"), reports(folder / "shipped").get("two")
    if not new:
        return []
    lines = ["## The speech at 12 kbit/s", "",
             "speech/ is Ogg Opus at 12 kbit/s. The shipped model on the corpus built from it against its evidence above "
             f"(built from the earlier encoding), the same {new['n']} two-voice test examples "
             f"(research/evidence/{REAL310}/opus12/; research/evidence/README.md gives the command):", ""]
    for system in (MASK, M2F):
        d = difference(new, system, old, system)
        lines.append(f"- {system}: SI-SDRi {metric(new, system, 'si_sdri')} dB against {metric(old, system, 'si_sdri')}; "
                     f"the re-encoded minus the earlier, paired: {verdict(d, '2 voices, SI-SDRi')}.")
    return lines + [""]


def demo_sh_section(folder):
    """`bash demo.sh` end to end: its stages (its log.csv), and per split and condition the score of the
    checkpoint it evaluates, mask-only and at one step, and their paired difference."""
    lines = ["## The main job: demo.sh", ""]
    runs = sorted(Path(folder).glob("eval_*.json"))
    if not runs:
        return lines + [f"_Not measured yet:_ `bash demo.sh`, then copy its run's `eval_*.json` and `log.csv` into "
                        f"research/evidence/{DEMO_SH}/.", ""]
    log = list(csv.DictReader((Path(folder) / "log.csv").read_text().splitlines()))
    stages = [[r for r in log if r["stage"] == st] for st in sorted({r["stage"] for r in log}, key=int)]
    trained = ", ".join(f"stage {rs[-1]['stage']} {rs[-1]['step']} steps in {float(rs[-1]['minutes']):.2f} min"
                        for rs in stages)
    lines += [f"`bash demo.sh` from a built corpus to its evaluation table: it trained {trained} (its `log.csv`), then "
              "evaluated `ckpt_best.pt`, the best dev score of stage 2, where step 0 (the untrained flow, which returns "
              "the mask) counts. Two and three voices: SI-SDRi; target absent: the output's level re the input; target "
              "alone: SI-SDR; in dB, mean ± 95% interval clustered by mixture; the difference is paired per example. "
              f"Source: `research/evidence/{DEMO_SH}/`.", "",
              row(["split", "condition", "evaluated (stage, step)", "mask-only", "1 step", "1 step − mask-only, dB"]),
              row(["---"] * 6)]
    machines = set()
    for r in map(load, runs):
        key, condition = CONDITION_METRIC[r.get("condition", "two")], r.get("condition", "two")
        d, sign = difference(r, M2F, r, MASK, key), -1 if key in LOWER_IS_BETTER else 1
        word = ("better" if sign * d["mean"] > 0 else "worse") if significant(d) else "no measurable difference"
        lines.append(row([f"{r['data']} {r['split']} ({r['label']})", f"{condition}, {r['mix_type']}",
                          f"{r.get('stage')}, {r.get('step')}", metric(r, MASK, key), metric(r, M2F, key),
                          f"{word}: {d['mean']:+.2f} ± {d['ci95']:.2f}"]))
        machines.add(r["machine"])
    return lines + ["", f"Measured on {', '.join(sorted(machines))}.", ""]

# --- the two outputs ---


def build(evidence=EVIDENCE):
    """The text of docs/results.md."""
    folder = Path(evidence) / REAL310
    lines = ["# Results", "",
             "<!-- Written by docs/research/results.py from docs/research/evidence; do not edit by hand: rerun it. -->", "",
             "Every number on this page is read from a file in [research/evidence/](research/evidence/README.md), which "
             "says the command that wrote it; each section names its files. `tests/test_results.py` fails when this page "
             "differs from what they give.", ""]
    lines += shipped_section(evidence)
    for name, section in (("oversuppression", oversuppression_section), ("ceilings", ceilings_section), ("di", di_section)):
        if (folder / f"{name}.json").is_file():
            lines += section(load(folder / f"{name}.json"))
    lines += opus12_section(evidence) + demo_sh_section(Path(evidence) / DEMO_SH)
    return "\n".join(lines).rstrip("\n") + "\n"


def readme_block(evidence=EVIDENCE):
    """What the README holds between BEGIN and END: the headline table of the shipped model."""
    return "\n".join(shipped_table(evidence)) + "\n"


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
                   help=f"the file whose lines between {BEGIN} and {END} get the headline table")
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
