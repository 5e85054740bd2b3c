"""
The analyses of reading 6 (docs/6-experiments.md): what the mask and the one flow step do to the target.

    python analysis.py oversuppression --limit 50   # the target energy each output lacks, and what it has in excess
    python analysis.py ceilings --limit 100         # oracle masks built from the clean target: magnitude or phase?
    python analysis.py di --limit 50                # delete/insert shares of the change from the mixture (Figure 2)

Each uses the first --limit test examples (unseen speakers) of the demo corpus, prints its table and the
checkpoint it measured, and with -o DIR writes its JSON there: docs/research/evidence/real310/ holds those
of the shipped model, which docs/research/results.py turns into docs/results.md. Every signal is taken in the
domain Mask2Flow.extract works in: divided by the mixture's RMS, STFT, compressed (reading 2).
Shapes: B batch, F frequency bins, T frames; a compressed spectrogram is (B, 2, F, T), a power (B, F, T).
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from common import DataError, load_model
from data import LibriMix, resolve_root
from eval import mean_ci
from mask2flow import decompress, frame_mask, magnitude, rms, si_sdr

PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "demo.pt"  # the shipped model

# --- the front end every analysis shares ---


def spectra(model, mix, target):
    """Compressed spectrograms of the mixture Y and the target S, (B, 2, F, T) each, both divided by
    the mixture's RMS, exactly as Mask2Flow.extract normalises its input."""
    scale = rms(mix, torch.full((mix.shape[0],), mix.shape[1]))
    return model.spec(mix / scale), model.spec(target / scale)


def power(model, Xc):
    """|X|^2 of the plain STFT behind a compressed state: (B, 2, F, T) -> (B, F, T)."""
    return magnitude(decompress(Xc, model.cfg.alpha, model.cfg.beta))[:, 0] ** 2

# --- 1. over-suppression: what each output lacks and what it has too much of ---


@torch.no_grad()
def over_suppression(model, mix, target, ref):
    """Per-bin powers of the mixture, the mask output (x0), one Euler step (x1) and the target, and for
    each output the target energy it lacks, sum max(|S|^2 - |X|^2, 0), and the energy in excess of
    the target, sum max(|X|^2 - |S|^2, 0), both in energies (divide by sum |S|^2 for shares). The
    mixture's lack is the floor of a bounded mask: a mask <= 1 never adds energy to a bin."""
    _, xs = model.extract(mix, ref, steps=1, return_states=True)
    Y, S = spectra(model, mix, target)
    P = {"mixture": power(model, Y), "mask": power(model, xs[0]), "one step": power(model, xs[-1]),
         "target": power(model, S)}
    missing = {k: (P["target"] - p).clamp_min(0).sum().item() for k, p in P.items() if k != "target"}
    excess = {k: (p - P["target"]).clamp_min(0).sum().item() for k, p in P.items() if k != "target"}
    return P, missing, excess, P["target"].sum().item()

# --- 2. oracle ceilings: what a mask could reach if it knew the target ---


def irm(Y, S, gamma=1):
    """IRM^gamma Y, the ideal bounded mask min(|S| / |Y|, 1) raised to gamma, applied to Y. In the
    compressed domain |.|^alpha cancels in the ratio's bound, so this is the best bounded mask there
    (gamma = 2: an over-suppressing one)."""
    return (magnitude(S) / magnitude(Y)).clamp(max=1) ** gamma * Y


def polar(mag, like):
    """mag (B, 1, F, T) with the phase of like (B, 2, F, T)."""
    return mag * like / magnitude(like)


ORACLES = {  # start -> x from (Y, S): what each allows
    "bounded": lambda Y, S: irm(Y, S, 1),                                         # the best mask in [0, 1]
    "unbounded": lambda Y, S: polar(magnitude(S), Y),                             # any magnitude, the mixture's phase
    "bounded, target phase": lambda Y, S: polar(torch.minimum(magnitude(S), magnitude(Y)), S),
    "bounded^2": lambda Y, S: irm(Y, S, 2),                                       # over-suppressing
}


