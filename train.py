"""
Train Mask2Flow-TSE in two stages, as the paper does:
  stage 1: speaker encoder + masker, loss || M * Y - S ||^2 (optionally - W * SI-SDR of its waveform,
           + W' * cross-entropy of a speaker classifier on the enrollment)
  stage 2: the DiT flow, with stage 1 frozen, loss || v(x_t, t) - (x1 - x0) ||^2

    python train.py --data demo                      # the offline demo corpus (data.py demo)
    python train.py --data LibriMix --config paper --device cuda
    torchrun --nproc_per_node 4 train.py --data LibriMix --config paper
    python train.py --out runs/NAME --resume         # continue where it stopped, with the run's settings

A run folder holds ckpt_last.pt (to resume), ckpt_best.pt (best dev SI-SDR of the current stage; in
stage 2, step 0 counts: the untrained flow returns stage 1's output), ckpt_stage1.pt (the masker
stage 2 starts from), ckpt_init.pt (with --stage 1 --stage1 PATH, the masker it went on training)
and log.csv. Without --out, runs/ is the repository's.
"""

import argparse
import copy
import csv
import dataclasses
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import data
from mask2flow import CONFIGS, Config, Mask2Flow, si_sdr
from sample import InputError, checkpoint_config

REPO = Path(__file__).resolve().parent  # runs/ is the repository's, wherever train.py is started


def get_lr(step, total, args):
    """Linear warm-up, then cosine decay to lr / 10."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, total - args.warmup))
    return args.lr / 10 + 0.5 * (1 + math.cos(math.pi * progress)) * (args.lr - args.lr / 10)


@torch.no_grad()
def update_ema(ema, model, step, decay):
    """ema <- d ema + (1 - d) model, with d warming up so early averages are not stale."""
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - d)


@torch.no_grad()
def evaluate(model, dataset, n, device):
    """Mean dev SI-SDR (dB) of the mixture, the mask (0 steps) and Mask2Flow (1 step)."""
    model.eval()
    scores = {"mixture": [], "mask": [], "flow1": []}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)  # noise start: the same draw every time; training RNG untouched
        for i in range(min(n, len(dataset))):
            ex = dataset[i]
            mix, target = ex["mix"][None].to(device), ex["target"][None].to(device)
            ref = ex["enroll"][None].to(device)
            scores["mixture"].append(si_sdr(mix, target).item())
            scores["mask"].append(si_sdr(model.extract(mix, ref, steps=0), target).item())
            scores["flow1"].append(si_sdr(model.extract(mix, ref, steps=1), target).item())
    model.train()
    return {k: float(np.mean(v)) for k, v in scores.items()}


def autocast(device, amp):
    """bf16 autocast on CUDA with --amp; fp32 otherwise (stage 1 did not learn under bf16 autocast on an H200)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()


def append_row(path, row):
    """Append a dict as a CSV row, writing the header with the first one."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})


def save_checkpoint(state, path):
    """Write to a temporary file, then rename: a crash never leaves a broken checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def rng_state():
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(s):
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if torch.cuda.is_available() and s["cuda"]:
        torch.cuda.set_rng_state_all(s["cuda"])


def rng_states(run):
    """Every rank's RNG state, a list indexed by rank, on rank 0 (None on the others): under DDP the
    ranks draw different t and noise, and each must take its own back on resume."""
    if not run.ddp:
        return [rng_state()]
    states = [None] * run.world if run.master else None
    dist.gather_object(rng_state(), states, dst=0)
    return states


