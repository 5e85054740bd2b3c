r"""
The figures of the readings, regenerated from checkpoints. Run from the repository root:

    python docs/research/figures.py all --ckpt runs/demo-m2f/ckpt_last.pt --flow-only runs/demo-mixture/ckpt_last.pt \
        --noise runs/demo-noise/ckpt_last.pt --control runs/demo-mask/ckpt_last.pt --data demo --limit 50
    python docs/research/figures.py di            # delete/insert proportions (paper Figure 2) -> di.png, di.json
    python docs/research/figures.py spectrograms  # Figure 5, over-suppression -> spectrograms.png, oversuppression.png,
                                         #   example.json
    python docs/research/figures.py steps         # quality against Euler steps -> steps.png, steps.json
    python docs/research/figures.py curves        # training curves from each run's log.csv -> curves.png
    python docs/research/figures.py single        # single-speaker input, clean and noisy -> single.json
    python docs/research/figures.py speakers      # does the encoder and the output follow the enrollment?
                                         #   -> speakers_<split>.json

Each subcommand uses the checkpoints it needs among those given and skips the rest. Every number
drawn is also written to a JSON file in --evidence (default docs/research/evidence, the committed evidence);
docs/research/results.py turns those, and the JSON of `python eval.py`, into docs/results.md.
"""

import argparse
import csv
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from data import DataError, LibriMix, load_audio, resolve_root  # noqa: E402
from mask2flow import decompress, magnitude, si_sdr  # noqa: E402
from eval import mean_ci, optional_metrics, resemblyzer_embedding, safe  # noqa: E402
from sample import CHUNK_SECONDS, device_name, extract_long, load_model  # noqa: E402

STEPS = [1, 2, 4, 8, 16]  # Euler steps compared in the steps figure
DI_STEPS = 8  # the paper's Figure 2 runs the flow-only sampler for 8 steps
CHUNK = int(CHUNK_SECONDS * 16000)  # as eval.py: long inputs in windows of 10 s
FLOOR_DB = 80  # spectrograms show the top 80 dB

# -----------------------------------------------------------------------------
# the computations (no plotting): what test_docs.py checks


def spectra(model, mix, target):
    """The compressed spectrograms extract() works on: mixture Y and target S, both divided by
    the mixture's RMS, exactly as Mask2Flow.extract normalises its input."""
    scale = mix.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)
    return model.spec(mix / scale), model.spec(target / scale)


def power(model, Xc):
    """|X|^2 of the plain STFT behind a compressed state: (B, 2, F, T) -> (B, F, T)."""
    return magnitude(decompress(Xc, model.cfg.alpha, model.cfg.beta))[:, 0] ** 2


def delete_insert(P, P_mix):
    """Energy change from the mixture per bin, d = |X|^2 - |Y|^2 on the plain STFT power: deletion
    D = sum max(-d, 0), insertion I = sum max(d, 0), over all bins of an example. (B, F, T) powers ->
    (D, I), each (B,). shares() then pools D and I over examples before dividing."""
    d = P - P_mix
    return (-d).clamp_min(0).sum((1, 2)), d.clamp_min(0).sum((1, 2))


def bins_changed(P, P_mix):
    """A variant that counts bins instead of weighing them by energy: (#bins d < 0, #bins d > 0)."""
    d = P - P_mix
    return (d < 0).sum((1, 2)).double(), (d > 0).sum((1, 2)).double()


def normalised(model, P):
    """The other convention: each signal scaled to unit energy on its own, then its compressed magnitude
    |X|^alpha, what the model works on (reading 2). (B, F, T) powers -> (B, F, T) levels."""
    return (P / P.sum((1, 2), keepdim=True).clamp_min(1e-20)) ** (model.cfg.alpha / 2)


@torch.no_grad()
def di_states(model, mix, target, ref, steps, measure=delete_insert):
    """measure (default (D, I)) of every sampler state x_0 .. x_N, and of the clean target, against the
    mixture, all as powers at the mixture's scale (a measure can normalise them: see cmd_di)."""
    _, xs = model.extract(mix, ref, steps=steps, return_states=True)
    Y, S = spectra(model, mix, target)
    P_mix = power(model, Y)
    return [measure(power(model, x), P_mix) for x in xs], measure(power(model, S), P_mix)


