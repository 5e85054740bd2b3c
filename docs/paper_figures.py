"""
The paper's Figures 4 and 5 asked of our model, and the demo's first minute: one mixture heard.

    python docs/paper_figures.py                  # both figures into docs/ and the README's table
    python docs/paper_figures.py example --out runs/RUN/shipped   # one unseen-speaker mixture, extracted and written
    python docs/paper_figures.py compare A.json B.json            # two eval.py reports on the same examples

Figure 4 (the paper: does extraction bring a small recogniser to the WER it has on clean speech?):
Whisper tiny.en's WER and DNSMOS OVRL by system, mixture -> mask -> one step -> clean target, from
the committed eval.py report EVIDENCE. Figure 5: the spectrograms of one test mixture, its mask-only
output, its one-step output and the clean target, from the checkpoint --ckpt (pretrained/demo.pt).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import stft

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from data import LibriMix, resolve_root  # noqa: E402
from eval import cell, mean_ci  # noqa: E402
from mask2flow import si_sdr  # noqa: E402
from common import extract_batch, load_model, run  # noqa: E402

EVIDENCE = ROOT / "docs" / "research" / "evidence" / "real310" / "shipped-asr" / "eval_demo_test_clean.json"
SHIPPED = ROOT / "pretrained" / "demo.pt"
ORDER = ("mixture", "mask-only", "Mask2Flow 1 step", "clean target")  # Figure 4's x axis
COLUMNS = {"si_sdri": "SI-SDRi (dB)", "pesq": "PESQ-WB", "estoi": "ESTOI", "dnsmos_sig": "DNSMOS SIG",
           "dnsmos_ovrl": "DNSMOS OVRL", "wer": "WER (%)"}


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def systems_of(report):
    return {name: s for name, s in {**report["systems"], "clean target": report.get("clean target")}.items() if s}

# -----------------------------------------------------------------------------
# the README's table and Figure 4, from an eval.py report


def table(report, path):
    """Markdown: each system's mean ± 95% interval, then the paired differences mask - mixture and
    one step - mask (A - B per example, clustered by mixture)."""
    rows = [f"| system | {' | '.join(COLUMNS.values())} |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, s in systems_of(report).items():
        rows.append(f"| {name} | " + " | ".join(cell(s["metrics"].get(k)) for k in COLUMNS) + " |")
    for pair in ("mask-only − mixture", "Mask2Flow 1 step − mask-only"):
        d = report["paired"].get(pair, {})
        rows.append(f"| {pair}, paired | " + " | ".join(cell(d.get(k)) for k in COLUMNS) + " |")
    refs = ", ".join(f"{n} {k}" for k, n in report.get("wer_references", {}).items())
    return "\n".join(rows) + (f"\n\n{report['data']} `{report['split']}`, n = {report['n']} in "
                              f"{len(set(report['examples']['mixture_id']))} mixtures; WER references: {refs}. "
                              f"Source: `{path}`.")


def figure4(report, out):
    plt = pyplot()
    systems = systems_of(report)
    names = [n for n in ORDER if n in systems]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in zip(axes, ("wer", "dnsmos_ovrl"), ("WER of Whisper tiny.en (%), lower is better",
                                                             "DNSMOS OVRL (1 to 5), higher is better")):
        m = [systems[n]["metrics"][key] for n in names]
        ax.bar(range(len(names)), [x["mean"] for x in m], yerr=[x["ci95"] for x in m], capsize=4,
               color=["0.6", "tab:blue", "tab:orange", "tab:green"][:len(names)])
        ax.set_xticks(range(len(names)), [n.replace("Mask2Flow ", "") for n in names])
        ax.set_ylabel(label, fontsize=9)
        for i, x in enumerate(m):
            ax.text(i, x["mean"], f"{x['mean']:.2f}", ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"{Path(report['checkpoint']).name} on {report['data']} {report['split']} (unseen speakers), "
                 f"n = {report['n']}: mean ± 95% interval", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out}")

# -----------------------------------------------------------------------------
# one mixture: Figure 5 and the demo's first minute


def one_example(ckpt, data, index, out=None, figure=None):
    """Extract test example `index` of `data` with `ckpt` (mask-only and one step), write the mixture,
    the enrollment, the extraction and a spectrogram PNG into `out` (only the PNG, to `figure`, when out
    is None), and print SI-SDRi and, where requirements-eval.txt is installed, Whisper's WER of each."""
    model, _ = load_model(Path(ckpt), torch.device("cpu"))
    sr = model.cfg.sample_rate
    root = resolve_root(data)
    item = LibriMix(root, "test", segment=None, sample_rate=sr)[index]
    mix, target, ref = (item[k].numpy().astype(np.float32) for k in ("mix", "target", "enroll"))
    signals = {"mixture": mix, **{name: extract_batch(model, [mix], [ref], k)[0]
                                  for name, k in (("mask-only", 0), ("Mask2Flow 1 step", 1))}, "clean target": target}
    sdr = lambda x: si_sdr(torch.from_numpy(x)[None], torch.from_numpy(target)[None]).item()
    notes = {name: f"SI-SDRi {sdr(x) - sdr(mix):+.1f} dB" for name, x in signals.items() if name != "clean target"}
    try:
        import asr
        recogniser = asr.heard_metrics(sr, skip=("spk_sim", "dnsmos"))["wer"]
    except ImportError:
        recogniser = None
    if recogniser:
        words, kind = asr.reference_of(asr.wer_references(root), {**item, "target": target}, sr)
        said = dict(zip(signals, recogniser(list(signals.values()))))
        words = words if words is not None else asr.normalize(said["clean target"])
        for name, text in said.items():
            wer = 100 * asr.word_errors(words, asr.normalize(text)) / max(1, len(words))
            notes[name] = (notes.get(name, "") + f"{', ' if name in notes else ''}WER {wer:.0f} %").strip()
            print(f"  {name:17} heard by Whisper tiny.en: \"{text}\"")
        print(f"  reference ({'the corpus transcript' if kind == 'transcript' else 'Whisper on the clean target'}): "
              f"\"{' '.join(words)}\"")
    else:
        print("  (WER: pip install -r requirements-eval.txt)")
    if out is None:
        return spectrograms(signals, notes, sr, f"{item['mixture_id']}, target {item['target_index']}, "
                            f"{Path(ckpt).name}", figure)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"mixture.wav": mix, "enrollment.wav": ref, "extracted.wav": signals["Mask2Flow 1 step"],
             "mask_only.wav": signals["mask-only"], "clean_target.wav": target}
    for name, x in files.items():
        sf.write(out / name, x / max(1.0, float(np.abs(x).max()) / 0.99), sr)  # scaled down, never clipped
    spectrograms(signals, notes, sr, f"{item['mixture_id']}, target {item['target_index']} (speaker "
                 f"{item['speaker']}), {Path(ckpt).name}", out / "spectrograms.png")
    print(f"{Path(ckpt).name} on an unseen-speaker test mixture: "
          + "; ".join(f"{name}: {note}" for name, note in notes.items()))
    print(f"listen: {out}/mixture.wav, then enrollment.wav (the voice to keep), then extracted.wav")