def batches(dataset, args, start_step, rank, world):
    """Batches for steps start_step, start_step + 1, ...: epoch e is a permutation seeded by
    (seed, e), split across ranks, so a resumed run sees exactly the batches it would have."""
    per_step = args.batch_size * world
    n = len(dataset) // per_step
    if n == 0:
        raise data.DataError(f"{len(dataset)} training examples, fewer than one batch of {per_step}")
    step = start_step
    while True:
        epoch, first = divmod(step, n)
        dataset.set_epoch(epoch)
        perm = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed + epoch))
        index = [perm[(b * world + rank) * args.batch_size:][:args.batch_size].tolist() for b in range(first, n)]
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=index, collate_fn=data.collate,
                                             num_workers=args.workers, generator=torch.Generator())  # not the global RNG
        for batch in loader:
            yield batch
            step += 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="demo",
                   help="'demo' (<repo>/data/demo), 'LibriMix' ($LIBRIMIX or <repo>/LibriMix) or a LibriMix folder")
    p.add_argument("--noisy", action="store_true", help="train on mix_both (noise) instead of mix_clean")
    p.add_argument("--freq", default="16k", choices=["16k", "8k"], help="which LibriMix wav folder to read")
    p.add_argument("--mode", default="min", choices=["min", "max"])
    p.add_argument("--train-split", default="train-100", help="e.g. train-100, train-360")
    p.add_argument("--dev-split", default="dev")
    p.add_argument("--segment", type=float, default=3.0, help="training crop, seconds")
    p.add_argument("--enroll-segment", type=float, default=4.0, help="training enrollment crop, seconds")
    p.add_argument("--dynamic-mix", action="store_true", help="train on mixtures drawn afresh from the train split's "
                   "s1/s2 sources every epoch (data.DynamicMix), not on its fixed mixtures")
    p.add_argument("--voices", type=float, default=1.0, metavar="SHARE",
                   help="with --dynamic-mix: train on a seeded share of the train split's speakers only: docs/6's "
                        "data ablation")
    p.add_argument("--speed", type=float, nargs=2, default=list(data.SPEED), metavar=("LOW", "HIGH"),
                   help="with --dynamic-mix: range of the speed perturbation (resampling, which moves pitch and "
                        "formants) that makes new pseudo-speakers of each training voice")
    p.add_argument("--absent", type=float, default=0.0, metavar="SHARE",
                   help="with --dynamic-mix: share of examples whose enrolled speaker is absent (target = silence)")
    p.add_argument("--three", type=float, default=0.0, metavar="SHARE",
                   help="with --dynamic-mix: share of the mixtures with a second interferer (three voices)")
    p.add_argument("--lowpass", type=float, default=0.0, metavar="SHARE",
                   help="with --dynamic-mix: share of recordings low-passed at 3.5-7.5 kHz (band-limited channels)")
    p.add_argument("--light-noise", type=float, default=0.0, metavar="SHARE",
                   help="with --dynamic-mix: share of examples with coloured noise 15-30 dB below the target")
    p.add_argument("--config", default=None, choices=list(CONFIGS),
                   help="model size preset (default small); with --stage1, only its DiT fields apply")
    p.add_argument("--stage", default=None, choices=["1", "2", "all"],
                   help="stages to train (default all); a resumed run keeps its own")
    p.add_argument("--stage1", default=None, metavar="PATH",
                   help="with --stage 2: start from this stage-1 checkpoint (another run's ckpt_stage1.pt), "
                        "e.g. to train the --start mixture|noise baselines on the same masker; with --stage 1: "
                        "go on training its speaker encoder and masker (e.g. with another --mask-wave-loss)")
    p.add_argument("--out", default=None, help="run folder (default <repo>/runs/<data>-<config>-<start>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from ckpt_last.pt")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--amp", action="store_true",
                   help="bf16 autocast on CUDA. Off by default, so CUDA trains in fp32: stage 1 did not learn "
                        "under bf16 autocast on an H200. Does nothing on CPU, which always trains in fp32")
    p.add_argument("--batch-size", type=int, default=8, help="per process")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--max-steps", type=int, nargs="+", default=[20000], metavar="N",
                   help="steps of stage 1 and stage 2 (one value: both); sets the learning-rate schedule")
    p.add_argument("--max-minutes", type=float, nargs="+", default=None, metavar="M",
                   help="wall-clock budget of stage 1 and stage 2 (one value: both), counted over resumes; "
                        "a resumed run keeps its own unless given")
    p.add_argument("--eval-every", type=int, default=500, help="validate and checkpoint every N steps")
    p.add_argument("--eval-examples", type=int, default=32, help="dev examples per validation")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--workers", type=int, default=0, help="data loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    model = p.add_argument_group("model (override any field of the --config preset)")
    for f in dataclasses.fields(Config):
        kind = (lambda s: s.lower() in ("1", "true", "yes")) if f.type in (bool, "bool") else type(f.default)
        model.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None, metavar=f.type.__name__.upper(),
                           help="presets: " + ", ".join(f"{n} {getattr(c, f.name)}" for n, c in CONFIGS.items()))
    return p.parse_args(argv)