def shares(totals):
    """{name: [D, I]} summed over examples -> {name: {"delete": D/(D+I), "insert": I/(D+I)}}."""
    return {k: {"delete": D / (D + I), "insert": I / (D + I)} if D + I > 0 else {"delete": None, "insert": None}
            for k, (D, I) in totals.items()}  # no change at all: no proportions


@torch.no_grad()
def over_suppression(model, mix, target, ref):
    """Per-bin powers of mixture, mask output, Mask2Flow (1 step) and target for one example, and
    the target energy each output lacks: sum max(|S|^2 - |X|^2, 0) / sum |S|^2. For the mixture
    this is the floor no bounded mask can go below: a mask <= 1 never adds energy to a bin."""
    _, xs = model.extract(mix, ref, steps=1, return_states=True)
    Y, S = spectra(model, mix, target)
    P = {"mixture": power(model, Y), "mask": power(model, xs[0]), "Mask2Flow": power(model, xs[-1]),
         "target": power(model, S)}
    share = lambda d: (d.clamp_min(0).sum() / P["target"].sum()).item()
    missing = {k: share(P["target"] - p) for k, p in P.items() if k != "target"}
    excess = {k: share(p - P["target"]) for k, p in P.items() if k != "target"}
    return P, missing, excess


def sdr(est, target):
    return si_sdr(torch.as_tensor(est)[None], torch.as_tensor(target)[None]).item()


def steps_scores(models, mix, target, ref, steps, metrics, seed=0):
    """{system: {k: {"si_sdr": .., "pesq": ..}}} of one example (numpy waveforms) for each step count.
    A noise start draws x0 from the same seed at every k, so k alone changes."""
    out = {}
    for name, model in models.items():
        out[name] = {}
        for k in steps:
            torch.manual_seed(seed)
            est = extract_long(model, mix, ref, k, CHUNK)
            out[name][k] = {"si_sdr": sdr(est, target), **{m: safe(fn, est, target) for m, fn in metrics.items()}}
    return out

# -----------------------------------------------------------------------------
# data and checkpoints


@functools.lru_cache(maxsize=None)  # `all` and `single` ask for the same checkpoints more than once
def load(path):
    return None if path is None else load_model(path, torch.device("cpu"))[0]


def split_set(args, mix_type):
    return LibriMix(resolve_root(args.data), split=args.split, mix_type=mix_type, segment=None, seed=0)


def n_examples(args):
    """How many examples the figures use: --limit, or fewer if the split is smaller."""
    return min(args.limit, len(split_set(args, "clean")))


def examples(args, mix_type="clean"):
    """(mixture ID, mix, target, enrollment) as (1, L) tensors, the first --limit of the split."""
    ds = split_set(args, mix_type)
    for i in range(min(args.limit, len(ds))):
        item = ds[i]
        yield item["mixture_id"], item["mix"][None], item["target"][None], item["enroll"][None]


def single_speaker(args, noisy):
    """Inputs that hold the target voice alone: s_k, or s_k + the mixture's noise (LibriMix's mix_single),
    with the mixture ID."""
    ds = split_set(args, "clean")
    for i in range(min(args.limit, len(ds))):
        item = ds[i]
        target = item["target"].numpy()
        mix = target.copy()
        if noisy:
            mix_path = ds.mixtures[ds.examples[i][0]][1]  # <split>/mix_clean/<ID>.wav
            noise = load_audio(mix_path.parent.parent / "noise" / mix_path.name)
            mix = mix + noise[:len(mix)]
        yield mix, target, item["enroll"].numpy(), item["mixture_id"]


def write_json(args, name, obj):
    args.evidence.mkdir(parents=True, exist_ok=True)
    obj = {"data": args.data, "split": args.split, "n": n_examples(args), "machine": device_name(torch.device("cpu")),
           "torch": torch.__version__, **obj}
    (args.evidence / name).write_text(json.dumps(obj, indent=2) + "\n")
    print(f"wrote {args.evidence / name}")


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, args, name):
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / name, dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    print(f"wrote {args.out / name}")

