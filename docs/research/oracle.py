"""
Oracle starts for stage 2 (docs/6): how much can one flow step add to a mask, and is it magnitude or phase?

    python docs/research/oracle.py ceilings --data demo --split test -o docs/research/evidence/oracle
    python docs/research/oracle.py train --stage1 CKPT --gamma 2 --steps 1500 -o runs/oracle-g2
    python docs/research/oracle.py eval --ckpt runs/oracle-g2/dit.pt --split test -o docs/research/evidence/oracle

`ceilings` scores, on every example of a split, starts built from the clean target S and the
mixture Y (in the compressed domain of mask2flow.py, where a linear mask M acts as M^alpha):
    bounded        min(|S| / |Y|, 1) Y              the best a real mask in [0, 1] can do
    unbounded      |S| e^{j angle Y}                magnitude insertion allowed, the mixture's phase
    bounded-phase  min(|S|, |Y|) e^{j angle S}      bounded magnitude with the target's phase
    bounded^2      min(|S| / |Y|, 1)^2 Y            an over-suppressing mask (IRM^gamma, gamma = 2)
`train` trains the small DiT of mask2flow.py (stage 1's speaker encoder frozen, from CKPT) on the
straight path from the oracle start IRM^gamma Y to S, on dynamic two-speaker mixtures of train-100.
With `--head gain` the DiT's last layer gives complex gains per bin and frame instead of a velocity,
v = G_Y Y + G_x x_t (zero at init, like adaLN-Zero): does the velocity head's width keep the phase
headroom out of reach (docs/6)?
`eval` scores its start, its one step, and the one step's magnitude alone (|x1| e^{j angle x0}) and
phase alone (|x0| e^{j angle x1}): which part of its correction helps.
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]  # the repository's modules, and figures.py beside this file
import data  # noqa: E402
from figures import delete_insert, normalised, power, shares  # noqa: E402
from mask2flow import (CONFIGS, DiT, FinalLayer, Config, Mask2Flow, every_frame, frame_mask, magnitude,  # noqa: E402
                       position_embedding, rms, si_sdr, timestep_embedding)


class GainDiT(DiT):
    """The DiT of mask2flow.py whose tokens give complex gains (B, 4, F, T), v = G_Y Y + G_x x_t."""

    def __init__(self, cfg):
        super().__init__(cfg)
        del self.skip  # a frame-independent gain, which these gains include
        self.load_state_dict(Mask2Flow(cfg).dit.state_dict(), strict=False)  # Mask2Flow's initialisation
        self.final = FinalLayer(cfg.dit_width, 4 * cfg.n_freqs * cfg.patch)
        for m in (self.final.linear, self.final.adaLN_modulation[-1]):  # v = 0 at init
            torch.nn.init.zeros_(m.weight)
            torch.nn.init.zeros_(m.bias)

    def forward(self, xt, t, y, spk, frames=None):
        B, _, Fq, T = xt.shape
        p = self.p
        x = F.pad(torch.cat([xt, y], dim=1), (0, -T % p))
        N = x.shape[-1] // p
        x = self.embed(x.view(B, 4, Fq, N, p).permute(0, 3, 1, 2, 4).reshape(B, N, 4 * Fq * p))
        x = x + position_embedding(N, x.shape[-1], x.device)
        frames = every_frame(xt, frames)
        c = self.t_embedder(timestep_embedding(t, 256)) + self.spk_embedder(spk)
        for block in self.blocks:
            x = block(x, c, frames[:, ::p])
        g = self.final(x, c).view(B, N, 4, Fq, p).permute(0, 2, 3, 1, 4).reshape(B, 4, Fq, N * p)[..., :T]
        cplx = lambda z: torch.complex(z[:, 0], z[:, 1])
        v = cplx(g[:, :2]) * cplx(y) + cplx(g[:, 2:]) * cplx(xt)  # (B, F, T) complex
        return torch.stack([v.real, v.imag], dim=1) * frames[:, None, None, :]


def load(path):
    """A checkpoint's model; config fields this mask2flow.py no longer has are dropped."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = Config(**{k: v for k, v in ckpt["config"].items() if k in Config.__dataclass_fields__})
    model = Mask2Flow(cfg)
    if ckpt.get("head") == "gain":
        model.dit = GainDiT(cfg)
    model.load_state_dict(ckpt["ema"])
    return model, ckpt


def polar(mag, like):
    """mag (B, 1, F, T) with the phase of like (B, 2, F, T)."""
    return mag * like / magnitude(like)


def oracle(Y, S, gamma):
    """IRM^gamma Y in the compressed domain: min(|S| / |Y|, 1)^gamma, as |.|^alpha cancels in the ratio."""
    return (magnitude(S) / magnitude(Y)).clamp(max=1) ** gamma * Y


def front(model, mix, target):
    """Compressed spectrograms of a (B, L) batch scaled as Mask2Flow scales it, and its real frames."""
    lengths = torch.full((mix.shape[0],), mix.shape[1])
    scale = rms(mix, lengths)
    Y, S = model.spec(mix / scale), model.spec(target / scale)
    return Y, S, frame_mask(lengths, Y.shape[-1], model.cfg.hop)


def score(model, spec, target, frames):
    return si_sdr(model.wav(spec, target.shape[-1], frames), target).item()


def paired(a, b):
    """Mean of a - b with the half-width of its 95% t interval."""
    d = np.asarray(a) - np.asarray(b)
    from scipy.stats import t
    return dict(mean=float(d.mean()), ci95=float(t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))), n=len(d))


def dataset(args):
    return data.LibriMix(data.resolve_root(args.data), args.split, segment=None)