def setup_processes(args):
    """One process by default, DistributedDataParallel under torchrun. Returns the run's context."""
    ddp = "RANK" in os.environ
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA GPU is visible")
    if ddp:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if args.device == "cuda" else "cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        rank, world, device = 0, 1, torch.device(args.device)
    return SimpleNamespace(args=args, ddp=ddp, rank=rank, world=world, device=device, master=rank == 0)


def stage1_field(name):
    """The front end, the speaker encoder and the masker: what stage 1 trains, and stage 2 reads."""
    return name in ("sample_rate", "n_fft", "hop", "alpha", "beta") or name.startswith(("spk_", "mask"))


LOSS_FIELDS = ("mask_wave_loss", "spk_loss", "spk_classes")  # how stage 1 was trained, not what it is


def stage1_config(path, saved, preset, overrides):
    """The config of a run on the stage-1 checkpoint at path (a stage 2, or a stage 1 trained on): its
    front end, speaker encoder and masker as saved, the DiT fields of an explicit --config preset over
    them, then the flags given. A preset or flag that would change what stage 1 trained is refused."""
    asked = {f.name: getattr(preset, f.name) for f in dataclasses.fields(Config)  # a preset's loss weight is no
             if stage1_field(f.name) and f.name not in LOSS_FIELDS} if preset else {}  # setting of a trained masker
    asked.update({k: v for k, v in overrides.items() if stage1_field(k)})
    conflicts = [f"{k} {v} (it has {getattr(saved, k)})" for k, v in asked.items() if v != getattr(saved, k)]
    if conflicts:
        fits = [n for n, c in CONFIGS.items() if all(getattr(c, k) == getattr(saved, k) for k in asked)]
        raise SystemExit(f"error: --stage1 {path} was trained with other stage-1 settings than asked: "
                         f"{', '.join(conflicts)}; use a preset that fits it ({', '.join(fits) or 'none does'}) "
                         f"or change only the DiT")
    dit = {k: getattr(preset, k) for k in ("patch", "dit_width", "dit_depth", "dit_heads", "mlp_ratio")} if preset else {}
    return dataclasses.replace(saved, **{**dit, **overrides})


def saved_config(path, ckpt):
    """The config a checkpoint was trained with (sample.py:checkpoint_config), or a one-line error."""
    try:
        return checkpoint_config(ckpt["config"])
    except InputError as e:
        raise SystemExit(f"error: {path}: {e}")