# -----------------------------------------------------------------------------
# the subcommands


def mix_types(args):
    """clean, and noisy where the split has noisy mixtures (LibriMix's mix_both)."""
    try:
        split_set(args, "noisy")
        return ("clean", "noisy")
    except DataError:
        return ("clean",)


def cmd_di(args):
    masker, flow = load(args.ckpt), load(args.flow_only)
    if masker is None and flow is None:
        return print("di: needs --ckpt and/or --flow-only; skipped")
    result, by_bins, by_level = {}, {}, {}
    for mix_type in mix_types(args):
        totals = {}  # name -> [D, I, bins deleted, bins inserted, D and I normalised], summed over examples

        def add(name, *values):
            totals[name] = [a + b.sum().item() for a, b in zip(totals.get(name, [0.0] * 6), values)]
        for _, mix, target, ref in examples(args, mix_type):
            for model, steps in ((flow, DI_STEPS), (masker, 1)):
                if model is None:
                    continue
                level = functools.partial(normalised, model)
                every = lambda P, P_mix: (*delete_insert(P, P_mix), *bins_changed(P, P_mix),
                                          *delete_insert(level(P), level(P_mix)))
                states, tgt = di_states(model, mix, target, ref, steps, every)
                names = [f"flow-only step {k}" for k in range(1, steps + 1)] if model is flow else \
                    ["mask", "Mask2Flow 1 step"]
                for name, values in zip(names, states[-len(names):]):
                    add(name, *values)
            add("target", *tgt)
        result[mix_type] = shares({k: v[:2] for k, v in totals.items()})
        by_bins[mix_type] = shares({k: v[2:4] for k, v in totals.items()})
        by_level[f"{mix_type}, normalised"] = shares({k: v[4:] for k, v in totals.items()})
    write_json(args, "di.json", {"ckpt": args.ckpt, "flow_only": args.flow_only, "proportions": result,
                                 "bin_proportions": by_bins, "normalised_proportions": by_level})
    panels = {}  # per mixture type: the mixture's scale, then normalised
    for t in result:
        panels.update({f"{t}, mixture scale": result[t], f"{t}, normalised": by_level[f"{t}, normalised"]})
    plot_di(panels, args, n_examples(args))


def plot_di(result, args, n):
    plt = pyplot()
    width = 2.2 + 0.5 * len(next(iter(result.values())))  # inches a panel, by its number of bars
    fig, axes = plt.subplots(1, len(result), figsize=(width * len(result), 4), sharey=True, squeeze=False)
    for ax, (panel, props) in zip(axes[0], result.items()):
        names = list(props)
        flow = [n.startswith("flow-only") for n in names]
        x = np.arange(len(names)) + 0.8 * (~np.array(flow))  # a gap after the flow-only steps
        labels = [n.split()[-1] if f else n for n, f in zip(names, flow)]
        d = np.array([np.nan if props[n]["delete"] is None else props[n]["delete"] for n in names])
        ax.bar(x, d, color="tab:blue", label="deletion D/(D+I)")
        ax.bar(x, 1 - d, bottom=d, color="tab:orange", label="insertion I/(D+I)")
        for xi, di in zip(x, d):
            ax.text(xi, 1.01, f"{100 * (1 - di):.0f}%", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, labels, fontsize=8)
        for tick, f in zip(ax.get_xticklabels(), flow):
            if not f:
                tick.set(rotation=30, ha="right")
        ax.set_title(f"{panel}\n{args.split}, n = {n}; insertion share above each bar", fontsize=8)
        ax.set_xlabel("flow-only from the mixture, after Euler step k" if any(flow) else "", fontsize=9)
        ax.set_ylim(0, 1.1)
    axes[0][0].set_ylabel("share of the change from the mixture")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=9, bbox_to_anchor=(0.5, 1.07))
    save(fig, args, "di.png")


