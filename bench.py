"""
Real-time factors of extraction: each preset (untrained weights take the time trained ones do) and,
with --ckpt, a trained model, at 0 (mask-only), 1 and more Euler steps, on the CPU and on CUDA.
With --train, the cost of a stage-1 training step instead; with --curve, quality per CPU-hour.

    python bench.py                                    # every preset, cpu (and cuda when present)
    python bench.py --configs small paper --compile    # beside each, the same model under torch.compile
    python bench.py --ckpt runs/RUN/ckpt_best.pt --device cpu --repeats 9 -o runs/bench.json
    OMP_NUM_THREADS=1 python bench.py --train --configs small --set spk_mels=64 --ckpt pretrained/demo.pt
    python bench.py --curve runs/A runs/B --at 60 180  # dev SI-SDRi of each run at 60 and 180 CPU-minutes

Every model extracts the same 4 s of noise with a 3 s reference, batch 1; the measurements of one
device are taken in turn, round robin, after a warm-up, and the median is reported. Prints a table
and writes it as JSON (default <repo>/runs/bench.json).
"""

import argparse
import copy
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import (RUNS, InputError, device_name, get_device, load_model, precision, read_csv, row, run,
                    steps_label)
from mask2flow import CONFIGS, Config, Mask2Flow, count_parameters

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


def time_training(models, args):
    """Median seconds of one stage-1 training step (forward, backward, AdamW) of each model, on a batch of
    8 mixtures of 3 s with 4 s enrollments (noise: the time does not depend on the content), in turn."""
    g = torch.Generator().manual_seed(0)
    steps = {}
    for label, model, _, _ in models:
        rate = model.cfg.sample_rate
        mix, target, ref = (0.1 * torch.randn(8, int(s * rate), generator=g) for s in (3.0, 3.0, 4.0))
        model.train()
        params = [p for part in (model.speaker, model.masker) for p in part.parameters()]
        optimizer = torch.optim.AdamW(params, lr=1e-4)

        def step(model=model, optimizer=optimizer, mix=mix, target=target, ref=ref):
            loss = model(mix, target, ref, stage=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        steps[label] = step
    for step in steps.values():
        step()  # warm-up
    times = {label: [] for label in steps}
    for _ in range(args.repeats):  # round robin, as time_device
        for label, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - t0)
    return {label: float(np.median(t)) for label, t in times.items()}


def bench_training(args):
    """--train: the cost of a stage-1 training step of each preset (and --ckpt's recipe), side by side."""
    defaults = dataclasses.asdict(Config())  # each field's type is its default's
    changes = {}
    for item in args.set or []:  # FIELD=VALUE, given to every preset
        name, _, value = item.partition("=")
        kind = type(defaults.get(name))
        try:
            if name not in defaults or not value:
                raise ValueError
            changes[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError:
            raise InputError(f"--set {item}: expected FIELD=VALUE, a Config field ({', '.join(defaults)})") from None
    label = lambda name: name + "".join(f" {k}={v}" for k, v in changes.items())
    models = [(label(n), Mask2Flow(dataclasses.replace(CONFIGS[n], **changes)), False, None) for n in args.configs]
    if args.ckpt:  # the recipe a trained model was trained with, from its saved config
        models.append((Path(args.ckpt).resolve().parent.name + "/" + Path(args.ckpt).name,
                       load_model(args.ckpt, torch.device("cpu"))[0], False, str(args.ckpt)))  # from its weights
    seconds = time_training(models, args)
    base = models[-1][0] if args.ckpt else models[0][0]  # the ratios are to it
    print(f"\nstage-1 training step (batch 8 x 3 s, enrollment 4 s, fp32) on {device_name(torch.device('cpu'))}, "
          f"median of {args.repeats} taken in turn after a warm-up\n")
    print(row(["recipe", "stage-1 params (speaker)", "ms a step", f"/ {base}"]))
    print(row(["---"] * 4))
    rows = []
    for label, model, _, ckpt in models:
        n1, ns = count_parameters(model.masker) + count_parameters(model.speaker), count_parameters(model.speaker)
        print(row([label, f"{n1 / 1e6:.2f}M ({ns / 1e3:.0f}k)", f"{1000 * seconds[label]:.0f}",
                   f"{seconds[label] / seconds[base]:.2f}x"]))
        rows.append({"recipe": label, "checkpoint": ckpt, "stage1_parameters": n1, "speaker_parameters": ns,
                     "seconds": seconds[label]})
    out = Path(args.output) if args.output else RUNS / "bench_train.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"what": "stage-1 training step", "threads": torch.get_num_threads(),
                               "repeats": args.repeats, "platform": platform.platform(),
                               "cpu": device_name(torch.device("cpu")), "torch": torch.__version__, "rows": rows},
                              indent=2) + "\n")
    print(f"\nwrote {out}")


def read_curve(path):
    """A run's stage-1 dev SI-SDR improvement (dB) against its training CPU-minutes, from its log.csv."""
    rows = [r for r in read_csv(path, ("stage", "dev_mask")) if r["stage"] == "1" and r.get("cpu_minutes")]
    if not rows:
        raise InputError(f"{path}: no stage-1 rows with cpu_minutes (a log of train.py's stage 1)")
    return ([0.0] + [float(r["cpu_minutes"]) for r in rows],
            [0.0] + [float(r["dev_mask"]) - float(r["dev_mixture"]) for r in rows])


def bench_curves(args):
    """--curve: quality per CPU-hour, each run's dev SI-SDRi read at the given CPU-minutes (interpolated)."""
    curves = {}
    for run_dir in args.curve:
        path = Path(run_dir) / "log.csv" if Path(run_dir).is_dir() else Path(run_dir)
        if not path.is_file():
            raise InputError(f"{path} does not exist")
        curves[str(run_dir)] = read_curve(path)
    print(row(["run"] + [f"dev SI-SDRi at {m:g} CPU-min" for m in args.at]))
    print(row(["---"] * (1 + len(args.at))))
    for name, (minutes, gain) in curves.items():
        print(row([name] + [f"{np.interp(m, minutes, gain):.2f} dB" if m <= minutes[-1] else "not reached"
                            for m in args.at]))
    if args.output:
        Path(args.output).write_text(json.dumps({n: {"cpu_minutes": m, "dev_si_sdri": g}
                                                 for n, (m, g) in curves.items()}, indent=2) + "\n")
        print(f"\nwrote {args.output}")


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
    p.add_argument("--train", action="store_true",
                   help="instead: time a stage-1 training step of each preset (and --ckpt's recipe), side by side")
    p.add_argument("--set", nargs="+", metavar="FIELD=VALUE", help="with --train: these Config fields of each preset")
    p.add_argument("--curve", nargs="+", metavar="RUN",
                   help="instead: quality per CPU-hour, the dev SI-SDRi of these runs' log.csv at --at CPU-minutes")
    p.add_argument("--at", nargs="+", type=float, default=[60, 180], metavar="MIN",
                   help="CPU-minutes at which --curve reads each run (default 60 180)")
    p.add_argument("-o", "--output", metavar="PATH", help="the JSON table (default <repo>/runs/bench.json)")
    args = p.parse_args(argv)
    if min(args.steps) < 1 or args.repeats < 1:
        p.error("--steps and --repeats must be at least 1")
    return run(bench_curves if args.curve else bench_training if args.train else bench, args)


if __name__ == "__main__":
    sys.exit(main())