def spectrograms(signals, notes, sr, title, path):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(signals), figsize=(4 * len(signals), 3.2), sharey=True)
    db = {}
    for name, x in signals.items():
        f, t, Z = stft(x, sr, nperseg=512, noverlap=384)
        db[name] = 20 * np.log10(np.abs(Z) + 1e-8)
    top = max(v.max() for v in db.values())
    for ax, (name, d) in zip(axes, db.items()):
        im = ax.pcolormesh(t, f / 1000, d, vmin=top - 80, vmax=top, cmap="magma", shading="auto")
        ax.set_title(f"{name}\n{notes.get(name, '(reference)')}", fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes, label="dB (shared scale)", pad=0.01)
    fig.suptitle(title, fontsize=10, y=1.05)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")

# -----------------------------------------------------------------------------


def compare(paths):
    """Two eval.py reports of the same examples: each system's scores side by side, and A - B paired
    per example for one step."""
    a, b = (json.loads(Path(p).read_text()) for p in paths)
    assert a["examples"] == b["examples"], "the two reports are not on the same examples"
    keys = [k for k in COLUMNS if any(isinstance(s["metrics"].get(k), dict) for s in a["systems"].values())]
    print(f"\n### the same {a['n']} examples of {a['data']} {a['split']}: mean ± 95% interval\n")
    print(f"| checkpoint | system | {' | '.join(COLUMNS[k] for k in keys)} |\n" + "|---" * (len(keys) + 2) + "|")
    for r in (a, b):
        for name, s in r["systems"].items():
            if name != "mixture":
                print(f"| {r['checkpoint']} | {name} | " + " | ".join(cell(s["metrics"][k]) for k in keys) + " |")
    step = "Mask2Flow 1 step"
    diffs = {k: mean_ci([None if x is None or y is None else x - y for x, y in zip(
        a["systems"][step]["scores"][k], b["systems"][step]["scores"][k])], a["examples"]["mixture_id"]) for k in keys}
    print(f"| first − second, paired | {step} | " + " | ".join(cell(diffs[k]) for k in keys) + " |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="figures", choices=["figures", "example", "compare"])
    p.add_argument("reports", nargs="*", help="compare: two eval.py JSON reports")
    p.add_argument("--ckpt", default=str(SHIPPED), help="checkpoint of Figure 5 and example (default pretrained/demo.pt)")
    p.add_argument("--data", default="demo", help="corpus of Figure 5 and example (default demo)")
    p.add_argument("--index", type=int, default=0, help="which example of its test split (default 0)")
    p.add_argument("--evidence", default=str(EVIDENCE), help="eval.py report of Figure 4 and the table")
    p.add_argument("--out", default=str(ROOT / "docs"), help="folder written into (default docs/)")
    args = p.parse_args(argv)
    if args.command == "compare":
        if len(args.reports) != 2:
            p.error("compare takes two eval.py reports")
        return run(lambda a: compare(a.reports), args)
    if args.command == "example":
        return run(lambda a: one_example(a.ckpt, a.data, a.index, a.out), args)
    report = json.loads(Path(args.evidence).read_text())
    figure4(report, Path(args.out) / "fig4_wer.png")
    one_example(args.ckpt, args.data, args.index, figure=Path(args.out) / "fig5_spectrograms.png")
    print("\n" + table(report, Path(args.evidence).relative_to(ROOT) if Path(args.evidence).is_relative_to(ROOT)
                       else args.evidence))
    return 0


if __name__ == "__main__":
    sys.exit(main())