def cmd_spectrograms(args):
    model = load(args.ckpt)
    if model is None:
        return print("spectrograms: needs --ckpt; skipped")
    mix_type = "noisy" if args.noisy else "clean"
    totals, shown = {}, None
    for i, (mid, mix, target, ref) in enumerate(examples(args, mix_type)):
        P, missing, excess = over_suppression(model, mix, target, ref)
        for k in missing:  # pooled over examples: energies, then the ratio
            t = totals.setdefault(k, [0.0, 0.0, 0.0])
            S = P["target"].sum().item()
            t[0], t[1], t[2] = t[0] + missing[k] * S, t[1] + excess[k] * S, t[2] + S
        if i == args.index:
            est = {"mask": model.extract(mix, ref, steps=0), "Mask2Flow": model.extract(mix, ref, steps=1)}
            scores = {"mixture": sdr(mix[0], target[0]), **{k: sdr(v[0], target[0]) for k, v in est.items()}}
            shown = dict(mixture_id=mid, si_sdr=scores, missing=missing, excess=excess)
            plot_spectrograms(P, scores, mid, model.cfg, args)
    if shown is None:
        return print(f"spectrograms: --index {args.index} is past --limit {args.limit}; nothing drawn")
    pooled = {k: {"missing": m / S, "excess": e / S} for k, (m, e, S) in totals.items()}
    write_json(args, "example.json", {"ckpt": args.ckpt, "mix_type": mix_type, "example": shown, "pooled": pooled})


def plot_spectrograms(P, scores, mid, cfg, args):
    plt = pyplot()
    db = {k: 10 * np.log10(p[0].numpy() + 1e-12) for k, p in P.items()}
    top = max(v.max() for v in db.values())
    F, T = db["mixture"].shape
    extent = [0, T * cfg.hop / cfg.sample_rate, 0, cfg.sample_rate / 2000]
    titles = {"mixture": "mixture", "mask": "masking output (stage 1)", "Mask2Flow": "Mask2Flow, 1 step",
              "target": "clean target"}
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4), sharey=True)
    for ax, k in zip(axes, titles):
        im = ax.imshow(db[k], origin="lower", aspect="auto", extent=extent, vmin=top - FLOOR_DB, vmax=top,
                       cmap="magma")
        ax.set_title(titles[k] + (f"\nSI-SDR {scores[k]:.1f} dB" if k in scores else "\n(reference)"), fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes, label="power (dB, shared scale)", pad=0.01)
    fig.suptitle(f"{mid}: log-magnitude STFT", fontsize=10, y=1.04)
    save(fig, args, "spectrograms.png")

    # where each output lacks (blue) or exceeds (red) the target, on bins where the target is audible
    audible = db["target"] > top - 50
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), sharey=True)
    mask = np.sqrt(P["mask"][0].numpy() / np.maximum(P["mixture"][0].numpy(), 1e-20)) ** cfg.alpha  # M on |c(Y)|
    im0 = axes[0].imshow(mask, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1, cmap="gray")
    axes[0].set_title("the mask M in [0, 1]", fontsize=9)
    fig.colorbar(im0, ax=axes[0], pad=0.01)
    for ax, k in zip(axes[1:], ("mask", "Mask2Flow")):
        ratio = np.where(audible, np.clip(db[k] - db["target"], -20, 20), np.nan)
        im = ax.imshow(ratio, origin="lower", aspect="auto", extent=extent, vmin=-20, vmax=20, cmap="RdBu_r")
        ax.set_facecolor("0.85")  # grey: the target is inaudible there
        ax.set_title(f"{titles[k]} minus target (dB)\nblue: target deleted, red: energy added", fontsize=9)
    fig.colorbar(im, ax=axes[1:], label="dB (grey: target 50 dB below its peak)", pad=0.01)
    for ax in axes:
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    save(fig, args, "oversuppression.png")


