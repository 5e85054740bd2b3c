r"""
Extraction time of this checkout's presets beside the same presets as an earlier commit built them:

    python docs/research/then_bench.py --rev 9ab47fc -o docs/research/evidence/then.json

How much faster is each preset than the code of that commit? The commit's mask2flow.py (read with
`git show`, so this needs the repository's history) is imported under another name, and both models
extract bench.py's input (4 s of noise, a 3 s reference) in turn, in one process, so a busy moment
of the machine slows both alike. Untrained weights take the time trained ones do. Writes one JSON.
"""

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import mask2flow  # noqa: E402
from bench import BENCH_SECONDS, bench_input  # noqa: E402
from sample import device_name, steps_label  # noqa: E402


def model_code_at(rev):
    """The module mask2flow.py as commit rev had it, imported as mask2flow_then."""
    try:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:mask2flow.py"], check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"error: cannot read mask2flow.py at {rev!r} from git: {str(getattr(e, 'stderr', e)).strip()}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mask2flow_then.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("mask2flow_then", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--configs", nargs="+", default=["small", "paper"], help="presets that both commits define")
    p.add_argument("--steps", type=int, nargs="+", default=[1], help="Euler steps to time besides mask-only")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("-o", "--out", type=Path, default=ROOT / "runs" / "then.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    then = model_code_at(args.rev)
    git = lambda *a: subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()
    commit, now = git("log", "-1", "--format=%h %s", args.rev), git("describe", "--always", "--dirty")
    missing = [n for n in args.configs if n not in then.CONFIGS or n not in mask2flow.CONFIGS]
    if missing:
        raise SystemExit(f"error: {', '.join(missing)} not a preset at both {args.rev} and now")

    mix, ref = bench_input(16000)
    models = {(name, when): module.Mask2Flow(module.CONFIGS[name]).eval()
              for name in args.configs for when, module in (("then", then), ("now", mask2flow))}
    assert all(m.cfg.sample_rate == 16000 for m in models.values()), "presets at 16 kHz only"
    ks = [0] + args.steps
    times = {(key, k): [] for key in models for k in ks}
    with torch.no_grad():
        for (key, k) in times:  # warm-up
            models[key].extract(mix, ref, steps=k)
        for i in range(args.repeats):  # round robin
            for (key, k), t in times.items():
                t0 = time.perf_counter()
                models[key].extract(mix, ref, steps=k)
                t.append(time.perf_counter() - t0)
            print(f"round {i + 1}/{args.repeats}", file=sys.stderr)

    rows = []
    for name in args.configs:
        rtf = {when: {k: float(np.median(times[((name, when), k)])) / BENCH_SECONDS for k in ks} for when in ("then", "now")}
        rows.append({"config": name, "parameters": {w: mask2flow.count_parameters(models[(name, w)]) for w in rtf},
                     "rtf": rtf, "seconds": {w: {k: times[((name, w), k)] for k in ks} for w in rtf}})
        for k in ks:
            print(f"{name}, {steps_label(k)}: RTF {rtf['then'][k]:.4f} at "
                  f"{args.rev}, {rtf['now'][k]:.4f} now: {rtf['then'][k] / rtf['now'][k]:.2f}x as fast")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rev": args.rev, "commit": commit, "now": now, "audio_seconds": BENCH_SECONDS,
                                    "repeats": args.repeats, "threads": args.threads, "steps": ks,
                                    "machine": device_name(torch.device("cpu")), "platform": platform.platform(),
                                    "torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
