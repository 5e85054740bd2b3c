"""
The figures of the readings, drawn from the shipped model (or --ckpt) with the analyses of analysis.py.
Run from the repository root, with matplotlib installed (requirements-docs.txt):

    python docs/figures.py spectrograms   # one test mixture: spectrograms.png (paper Figure 5), oversuppression.png
    python docs/figures.py di             # di.png from analysis.py di's JSON (docs/research/evidence/real310/di.json)

Each prints the checkpoint its figure comes from and writes its PNG into --out (default docs/).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from analysis import PRETRAINED, checkpoint_name, examples, over_suppression  # noqa: E402
from common import DataError, load_model  # noqa: E402
from mask2flow import si_sdr  # noqa: E402

FLOOR_DB = 80  # spectrograms show the top 80 dB
EVIDENCE = ROOT / "docs" / "research" / "evidence" / "real310"


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, args, name):
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / name, dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    print(f"wrote {args.out / name}")


def cmd_spectrograms(args):
    """Example --index of the test split: its powers in dB on one scale, then the mask and where each output
    lacks (blue) or exceeds (red) the target."""
    model = load_model(args.ckpt, torch.device("cpu"))[0].eval()
    name = checkpoint_name(args.ckpt)
    for i, (mid, mix, target, ref) in enumerate(examples(args)):
        if i == args.index:
            break
    else:
        raise DataError(f"--index {args.index}: the split has fewer examples")
    P, missing, excess, energy = over_suppression(model, mix, target, ref)
    est = {"mask": model.extract(mix, ref, steps=0), "one step": model.extract(mix, ref, steps=1)}
    score = {"mixture": si_sdr(mix, target).item(), **{k: si_sdr(v, target).item() for k, v in est.items()}}
    plt, cfg = pyplot(), model.cfg
    db = {k: 10 * np.log10(p[0].numpy() + 1e-12) for k, p in P.items()}
    top = max(v.max() for v in db.values())
    extent = [0, db["mixture"].shape[1] * cfg.hop / cfg.sample_rate, 0, cfg.sample_rate / 2000]
    titles = {"mixture": "mixture", "mask": "mask output x0 (stage 1)", "one step": "one Euler step x1 (stage 2)",
              "target": "clean target"}
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4), sharey=True)
    for ax, k in zip(axes, titles):
        im = ax.imshow(db[k], origin="lower", aspect="auto", extent=extent, vmin=top - FLOOR_DB, vmax=top, cmap="magma")
        note = "(reference)" if k == "target" else f"SI-SDR {score[k]:.1f} dB\ntarget energy missing " \
            f"{100 * missing[k] / energy:.0f}%"
        ax.set_title(f"{titles[k]}\n{note}", fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes, label="power (dB, shared scale)", pad=0.01)
    fig.suptitle(f"{mid}: log-power STFT; {name}", fontsize=10, y=1.1)
    save(fig, args, "spectrograms.png")

    audible = db["target"] > top - 50  # where each output lacks (blue) or exceeds (red) the target
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), sharey=True)
    mask = np.sqrt(P["mask"][0].numpy() / np.maximum(P["mixture"][0].numpy(), 1e-20)) ** cfg.alpha  # M on |c(Y)|
    im0 = axes[0].imshow(mask, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1, cmap="gray")
    axes[0].set_title("the mask M in [0, 1]", fontsize=9)
    fig.colorbar(im0, ax=axes[0], pad=0.01)
    for ax, k in zip(axes[1:], ("mask", "one step")):
        ratio = np.where(audible, np.clip(db[k] - db["target"], -20, 20), np.nan)
        im = ax.imshow(ratio, origin="lower", aspect="auto", extent=extent, vmin=-20, vmax=20, cmap="RdBu_r")
        ax.set_facecolor("0.85")  # grey: the target is inaudible there
        ax.set_title(f"{titles[k]} minus target (dB)\nblue: target deleted, red: energy left", fontsize=9)
    fig.colorbar(im, ax=axes[1:], label="dB (grey: target 50 dB below its peak)", pad=0.01)
    for ax in axes:
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.suptitle(f"{mid}; {name}", fontsize=10, y=1.04)
    save(fig, args, "oversuppression.png")
    print(f"drawn from {name}")


def cmd_di(args):
    """Insertion and deletion shares of analysis.py di's JSON, one panel per convention."""
    report = json.loads(args.evidence.read_text())
    panels = {c: report["insertion_shares"][c] for c in ("mixture scale", "normalised")}
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), sharey=True)
    for ax, (panel, props) in zip(axes, panels.items()):
        names = list(props)
        ins = np.array([props[n]["insert"] for n in names])
        ax.bar(names, 1 - ins, color="tab:blue", label="deletion D/(D+I)")
        ax.bar(names, ins, bottom=1 - ins, color="tab:orange", label="insertion I/(D+I)")
        for x, v in enumerate(ins):
            ax.text(x, 1.01, f"{100 * v:.1f}%", ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{panel}\n{report['split']}, n = {report['n']}; insertion share above each bar", fontsize=9)
        ax.set_ylim(0, 1.12)
    axes[0].set_ylabel("share of the change from the mixture")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=9, bbox_to_anchor=(0.5, 1.1))
    fig.suptitle(report["ckpt"], fontsize=8, y=-0.02)
    save(fig, args, "di.png")
    print(f"drawn from {report['ckpt']} ({args.evidence.relative_to(ROOT) if args.evidence.is_relative_to(ROOT) else args.evidence})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["spectrograms", "di"])
    p.add_argument("--ckpt", type=Path, default=PRETRAINED, help="spectrograms: the checkpoint (default: the shipped one)")
    p.add_argument("--data", default="demo", help="spectrograms: demo, LibriMix or a LibriMix-layout folder")
    p.add_argument("--split", default="test")
    p.add_argument("--index", type=int, default=0, help="spectrograms: which example of the split to draw")
    p.add_argument("--evidence", type=Path, default=EVIDENCE / "di.json", help="di: the JSON of analysis.py di")
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="folder of the PNG files")
    args = p.parse_args(argv)
    args.limit = args.index + 1
    try:
        pyplot()
    except ImportError:
        sys.exit("error: the figures need matplotlib: pip install -r requirements-docs.txt")
    try:
        with torch.no_grad():
            {"spectrograms": cmd_spectrograms, "di": cmd_di}[args.command](args)
    except (DataError, OSError, KeyError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
