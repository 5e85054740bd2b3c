"""
A - B, example by example, between two systems of eval.py's JSON reports (the same split and
condition), with the 95% interval clustered by mixture (eval.py:mean_ci); worded as a difference
only when the interval excludes zero. The metric is the condition's own unless --metric says: SI-SDRi
for two and three voices, SI-SDR for the target alone, the output's level re the input (lower is
better) for the target absent.

    python docs/research/compare.py A.json "mask-only" B.json "mask-only" [--metric si_sdri]
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from eval import CONDITION_METRIC, LOWER_IS_BETTER, mean_ci  # noqa: E402


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read {path}: {e}") from None


def scores(report, path, system, metric):
    if system not in report["systems"] or metric not in report["systems"][system]["scores"]:
        raise SystemExit(f"error: {path} has no {metric} of {system!r} (its systems: {', '.join(report['systems'])})")
    ex = report["examples"]
    return {(m, k): v for m, k, v in zip(ex["mixture_id"], ex["target_index"], report["systems"][system]["scores"][metric])}


def compare(a, system_a, b, system_b, metric=None):
    """(difference A - B, its wording, the metric)."""
    ra, rb = load(a), load(b)
    metric = metric or CONDITION_METRIC[ra.get("condition", "two")]
    A, B = scores(ra, a, system_a, metric), scores(rb, b, system_b, metric)
    keys = sorted(A.keys() & B.keys())
    d = mean_ci([None if A[k] is None or B[k] is None else A[k] - B[k] for k in keys], [m for m, _ in keys])
    better = -d["mean"] if metric in LOWER_IS_BETTER else d["mean"]
    word = "no measurable difference" if d["ci95"] is None or abs(d["mean"]) <= d["ci95"] else \
        "A is ahead" if better > 0 else "B is ahead"
    return d, word, metric


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a")
    p.add_argument("system_a")
    p.add_argument("b")
    p.add_argument("system_b")
    p.add_argument("--metric", help="a key of the reports' scores (default: the condition's own)")
    args = p.parse_args()
    d, word, metric = compare(args.a, args.system_a, args.b, args.system_b, args.metric)
    print(f"{metric}: A - B = {d['mean']:+.2f} ± {d['ci95']:.2f} (paired, n = {d['n']} in {d['clusters']} "
          f"mixtures): {word}")