def open_run(run):
    """The run folder and its config: a new run, never over an existing one, or with --resume the run
    in --out, which goes on with its own data, stages and schedule. Returns (out, cfg, ckpt to resume)."""
    args = run.args
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    preset = CONFIGS[args.config] if args.config else None  # given explicitly
    args.config = args.config or "small"
    cfg = dataclasses.replace(CONFIGS[args.config], **overrides)
    stage1 = ckpt = None
    if args.stage1 and not args.resume:
        if not Path(args.stage1).is_file():
            raise SystemExit(f"error: --stage1 {args.stage1} does not exist")
        stage1 = torch.load(args.stage1, map_location="cpu", weights_only=False)
        loss = overrides.pop("mask_wave_loss", None) if args.stage == "1" else None  # trained on with its own loss
        cfg = stage1_config(args.stage1, saved_config(args.stage1, stage1), preset, overrides)
        cfg = cfg if loss is None else dataclasses.replace(cfg, mask_wave_loss=loss)
    out = Path(args.out) if args.out else REPO / "runs" / f"{Path(args.data).name}-{args.config}-{cfg.start}"
    last = out / "ckpt_last.pt"
    if args.resume:
        if not last.exists():
            raise SystemExit(f"error: --resume but {last} does not exist")
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        cfg = saved_config(last, ckpt)
        for k, v in ckpt["args"].items():  # a run resumes with its own data, stages and schedule
            if k == "stage" and args.stage not in (None, v):
                raise SystemExit(f"error: {out} trains --stage {v}, and a resumed run keeps its stages; train "
                                 f"another stage in a new run (--stage 2 --stage1 {out / 'ckpt_stage1.pt'} --out NEW)")
            if k not in ("resume", "out", "device", "workers", "log_every", "compile") and not (
                    k == "max_minutes" and args.max_minutes is not None):  # a budget given now replaces the run's
                setattr(args, k, v)
        saved_by = len(ckpt["rng"]) if isinstance(ckpt["rng"], list) else 1  # one RNG state per process
        if saved_by != run.world:
            raise SystemExit(f"error: {last} was written by {saved_by} training process(es), this is {run.world}: "
                             f"resume with as many, so that each goes on with its own batches and random draws")
    elif out.exists() and any(out.iterdir()):
        raise SystemExit(f"error: {out} already holds a run; continue it with --resume or choose --out")
    args.stage = args.stage or "all"
    if ckpt is None and args.stage == "2" and stage1 is None:
        raise SystemExit("error: --stage 2 needs a stage-1 model: --stage1 PATH, or --out RUN --resume")
    if stage1 is not None and args.stage == "all":
        raise SystemExit("error: --stage1 PATH goes with --stage 2 (or --stage 1, to train that masker on)")
    if run.ddp:  # every rank has checked the folder before rank 0 writes to it
        dist.barrier()
    if run.master:
        if ckpt is not None:  # rows past the checkpoint will be written again
            with open(out / "log.csv", newline="") as f:
                rows = [r for r in csv.DictReader(f) if (int(r["stage"]), int(r["step"])) <= (ckpt["stage"], ckpt["step"])]
            (out / "log.csv").unlink()
            for r in rows:
                append_row(out / "log.csv", {**r, "minutes": r.get("minutes", "")})
        out.mkdir(parents=True, exist_ok=True)
        if stage1 is not None:
            save_checkpoint(stage1, out / ("ckpt_init.pt" if args.stage == "1" else "ckpt_stage1.pt"))
    if run.ddp:
        dist.barrier()
    return out, cfg, ckpt


def load_data(args, cfg):
    """The corpus folder, the training set (random crops and enrollments) and the dev set (whole)."""
    try:
        root = data.resolve_root(args.data)
        kw = dict(mix_type="noisy" if args.noisy else "clean", freq=args.freq, mode=args.mode,
                  sample_rate=cfg.sample_rate, seed=args.seed)
        mixing = {k: getattr(args, k) for k in ("voices", "speed", "absent", "three", "lowpass", "light_noise")}
        if mixing != dict(voices=1.0, speed=list(data.SPEED), absent=0, three=0, lowpass=0, light_noise=0) \
                and not args.dynamic_mix:
            raise SystemExit("error: --voices, --speed, --absent, --three, --lowpass and --light-noise need "
                             "--dynamic-mix (they act on the mixing of its sources)")
        more = mixing if args.dynamic_mix else {}
        train_set = (data.DynamicMix if args.dynamic_mix else data.LibriMix)(
            root, args.train_split, segment=args.segment, enroll_segment=args.enroll_segment, **kw, **more)
        dev_set = data.LibriMix(root, args.dev_split, segment=None, **kw)
    except (data.DataError, data.AudioError) as e:
        raise SystemExit(f"error: {e}")
    return root, train_set, dev_set


def validate_and_save(run, model, ema, optimizer, stage, step, best, log, minutes):
    """Dev SI-SDR of the EMA model, a log row, ckpt_last.pt, and ckpt_best.pt when it is the best of
    this stage. Every rank calls it (each saves its RNG state); rank 0 does the rest. Returns the best."""
    args, cfg = run.args, run.cfg
    rng = rng_states(run)
    if run.master:
        val = evaluate(ema, run.dev_set, args.eval_examples, run.device)
        score = val["mask"] if stage == 1 else val["flow1"]
        print(f"stage {stage} step {step} dev SI-SDR: mixture {val['mixture']:.2f} mask {val['mask']:.2f} "
              f"1-step {val['flow1']:.2f} dB" + (" (best)" if score > best else ""), flush=True)
        append_row(run.out / "log.csv", {"stage": stage, "step": step, "train_loss": float(np.mean(log)) if log else float("nan"),
                                         **{f"dev_{k}": v for k, v in val.items()}, "minutes": minutes})
        best = max(best, score)
        data_opts = {k: getattr(args, k) for k in ("data", "noisy", "freq", "mode", "train_split", "dev_split",
                                                   "segment", "enroll_segment")}
        state = {"config": dataclasses.asdict(cfg), "model": model.state_dict(), "ema": ema.state_dict(),
                 "optimizer": optimizer.state_dict(), "stage": stage, "step": step, "best_val": best,
                 "val": val, "minutes": minutes, "rng": rng, "data": data_opts, "args": vars(args)}
        if score == best:
            save_checkpoint(state, run.out / "ckpt_best.pt")
        save_checkpoint(state, run.out / "ckpt_last.pt")
    log.clear()  # train_loss is the mean since the last validation
    if run.ddp:
        dist.barrier()
    return best


