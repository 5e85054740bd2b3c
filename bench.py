"""
Real-time factors of extraction: each preset (untrained weights take the time trained ones do) and,
with --ckpt, a trained model, at 0 (mask-only), 1 and more Euler steps, on the CPU and on CUDA.

    python bench.py                                    # every preset, cpu (and cuda when present)
    python bench.py --configs small paper --compile    # beside each, the same model under torch.compile
    python bench.py --ckpt runs/RUN/ckpt_best.pt --device cpu --repeats 9 -o runs/bench.json

Every model extracts the same 4 s of noise with a 3 s reference, batch 1; the measurements of one
device are taken in turn, round robin, after a warm-up, and the median is reported. Prints a table
and writes it as JSON (default <repo>/runs/bench.json).
"""

import argparse
import copy
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import RUNS, InputError, device_name, get_device, load_model, precision, row, run, steps_label
from mask2flow import CONFIGS, Mask2Flow, count_parameters

BENCH_SECONDS = 4.0  # length of the benchmark's input
COMPILED_PARTS = ("spec", "wav", "embed_speaker", "masker", "dit")


def bench_mode(bf16, compiled):
    """How a benchmark ran, as its report and results.py name it."""
    return ("bf16 autocast" if bf16 else "fp32") + (", torch.compile" if compiled else "")


def compiled(model):
    """A copy of model whose parts run under torch.compile; on cuda as CUDA graphs, since a batch-1
    extraction there waits on kernel launches."""
    model = copy.deepcopy(model)
    for part in COMPILED_PARTS:
        setattr(model, part, torch.compile(getattr(model, part), mode="reduce-overhead"))
    return model


def bench_input(rate):
    """The benchmark's input at this sample rate, the same for every model: (1, L) noise of BENCH_SECONDS
    as the mixture and 3 s as the reference."""
    g = torch.Generator().manual_seed(0)
    mix = 0.1 * torch.randn(1, int(BENCH_SECONDS * rate), generator=g)
    return mix, 0.1 * torch.randn(1, int(3.0 * rate), generator=g)


def time_device(models, device, steps, args):
    """One row per model on this device: its real-time factor at each step count, and peak GPU memory."""
    inputs = {rate: bench_input(rate) for rate in {model.cfg.sample_rate for _, model, _, _ in models}}

    def extraction(model, k, is_compiled):
        mix, ref = inputs[model.cfg.sample_rate]

        def run():
            if is_compiled:  # each extraction is a new step of the CUDA graphs, not a replay
                torch.compiler.cudagraph_mark_step_begin()
            with precision(device, args.bf16):
                model.extract(mix.to(device), ref.to(device), steps=k)
        return run

    table, runs = [], {}
    for label, model, is_compiled, ckpt in models:
        model.to(device)
        table.append({"config": label, "checkpoint": ckpt, "parameters": count_parameters(model),
                      "masker_parameters": count_parameters(model.masker), "device": str(device),
                      "device_name": device_name(device), "bf16": args.bf16, "compile": is_compiled,
                      "rtf": {}, "peak_mib": None})
        runs.update({(len(table) - 1, k): extraction(model, k, is_compiled) for k in [0] + steps})
    for run in runs.values():
        run()  # warm-up
    times = {key: [] for key in runs}
    for _ in range(args.repeats):  # round robin: a busy moment of the machine slows every measurement alike
        for (i, k), run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
                table[i]["peak_mib"] = max(table[i]["peak_mib"] or 0, torch.cuda.max_memory_allocated() / 2**20)
            times[(i, k)].append(time.perf_counter() - t0)
    for (i, k), t in times.items():
        table[i]["rtf"][k] = float(np.median(t)) / BENCH_SECONDS  # the median shrugs off a busy moment
        print(f"{table[i]['config']} on {device}, {steps_label(k)}: RTF {table[i]['rtf'][k]:.4f}", file=sys.stderr)
    return table