def ceilings(args):
    model, ds = Mask2Flow(CONFIGS["small"]), dataset(args)
    starts = {"bounded": lambda Y, S: oracle(Y, S, 1), "unbounded": lambda Y, S: polar(magnitude(S), Y),
              "bounded-phase": lambda Y, S: polar(torch.minimum(magnitude(S), magnitude(Y)), S),
              "bounded^2": lambda Y, S: oracle(Y, S, 2)}
    scores = {k: [] for k in ["mixture", *starts]}
    n = min(args.limit or len(ds), len(ds))
    for i in range(n):
        ex = ds[i]
        mix, target = ex["mix"][None], ex["target"][None]
        Y, S, frames = front(model, mix, target)
        scores["mixture"].append(si_sdr(mix, target).item())
        for k, f in starts.items():
            scores[k].append(score(model, f(Y, S), target, frames))
    report = dict(split=args.split, n=n, mean={k: float(np.mean(v)) for k, v in scores.items()},
                  minus_bounded={k: paired(v, scores["bounded"]) for k, v in scores.items() if k != "bounded"},
                  scores=scores)
    write(report, args.output, f"ceilings_{args.split}.json")


def train(args):
    model, ckpt = load(args.stage1)
    for p in model.parameters():
        p.requires_grad_(False)
    model.dit = GainDiT(model.cfg) if args.head == "gain" else Mask2Flow(model.cfg).dit  # fresh, v = 0
    torch.manual_seed(args.seed)
    train_set = data.DynamicMix(data.resolve_root(args.data), "train-100", segment=3.0, enroll_segment=4.0,
                                seed=args.seed, single=0)
    opt = torch.optim.AdamW(model.dit.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    t0, losses = time.time(), []
    for step in range(args.steps):
        batch = data.collate([train_set[step * 8 + j] for j in range(8)])
        lengths = batch["lengths"]
        scale = rms(batch["mix"], lengths)
        Y, S = model.spec(batch["mix"] / scale), model.spec(batch["target"] / scale)
        frames = frame_mask(lengths, Y.shape[-1], model.cfg.hop)
        Y, S = Y * frames[:, None, None, :], S * frames[:, None, None, :]
        with torch.no_grad():
            spk = model.embed_speaker(batch["enroll"], batch["enroll_lengths"])
        for g in opt.param_groups:  # warm-up, then cosine to lr / 10
            g["lr"] = args.lr * min(1, (step + 1) / 100) * (0.55 + 0.45 * np.cos(np.pi * step / args.steps))
        loss = model.flow_loss(oracle(Y, S, args.gamma), S, Y, spk, frames, lengths=lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.dit.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}/{args.steps} loss {np.mean(losses[-50:]):.5f} "
                  f"{(time.time() - t0) / (step + 1) * (args.steps - step - 1) / 60:.1f} min left", flush=True)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    torch.save(dict(config=dataclasses.asdict(model.cfg), ema=model.state_dict(), gamma=args.gamma, steps=args.steps, head=args.head,
                    stage1=args.stage1, loss=losses), Path(args.output) / "dit.pt")


@torch.no_grad()
def evaluate(args):
    model, ckpt = load(args.ckpt)
    model.eval()
    ds, gamma = dataset(args), ckpt["gamma"]
    scores = {k: [] for k in ("start", "one step", "magnitude only", "phase only")}
    n = min(args.limit or len(ds), len(ds))
    mixtures, totals = [], {}  # totals: (convention, state) -> [D, I], summed over examples
    for i in range(n):
        ex = ds[i]
        mixtures.append(ex["mixture_id"])
        mix, target = ex["mix"][None], ex["target"][None]
        Y, S, frames = front(model, mix, target)
        spk = model.embed_speaker(ex["enroll"][None])
        x0 = oracle(Y, S, gamma)
        x1 = x0 + model.dit(x0, torch.zeros(1), Y, spk, frames)
        for k, x in zip(scores, (x0, x1, polar(magnitude(x1), x0), polar(magnitude(x0), x1))):
            scores[k].append(score(model, x, target, frames))
        P = {k: power(model, x) for k, x in (("mixture", Y), ("start", x0), ("one step", x1), ("target", S))}
        for convention, level in (("mixture", lambda p: p), ("normalised", lambda p: normalised(model, p))):
            for k in ("start", "one step", "target"):  # docs/6's delete/insert shares, both conventions
                D, I = delete_insert(level(P[k]), level(P["mixture"]))
                totals[convention, k] = [a + b.item() for a, b in zip(totals.get((convention, k), [0.0, 0.0]), (D, I))]
    head = ckpt.get("head", "velocity")
    report = dict(split=args.split, n=n, gamma=gamma, steps=ckpt["steps"], stage1=ckpt["stage1"], head=head,
                  mean={k: float(np.mean(v)) for k, v in scores.items()},
                  minus_start={k: paired(v, scores["start"]) for k, v in scores.items() if k != "start"},
                  insertion={c: {k: v["insert"] for (c2, k), v in shares(totals).items() if c2 == c}
                             for c in ("mixture", "normalised")},
                  mixture_id=mixtures, scores=scores)
    write(report, args.output, f"oracle_gamma{gamma:g}{'' if head == 'velocity' else '_' + head}_{args.split}.json")


def write(report, out, name):
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / name).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "scores"}, indent=1))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["ceilings", "train", "eval"])
    p.add_argument("--data", default="demo")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--stage1", help="train: the checkpoint whose speaker encoder conditions the DiT")
    p.add_argument("--ckpt", help="eval: the dit.pt that train wrote")
    p.add_argument("--gamma", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--head", choices=["velocity", "gain"], default="velocity", help="train: what the DiT's last layer gives")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    {"ceilings": ceilings, "train": train, "eval": evaluate}[a.command](a)