def speaker_classes(cfg, train_set, stage):
    """When stage 1 trains with spk_loss > 0, the class of each training speaker (sorted) for the auxiliary
    loss, and the config that sizes the classifier for them. Returns (cfg, {speaker: class} or None)."""
    if cfg.spk_loss <= 0 or stage == "2":
        return cfg, None
    speakers = sorted(train_set.utts)
    if cfg.spk_classes not in (0, len(speakers)):
        raise SystemExit(f"error: the speaker classifier has {cfg.spk_classes} classes, the training split "
                         f"{len(speakers)} speakers: train on the data it was made for")
    return dataclasses.replace(cfg, spk_classes=len(speakers)), {s: i for i, s in enumerate(speakers)}


def start_weights(run, model, stage):
    """Load the speaker encoder and masker a new stage starts from: stage 2 always from stage 1's best
    (ckpt_stage1.pt); stage 1 from --stage1 PATH when it trains that masker on (ckpt_init.pt). Returns
    whether it loaded any."""
    path = run.out / ("ckpt_stage1.pt" if stage == 2 else "ckpt_init.pt")
    if stage == 1 and not path.exists():
        return False
    weights = torch.load(path, map_location="cpu", weights_only=False)["ema"]
    model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("dit.")}, strict=False)
    return True


def make_optimizer(model, stage, args):
    """AdamW over what the stage trains (stage 1: speaker encoder and masker; stage 2: the DiT), with
    everything else frozen. Returns those parameters and the optimizer."""
    for p in model.parameters():
        p.requires_grad_(False)
    stage1 = [model.speaker, model.masker] + ([model.classifier] if model.classifier is not None else [])
    params = [p for m in (stage1 if stage == 1 else [model.dit]) for p in m.parameters()]
    for p in params:
        p.requires_grad_(True)
    return params, torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.95))


def resume_state(run, ckpt, optimizer, ema):
    """Where ckpt left the stage: its optimizer, EMA and this rank's RNG state, and (step, best, minutes)."""
    optimizer.load_state_dict(ckpt["optimizer"])
    ema.load_state_dict(ckpt["ema"])
    set_rng_state(ckpt["rng"][run.rank] if isinstance(ckpt["rng"], list) else ckpt["rng"])  # this rank's own
    return ckpt["step"], ckpt["best_val"], ckpt.get("minutes", 0.0)


def out_of_time(run, minutes, max_minutes):
    """Whether the stage has spent its budget; under DDP rank 0's clock decides, so every rank stops at once."""
    stop = torch.tensor(float(max_minutes is not None and minutes > max_minutes))
    if run.ddp and max_minutes is not None:
        stop = stop.to(run.device)
        dist.broadcast(stop, 0)
    return bool(stop.item())


def train_step(run, net, batch, optimizer, params, lr, stage):
    """One step of AdamW at learning rate lr, gradients clipped. Returns the batch's loss."""
    device, args = run.device, run.args
    for g in optimizer.param_groups:
        g["lr"] = lr
    with autocast(device, args.amp):
        speaker = torch.tensor([run.classes[s] for s in batch["speaker"]], device=device) \
            if run.classes and stage == 1 else None  # only stage 1 trains the classifier
        loss = net(batch["mix"].to(device), batch["target"].to(device), batch["enroll"].to(device),
                   batch["enroll_lengths"].to(device), stage=stage, lengths=batch["lengths"].to(device), speaker=speaker)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
    optimizer.step()
    return loss.item()