def oracle_scores(model, mix, target):
    """SI-SDR (dB) of the mixture and of every oracle start of ORACLES for one (1, L) example."""
    Y, S = spectra(model, mix, target)
    frames = frame_mask(torch.tensor([mix.shape[1]]), Y.shape[-1], model.cfg.hop)
    wav = lambda x: model.wav(x, mix.shape[1], frames)
    return {"mixture": si_sdr(mix, target).item(), **{k: si_sdr(wav(f(Y, S)), target).item() for k, f in ORACLES.items()}}

# --- 3. delete/insert (paper Figure 2), in two conventions ---


def delete_insert(P, P_mix):
    """Energy change from the mixture per bin, d = P - P_mix: deletion D = sum max(-d, 0) and insertion
    I = sum max(d, 0) over all bins of an example. (B, F, T) levels -> (D, I), each (B,). shares() then
    pools D and I over examples before dividing. With powers P = |X|^2 this is the mixture-scale
    convention; give it normalised() levels for the other one."""
    d = P - P_mix
    return (-d).clamp_min(0).sum((1, 2)), d.clamp_min(0).sum((1, 2))


def bins_changed(P, P_mix):
    """A variant that counts bins instead of weighing them by energy: (#bins d < 0, #bins d > 0)."""
    d = P - P_mix
    return (d < 0).sum((1, 2)).double(), (d > 0).sum((1, 2)).double()


def normalised(model, P):
    """The other convention: each signal scaled to unit energy on its own, then its compressed magnitude
    |X|^alpha, what the model works on. (B, F, T) powers -> (B, F, T) levels."""
    return (P / P.sum((1, 2), keepdim=True).clamp_min(1e-20)) ** (model.cfg.alpha / 2)


@torch.no_grad()
def di_states(model, mix, target, ref, steps, measure=delete_insert):
    """measure (default (D, I)) of every sampler state x_0 .. x_N, and of the clean target, against the
    mixture, all as powers at the mixture's scale (a measure can normalise them: see di)."""
    _, xs = model.extract(mix, ref, steps=steps, return_states=True)
    Y, S = spectra(model, mix, target)
    P_mix = power(model, Y)
    return [measure(power(model, x), P_mix) for x in xs], measure(power(model, S), P_mix)


def shares(totals):
    """{name: [D, I]} summed over examples -> {name: {"delete": D/(D+I), "insert": I/(D+I)}}."""
    return {k: {"delete": D / (D + I), "insert": I / (D + I)} if D + I > 0 else {"delete": None, "insert": None}
            for k, (D, I) in totals.items()}  # no change at all: no proportions

# --- the commands ---


def examples(args):
    """(mixture ID, mix, target, enrollment), (1, L) tensors each, of the first --limit examples."""
    ds = LibriMix(resolve_root(args.data), split=args.split, segment=None, seed=0)
    for i in range(min(args.limit, len(ds))):
        item = ds[i]
        yield item["mixture_id"], item["mix"][None], item["target"][None], item["enroll"][None]


def checkpoint_name(path):
    """The checkpoint as the outputs name it: its path (from the repository's root when inside it) and
    the start of its SHA-256."""
    path, root = Path(path).resolve(), Path(__file__).resolve().parent
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    return f"{shown} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"


def cmd_oversuppression(model, args):
    totals, ids = {}, []  # output -> per-example [missing, excess, target energy]
    for mid, mix, target, ref in examples(args):
        _, missing, excess, energy = over_suppression(model, mix, target, ref)
        ids.append(mid)
        for k in missing:
            totals.setdefault(k, []).append([missing[k], excess[k], energy])
    pooled = {k: {"missing": sum(r[0] for r in v) / sum(r[2] for r in v),
                  "excess": sum(r[1] for r in v) / sum(r[2] for r in v)} for k, v in totals.items()}
    print(f"{'output':<10} {'target energy missing':>22} {'energy in excess of the target':>32}")
    for k, v in pooled.items():
        print(f"{k:<10} {100 * v['missing']:>21.1f}% {100 * v['excess']:>31.1f}%")
    return {"pooled": pooled, "mixture_id": ids,
            "per_example": {k: {"missing": [r[0] / r[2] for r in v], "excess": [r[1] / r[2] for r in v]}
                            for k, v in totals.items()}}


