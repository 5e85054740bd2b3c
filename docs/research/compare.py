"""
A - B, example by example, between two systems of eval.py's JSON reports (the same split and
condition), with the 95% interval clustered by mixture (eval.py:mean_ci); worded as a difference
only when the interval excludes zero.

    python docs/research/compare.py A.json "mask-only" B.json "mask-only" [--metric si_sdri]
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from eval import mean_ci  # noqa: E402


def scores(path, system, metric):
    r = json.loads(Path(path).read_text())
    ex = r["examples"]
    return {(m, k): v for m, k, v in zip(ex["mixture_id"], ex["target_index"], r["systems"][system]["scores"][metric])}


def compare(a, system_a, b, system_b, metric="si_sdri"):
    A, B = scores(a, system_a, metric), scores(b, system_b, metric)
    keys = sorted(A.keys() & B.keys())
    d = mean_ci([None if A[k] is None or B[k] is None else A[k] - B[k] for k in keys], [m for m, _ in keys])
    word = "no measurable difference" if d["ci95"] is None or abs(d["mean"]) <= d["ci95"] else \
        "A is ahead" if d["mean"] > 0 else "B is ahead"
    return d, word


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a")
    p.add_argument("system_a")
    p.add_argument("b")
    p.add_argument("system_b")
    p.add_argument("--metric", default="si_sdri")
    args = p.parse_args()
    d, word = compare(args.a, args.system_a, args.b, args.system_b, args.metric)
    print(f"{args.metric}: A - B = {d['mean']:+.2f} ± {d['ci95']:.2f} (paired, n = {d['n']} in {d['clusters']} "
          f"mixtures): {word}")