def bench(args):
    devices = ([torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
               if args.device == "auto" else [get_device(args.device)])
    if args.compile and torch.device("cpu") in devices and not shutil.which(os.environ.get("CXX", "g++")):
        raise InputError("--compile on the cpu needs a C++ compiler (Debian: sudo apt-get install g++), "
                         "or time --device cuda alone")
    # (label, model, compiled, checkpoint): the presets untrained, as fast as trained
    models = [(name, Mask2Flow(CONFIGS[name]).eval(), False, None) for name in args.configs]
    if args.ckpt:  # a trained model of any layout, named after its run folder
        model = load_model(args.ckpt, torch.device("cpu"))[0]
        models.append((Path(args.ckpt).resolve().parent.name, model, False, str(args.ckpt)))
    if args.compile:  # each timed beside its eager self, in the same run
        models += [(f"{label}, torch.compile", compiled(model), True, ckpt) for label, model, _, ckpt in list(models)]
    steps = args.steps
    rows = [r for device in devices for r in time_device(models, device, steps, args)]

    ratios = [(steps[0], 0)] + [(k, steps[0]) for k in steps[1:]]  # 1 step / mask-only, N steps / 1 step
    print(f"\nreal-time factor (compute time / audio time, lower is faster) on {BENCH_SECONDS:.0f} s of audio, "
          f"{bench_mode(args.bf16, False)}{', eager and under torch.compile' * args.compile}, "
          f"median of {args.repeats} runs taken in turn after a warm-up\n")
    # of one step's time: stage 1 (STFT, speaker, masker, iSTFT) and the one DiT evaluation it adds
    print(row(["config", "params (masker)", "device", *map(steps_label, [0] + steps),
               *[f"{steps_label(a)} / {steps_label(b)}" for a, b in ratios], "stage-1 share", "DiT-step share",
               "peak GPU MiB"]))
    print(row(["---"] * (4 + 2 * len(steps) + 3)))
    for r in rows:
        rtf, one = r["rtf"], r["rtf"][steps[0]]
        print(row([r["config"], f"{r['parameters'] / 1e6:.2f}M ({r['masker_parameters'] / 1e6:.2f}M)",
                   f"{r['device']}: {r['device_name']}", *[f"{rtf[k]:.4f}" for k in [0] + steps],
                   *[f"{rtf[a] / rtf[b]:.2f}x" for a, b in ratios],
                   *([f"{rtf[0] / one:.0%}", f"{(one - rtf[0]) / one:.0%}"] if steps[0] == 1 else ["–", "–"]),
                   "–" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"]))
    out = Path(args.output) if args.output else RUNS / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"audio_seconds": BENCH_SECONDS, "repeats": args.repeats, "steps": steps,
                               "platform": platform.platform(), "torch": torch.__version__, "rows": rows},
                              indent=2) + "\n")
    print(f"\nwrote {out}")

# -----------------------------------------------------------------------------


def main(argv=None):
    """Run the command line; returns the exit status (2 with one `error:` line for bad input)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), metavar="NAME", default=list(CONFIGS),
                   help=f"presets to time, of {list(CONFIGS)} (default all)")
    p.add_argument("--ckpt", metavar="PATH", help="also time this trained model beside the presets")
    p.add_argument("--steps", type=int, nargs="+", metavar="N", default=[1, 8],
                   help="Euler step counts timed besides mask-only (default 1 8: the paper's Figure 2 runs 8)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto = cpu, and cuda when present")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (for GPUs)")
    p.add_argument("--compile", action="store_true",
                   help="also time each model with its STFT, iSTFT, speaker encoder, masker and DiT under "
                        "torch.compile (on cuda as CUDA graphs), side by side; compiling takes minutes")
    p.add_argument("--repeats", type=int, metavar="N", default=5,
                   help="timed runs per measurement, after one warm-up; the median is reported (default 5)")
    p.add_argument("-o", "--output", metavar="PATH", help="the JSON table (default <repo>/runs/bench.json)")
    args = p.parse_args(argv)
    if min(args.steps) < 1 or args.repeats < 1:
        p.error("--steps and --repeats must be at least 1")
    return run(bench, args)


if __name__ == "__main__":
    sys.exit(main())