def cmd_steps(args):
    models = {name: load(path) for name, path in (("Mask2Flow", args.ckpt), ("flow-only (from the mixture)",
                                                   args.flow_only), ("flow from noise", args.noise)) if path}
    if not models:
        return print("steps: needs at least one of --ckpt, --flow-only, --noise; skipped")
    fns = optional_metrics(16000)
    metrics = {"pesq": fns["pesq"]} if fns["pesq"] else {}
    refs = {"mixture": None, **({"mask-only": models["Mask2Flow"]} if "Mask2Flow" in models else {}),
            **({"mask-only, fair control": load(args.control)} if args.control else {})}
    per = {name: {k: [] for k in STEPS} for name in models}
    flat, mids = {name: [] for name in refs}, []
    for i, (mid, mix, target, ref) in enumerate(examples(args)):
        mids.append(mid)
        mix, target, ref = mix[0].numpy(), target[0].numpy(), ref[0].numpy()
        for name, by_k in steps_scores(models, mix, target, ref, STEPS, metrics, seed=i).items():
            for k, v in by_k.items():
                per[name][k].append(v)
        for name, model in refs.items():
            est = mix if model is None else extract_long(model, mix, ref, 0, CHUNK)
            flat[name].append({"si_sdr": sdr(est, target), **{m: safe(fn, est, target) for m, fn in metrics.items()}})
    summary = lambda rows: {m: mean_ci([r[m] for r in rows], mids) for m in ["si_sdr", *metrics]}
    result = {"steps": STEPS, "systems": {n: {str(k): summary(v) for k, v in by_k.items()} for n, by_k in per.items()},
              "references": {n: summary(v) for n, v in flat.items()}}
    write_json(args, "steps.json", {"ckpt": args.ckpt, "flow_only": args.flow_only, "noise": args.noise,
                                    "control": args.control, **result})
    plot_steps(result, args, n_examples(args))