def cmd_ceilings(model, args):
    scores, ids = {}, []
    for mid, mix, target, _ in examples(args):
        ids.append(mid)
        for k, v in oracle_scores(model, mix, target).items():
            scores.setdefault(k, []).append(v)
    minus = {k: mean_ci([a - b for a, b in zip(v, scores["bounded"])], ids) for k, v in scores.items() if k != "bounded"}
    print(f"{'start':<22} {'SI-SDR (dB)':>11}  minus the bounded mask (paired, 95% interval by mixture)")
    for k, v in scores.items():
        d = minus.get(k)
        print(f"{k:<22} {np.mean(v):>11.2f}  " + (f"{d['mean']:+.2f} ± {d['ci95']:.2f}" if d else ""))
    return {"mean": {k: float(np.mean(v)) for k, v in scores.items()}, "minus_bounded": minus, "mixture_id": ids,
            "scores": scores}


def cmd_di(model, args):
    totals, n = {}, 0  # name -> [D, I, bins deleted, bins inserted, D and I normalised], summed over examples
    level = lambda P: normalised(model, P)
    every = lambda P, P_mix: (*delete_insert(P, P_mix), *bins_changed(P, P_mix), *delete_insert(level(P), level(P_mix)))
    for _, mix, target, ref in examples(args):
        states, tgt = di_states(model, mix, target, ref, 1, every)
        n += 1
        for name, values in zip(("mask", "one step", "target"), (*states, tgt)):
            totals[name] = [a + b.sum().item() for a, b in zip(totals.get(name, [0.0] * 6), values)]
    out = {c: shares({k: v[i:i + 2] for k, v in totals.items()})
           for c, i in (("mixture scale", 0), ("bins", 2), ("normalised", 4))}
    print(f"{'insertion I/(D+I)':<18}" + "".join(f"{c:>15}" for c in out))
    for k in totals:
        print(f"{k:<18}" + "".join(f"{100 * out[c][k]['insert']:>14.1f}%" for c in out))
    return {"n": n, "insertion_shares": out}


COMMANDS = {"oversuppression": cmd_oversuppression, "ceilings": cmd_ceilings, "di": cmd_di}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=list(COMMANDS))
    p.add_argument("--ckpt", type=Path, default=PRETRAINED, help="checkpoint (default: the shipped pretrained/demo.pt)")
    p.add_argument("--data", default="demo", help="demo, LibriMix or a LibriMix-layout folder")
    p.add_argument("--split", default="test", help="test = unseen speakers")
    p.add_argument("--limit", type=int, default=50, help="first N examples of the split")
    p.add_argument("-o", "--output", type=Path, help="write <command>.json into this folder (replacing it)")
    args = p.parse_args(argv)
    if args.limit < 2:
        p.error("--limit must be at least 2 (an interval needs two mixtures)")
    try:
        model = load_model(args.ckpt, torch.device("cpu"))[0].eval()
        print(f"{args.command} of {checkpoint_name(args.ckpt)} on {args.data} {args.split}, first {args.limit} examples")
        with torch.no_grad():  # not set_grad_enabled: main() also runs inside the tests' process
            report = COMMANDS[args.command](model, args)
    except (DataError, OSError) as e:
        sys.exit(f"error: {e}")
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        report = {"ckpt": checkpoint_name(args.ckpt), "data": args.data, "split": args.split,
                  "n": len(report.get("mixture_id", [])), **report}
        (args.output / f"{args.command}.json").write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.output / (args.command + '.json')}")


if __name__ == "__main__":
    main()