def train_stage(run, model, stage, ckpt, train_set):
    """Stage 1 trains the speaker encoder and the masker; stage 2 a fresh DiT on stage 1's best encoder
    and masker, which stay frozen. ckpt: the checkpoint to resume when it is of this stage."""
    args, master = run.args, run.master
    resuming = ckpt is not None and ckpt["stage"] == stage
    from_checkpoint = not resuming and start_weights(run, model, stage)
    params, optimizer = make_optimizer(model, stage, args)
    ema = copy.deepcopy(model).eval()
    step, best, minutes_before = resume_state(run, ckpt, optimizer, ema) if resuming else (0, -float("inf"), 0.0)
    max_steps = args.max_steps[min(stage, len(args.max_steps)) - 1]
    max_minutes = args.max_minutes and args.max_minutes[min(stage, len(args.max_minutes)) - 1]
    net = torch.compile(model) if args.compile else model
    net = DDP(net, device_ids=[run.device.index] if run.device.type == "cuda" else None) if run.ddp else net

    t_start, first_step, seen, log = time.time(), step, 0, []
    minutes = lambda: minutes_before + (time.time() - t_start) / 60  # this stage's wall time, over resumes
    checkpoint = lambda: validate_and_save(run, model, ema, optimizer, stage, step, best, log, minutes())
    if from_checkpoint:  # step 0 is a candidate too: the masker it starts from (stage 2: zero velocity returns it)
        best = checkpoint()
    stream = batches(train_set, args, step, run.rank, run.world)
    while step < max_steps:
        if out_of_time(run, minutes(), max_minutes):
            if master:
                print(f"stage {stage}: time budget of {max_minutes} min reached at step {step}")
            if step != first_step and step % args.eval_every:  # else this step's checkpoint exists
                best = checkpoint()
            break
        batch, lr = next(stream), get_lr(step, max_steps, args)
        log.append(train_step(run, net, batch, optimizer, params, lr, stage))
        update_ema(ema, model, step, args.ema_decay)
        step += 1
        seen += len(batch["mix"]) * run.world
        if master and (step % args.log_every == 0 or step == max_steps):
            elapsed = time.time() - t_start
            eta = elapsed / (step - first_step) * (max_steps - step)
            print(f"stage {stage} step {step}/{max_steps} loss {np.mean(log[-args.log_every:]):.5f} "
                  f"lr {lr:.2e} {seen / elapsed:.1f} ex/s eta {eta / 60:.1f} min", flush=True)
        if step % args.eval_every == 0 or step == max_steps:
            best = checkpoint()
    if stage == 1 and step == 0:  # every rank exits, none is left waiting at a barrier
        raise SystemExit("error: stage 1 ran no step (--max-steps 0?), so stage 2 has no masker to start from")
    if stage == 1 and master:  # stage 2 starts from stage 1's best
        save_checkpoint(torch.load(run.out / "ckpt_best.pt", weights_only=False), run.out / "ckpt_stage1.pt")
    if run.ddp:
        dist.barrier()


def main(argv=None):
    run = setup_processes(parse_args(argv))  # one process, or one per GPU under torchrun
    args = run.args
    run.out, run.cfg, ckpt = open_run(run)  # a new run folder, or the run to resume
    root, train_set, run.dev_set = load_data(args, run.cfg)
    run.cfg, run.classes = speaker_classes(run.cfg, train_set, args.stage)

    # the model, and the stages left to train
    torch.manual_seed(args.seed + run.rank)
    model = Mask2Flow(run.cfg).to(run.device)
    stages = {"1": [1], "2": [2], "all": [1, 2]}[args.stage]
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        stages = [s for s in stages if s >= ckpt["stage"]]
    if run.master:
        n = sum(p.numel() for p in model.parameters())
        print(f"{args.config} model, {n / 1e6:.2f}M parameters, start={run.cfg.start}, on {run.device} x{run.world}; "
              f"{len(train_set)} training examples from {root}; writing {run.out}")
        if args.voices != 1:
            voices = train_set.voices()
            print(f"training voices ({args.voices:g} of the split's): {len(voices)}, {len(train_set.utts)} speakers: "
                  f"{' '.join(voices)}")
    for stage in stages:
        train_stage(run, model, stage, ckpt, train_set)
        ckpt = None
    if run.ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    except (data.DataError, data.AudioError) as e:  # e.g. a file that vanished mid-run
        sys.exit(f"error: {e}; continue with --resume once it is fixed")
    except KeyboardInterrupt:
        sys.exit("interrupted: continue with --resume")