def plot_steps(result, args, n):
    plt = pyplot()
    metrics = [m for m in ("si_sdr", "pesq") if any(m in v for v in result["references"].values())]
    names = {"si_sdr": "SI-SDR (dB)", "pesq": "PESQ-WB"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for name, by_k in result["systems"].items():
            ys = [(by_k[str(k)][m] or {}).get("mean", np.nan) for k in result["steps"]]
            ax.plot(result["steps"], ys, marker="o", label=name)
        for (name, ref), style in zip(result["references"].items(), (":", "--", "-.")):
            if ref[m] and ref[m]["mean"] is not None:
                ax.axhline(ref[m]["mean"], color="gray", linestyle=style, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(result["steps"], [str(k) for k in result["steps"]])
        ax.set_xlabel("Euler steps N")
        ax.set_ylabel(names[m])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"quality against steps ({args.split}, clean, n = {n}, mean)", fontsize=10)
    save(fig, args, "steps.png")


def read_log(path):
    """log.csv -> {stage: {column: np.array}}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for stage in sorted({int(r["stage"]) for r in rows}):
        sel = [r for r in rows if int(r["stage"]) == stage]
        out[stage] = {k: np.array([float(r[k]) for r in sel]) for k in sel[0] if k != "stage"}
    return out


def run_info(run):
    """(where the run's flow starts, the step of the stage-1 checkpoint its stage 2 began from). A folder
    of docs/research/evidence has no checkpoint: its eval_*.json gives the start, and the offset is 0."""
    run, info = Path(run), {}
    for name in ("ckpt_stage1.pt", "ckpt_last.pt"):
        if (run / name).is_file():
            info[name] = torch.load(run / name, map_location="cpu", weights_only=False)
    evals = sorted(run.glob("eval_*.json"))
    start = info["ckpt_last.pt"]["config"]["start"] if "ckpt_last.pt" in info else \
        json.loads(evals[0].read_text())["config"]["start"] if evals else "masked"
    stage1 = info.get("ckpt_stage1.pt", {})  # a finished Mask2Flow checkpoint given as --stage1 has no stage-1 step
    return start, stage1["step"] if stage1.get("stage") == 1 else 0


def cmd_curves(args):
    runs = args.runs or [Path(p).parent for p in (args.ckpt, args.flow_only, args.noise, args.control) if p]
    logs = {}
    for r in map(str, runs):  # RUN, or RUN:STAGES to keep only some stages' rows (RUN:1)
        run, _, only = r.partition(":")
        if (Path(run) / "log.csv").is_file():
            log, (start, stage1_step) = read_log(Path(run) / "log.csv"), run_info(run)
            keep = {int(c) for c in only} if only else {1, 2} if start == "masked" else {2}
            logs[r] = {s: c for s, c in log.items() if s in keep}, start, stage1_step
    if not logs:
        return print("curves: no log.csv in the runs given; skipped")
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, (log, start, stage1_step)), color in zip(logs.items(), colors):
        name = f"{Path(name.partition(':')[0]).name} (x0: {start})"
        for stage, c in log.items():
            offset = 0 if stage == 1 else stage1_step  # stage 2 starts from stage 1's best checkpoint
            axes[stage - 1].plot(c["step"], c["train_loss"], color=color, label=name)
            dev = c["dev_mask"] if stage == 1 else c["dev_flow1"]
            axes[2].plot(c["step"] + offset, dev, color=color, linestyle="-" if stage == 1 else "--", marker=".",
                         label=f"{name}, stage {stage}")
    first = next(iter(logs.values()))[0]
    axes[2].axhline(next(iter(first.values()))["dev_mixture"][0], color="black", linestyle=":",
                    label="the mixture itself")
    axes[0].set_title("stage 1 loss: ||M Y - S||^2", fontsize=9)
    axes[1].set_title("stage 2 loss: ||v(x_t, t) - (x1 - x0)||^2", fontsize=9)
    axes[2].set_title("dev SI-SDR: mask-only in stage 1 (solid), 1 step in stage 2 (dashed)", fontsize=9)
    for ax in axes[:2]:
        ax.set_yscale("log")
        ax.set_ylabel("training loss (mean between validations)", fontsize=9)
        ax.set_xlabel("step of the stage")
        ax.legend(fontsize=7)
    axes[2].set_ylabel("dev SI-SDR (dB)")
    axes[2].set_xlabel("step (stage 2 continues after its stage-1 checkpoint)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    save(fig, args, "curves.png")


def cmd_single(args):
    systems = {name: (load(path), k) for name, path, k in (("mask-only", args.ckpt, 0), ("Mask2Flow 1 step",
               args.ckpt, 1), ("mask-only, fair control", args.control, 0)) if path}
    if not systems:
        return print("single: needs --ckpt (and optionally --control); skipped")
    fns = {k: fn for k, fn in optional_metrics(16000).items() if fn}
    result = {}
    for noisy in (False, True):
        scores, mids = {name: [] for name in ["input", *systems]}, []
        for mix, target, ref, mid in single_speaker(args, noisy):
            mids.append(mid)
            for name in scores:
                est = mix if name == "input" else extract_long(systems[name][0], mix, ref, systems[name][1], CHUNK)
                scores[name].append({"si_sdr": sdr(est, target), **{m: safe(fn, est, target) for m, fn in fns.items()}})
        result["noisy" if noisy else "clean"] = {name: {m: mean_ci([r[m] for r in rows], mids) for m in rows[0]}
                                                 for name, rows in scores.items()}
    write_json(args, "single.json", {"ckpt": args.ckpt, "control": args.control, "inputs": {
        "clean": "the target alone (mix = s_k)", "noisy": "the target plus the mixture's noise (mix = s_k + n)"},
        "systems": result})
    for kind, rows in result.items():
        print(f"\nsingle speaker, {kind}: " + "; ".join(f"{n} SI-SDR {r['si_sdr']['mean']:.2f} dB"
                                                       for n, r in rows.items()))


def cmd_speakers(args):
    """Where unseen voices break. For each example (target k of a two-voice mixture, with its fixed
    enrollment): does an encoder place the enrollment nearer the target's clean source than the other
    voice's (ours, and resemblyzer's pretrained one when installed), and how much does the output
    depend on the enrollment: SI-SDRi against the target with its own enrollment and with the other
    voice's."""
    model = load(args.ckpt)
    if model is None:
        return print("speakers: needs --ckpt; skipped")
    ds, theirs = split_set(args, "clean"), resemblyzer_embedding(16000)
    ours = lambda wav: model.embed_speaker(torch.as_tensor(wav)[None])[0].numpy()
    encoders = {"ours": ours, **({"resemblyzer": theirs} if theirs else {})}
    index = {ex: i for i, ex in enumerate(ds.examples)}
    rows, mids = [], []
    for i in range(n_examples(args)):
        m, k = ds.examples[i]
        if (m, 3 - k) not in index:
            continue  # the other voice has no enrollment: no swap to make
        item, other = ds[i], ds[index[(m, 3 - k)]]
        mix, target, ref = (item[key].numpy() for key in ("mix", "target", "enroll"))
        row = {}
        for name, embed in encoders.items():
            e, same, diff = embed(ref), embed(target), embed(other["target"].numpy())
            row[f"matched, {name}"] = float(e @ same > e @ diff)  # 1: nearer the target than the other voice
            row[f"cosine to the target, {name}"], row[f"cosine to the other voice, {name}"] = float(e @ same), float(e @ diff)
        base = sdr(mix, target)
        for steps, label in ((0, "mask-only"), (1, "Mask2Flow 1 step")):
            for enroll, whose in ((ref, "own"), (other["enroll"].numpy(), "other voice's")):
                row[f"{label}, {whose} enrollment"] = sdr(extract_long(model, mix, enroll, steps, CHUNK), target) - base
            row[f"{label}, own minus other voice's enrollment"] = \
                row[f"{label}, own enrollment"] - row[f"{label}, other voice's enrollment"]
        rows.append(row)
        mids.append(item["mixture_id"])
    if not rows:
        return print(f"speakers: no example of {args.split} has both voices enrolled; nothing measured")
    summary = {key: mean_ci([r[key] for r in rows], mids) for key in rows[0]}
    write_json(args, f"speakers_{args.split}.json", {"ckpt": args.ckpt, "n_pairs": len(rows), "unit": {
        "matched": "share of examples", "cosine": "cosine", "enrollment": "SI-SDRi (dB) against the target"},
        "scores": summary})
    for key, v in summary.items():
        print(f"  {key}: {v['mean']:.3f} ± {v['ci95'] or 0:.3f}")


COMMANDS = {"di": cmd_di, "spectrograms": cmd_spectrograms, "steps": cmd_steps, "curves": cmd_curves,
            "single": cmd_single, "speakers": cmd_speakers}


def main(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ckpt", help="Mask2Flow checkpoint (train.py, default start)")
    common.add_argument("--flow-only", help="flow-from-the-mixture checkpoint (train.py --start mixture)")
    common.add_argument("--noise", help="flow-from-noise checkpoint (train.py --start noise)")
    common.add_argument("--control", help="fair control: a mask-only checkpoint, Mask2Flow's stage 1 trained on "
                        "(train.py --stage 1 --stage1)")
    common.add_argument("--runs", nargs="+", metavar="RUN[:STAGES]",
                        help="curves: run folders with log.csv (default: the checkpoints'); RUN:1 keeps stage 1 only")
    common.add_argument("--data", default="demo", help="demo, LibriMix or a LibriMix-layout folder")
    common.add_argument("--split", default="test", help="test = unseen speakers")
    common.add_argument("--limit", type=int, default=50, help="first N examples of the split")
    common.add_argument("--noisy", action="store_true", help="spectrograms: noisy mixtures (mix_both)")
    common.add_argument("--index", type=int, default=0, help="spectrograms: which example to draw (< --limit)")
    common.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNG files")
    common.add_argument("--evidence", type=Path, default=Path("docs/research/evidence"),
                        help="folder for the JSON files, which results.py reads (default docs/research/evidence)")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in [*COMMANDS, "all"]:
        sub.add_parser(name, parents=[common])
    args = p.parse_args(argv)
    for name in COMMANDS if args.command == "all" else [args.command]:
        t0 = time.time()
        with torch.no_grad():
            COMMANDS[name](args)
        print(f"{name}: {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
