"""
Train Mask2Flow-TSE in two stages, as the paper does:
  stage 1: speaker encoder + masker, loss || M * Y - S ||^2 (optionally - W * SI-SDR of its waveform)
  stage 2: the DiT flow, with stage 1 frozen, loss || v(x_t, t) - (x1 - x0) ||^2

    python train.py --data demo                      # the offline demo corpus (python corpus.py)
    python train.py --data LibriMix --config paper --device cuda
    torchrun --nproc_per_node 4 train.py --data LibriMix --config paper
    python train.py --out runs/NAME --resume         # continue where it stopped, with the run's settings

A run folder holds ckpt_last.pt (to resume), ckpt_best.pt (best dev SI-SDR of the current stage; in
stage 2, step 0 counts: the untrained flow returns stage 1's output), ckpt_stage1.pt (the masker
stage 2 starts from) and log.csv. Without --out, runs/ is the repository's.
"""

import argparse
import copy
import dataclasses
import math
import os
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
from common import (REPO, AudioError, DataError, InputError, append_row, checkpoint_config, get_device, model_weights,
                    read_checkpoint, read_csv, rng_state, save_checkpoint, set_rng_state, write_csv)
from mask2flow import CONFIGS, Config, Mask2Flow, si_sdr


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
            mix, target, ref = (ex[k][None].to(device) for k in ("mix", "target", "enroll"))
            scores["mixture"].append(si_sdr(mix, target).item())
            scores["mask"].append(si_sdr(model.extract(mix, ref, steps=0), target).item())
            scores["flow1"].append(si_sdr(model.extract(mix, ref, steps=1), target).item())
    model.train()
    return {k: float(np.mean(v)) for k, v in scores.items()}


def autocast(device, amp):
    """bf16 autocast on CUDA with --amp; fp32 otherwise."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()


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
        raise DataError(f"{len(dataset)} training examples, fewer than one batch of {per_step}")
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
    p.add_argument("--data", default="demo", help="demo (<repo>/data/demo), LibriMix ($LIBRIMIX or <repo>/LibriMix), a path")
    p.add_argument("--noisy", action="store_true", help="train on mix_both (noise) instead of mix_clean")
    p.add_argument("--freq", default="16k", choices=["16k", "8k"], help="which LibriMix wav folder to read")
    p.add_argument("--mode", default="min", choices=["min", "max"])
    p.add_argument("--train-split", default="train-100", help="e.g. train-100, train-360")
    p.add_argument("--dev-split", default="dev")
    p.add_argument("--segment", type=float, default=3.0, help="training crop, seconds")
    p.add_argument("--enroll-segment", type=float, default=4.0, help="training enrollment crop, seconds")
    p.add_argument("--dynamic-mix", action="store_true", help="train on mixtures drawn afresh from the train split's "
                   "s1/s2 sources every epoch (data.DynamicMix), not on its fixed mixtures; the flags below tune it")
    p.add_argument("--speed", type=float, nargs=2, default=list(data.SPEED), metavar=("LOW", "HIGH"),
                   help="speed perturbation range: new pseudo-speakers of each training voice")
    p.add_argument("--absent", type=float, default=0.0, metavar="SHARE", help="share with the target absent (silence)")
    p.add_argument("--three", type=float, default=0.0, metavar="SHARE", help="share with a second interferer")
    p.add_argument("--lowpass", type=float, default=0.0, metavar="SHARE", help="share low-passed at 3.5-7.5 kHz")
    p.add_argument("--light-noise", type=float, default=0.0, metavar="SHARE", help="share with noise 15-30 dB down")
    p.add_argument("--config", default=None, choices=list(CONFIGS),
                   help="model size preset (default small); with --stage1, only its DiT fields apply")
    p.add_argument("--stage", default=None, choices=["1", "2", "all"], help="stages to train (default all)")
    p.add_argument("--stage1", default=None, metavar="PATH", help="with --stage 2: start from this stage-1 checkpoint "
                   "(another run's ckpt_stage1.pt), e.g. for the --start mixture|noise baselines")
    p.add_argument("--out", default=None, help="run folder (default <repo>/runs/<data>-<config>-<start>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from ckpt_last.pt")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (default fp32, as always on the CPU)")
    p.add_argument("--batch-size", type=int, default=8, help="per process")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--max-steps", type=int, nargs="+", default=[20000], metavar="N", help="of stage 1, 2 (one: both)")
    p.add_argument("--max-minutes", type=float, nargs="+", metavar="M", help="wall-clock budget of stage 1, 2, over resumes")
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
    args.device = get_device(args.device).type  # auto: cuda when present
    if ddp:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if args.device == "cuda" else "cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        rank, world, device = 0, 1, torch.device(args.device)
    return SimpleNamespace(args=args, ddp=ddp, rank=rank, world=world, device=device, master=rank == 0)


def stage1_config(path, saved, preset, overrides):
    """The config of a stage 2 on the stage-1 checkpoint at path: its own, with the DiT of an explicit --config
    preset and the flags given; a flag for what stage 1 trained (front end, spk_*, mask_*) must agree with it."""
    conflicts = [f"--{k.replace('_', '-')} {v} (it has {getattr(saved, k)})" for k, v in overrides.items()
                 if (k in ("sample_rate", "n_fft", "hop", "alpha", "beta") or k.startswith(("spk_", "mask_")))
                 and v != getattr(saved, k)]
    if conflicts:
        raise InputError(f"--stage1 {path} was trained with other stage-1 settings: {', '.join(conflicts)}")
    dit = {k: getattr(preset, k) for k in ("patch", "dit_width", "dit_depth", "dit_heads", "mlp_ratio")} if preset else {}
    return dataclasses.replace(saved, **{**dit, **overrides})


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
        stage1 = read_checkpoint(args.stage1)
        cfg = stage1_config(args.stage1, checkpoint_config(stage1["config"]), preset, overrides)
    out = Path(args.out) if args.out else REPO / "runs" / f"{Path(args.data).name}-{args.config}-{cfg.start}"
    last = out / "ckpt_last.pt"
    if args.resume:
        ckpt = read_checkpoint(last)
        cfg = checkpoint_config(ckpt["config"])
        for k, v in ckpt["args"].items():  # a run resumes with its own data, stages and schedule
            if k == "stage" and args.stage not in (None, v):
                raise InputError(f"{out} trains --stage {v}, and a resumed run keeps its stages; train "
                                 f"another stage in a new run (--stage 2 --stage1 {out / 'ckpt_stage1.pt'} --out NEW)")
            if k not in ("resume", "out", "device", "workers", "log_every", "compile") and not (
                    k == "max_minutes" and args.max_minutes is not None):  # a budget given now replaces the run's
                setattr(args, k, v)
        saved_by = len(ckpt["rng"]) if isinstance(ckpt["rng"], list) else 1  # one RNG state per process
        if saved_by != run.world:
            raise InputError(f"{last} was written by {saved_by} training process(es), this is {run.world}: "
                             f"resume with as many, so that each goes on with its own batches and random draws")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already holds a run; continue it with --resume or choose --out")
    args.stage = args.stage or "all"
    if ckpt is None and args.stage == "2" and stage1 is None:
        raise InputError("--stage 2 needs a stage-1 model: --stage1 PATH, or --out RUN --resume")
    if stage1 is not None and args.stage != "2":
        raise InputError("--stage1 PATH goes with --stage 2")
    if run.ddp:  # every rank has checked the folder before rank 0 writes to it
        dist.barrier()
    if run.master:
        if ckpt is not None:  # rows past the checkpoint will be written again
            rows = read_csv(out / "log.csv", ("stage", "step"))
            write_csv(out / "log.csv", [{**r, **{k: r.get(k, "") for k in ("minutes", "cpu_minutes")}} for r in rows
                                        if (int(r["stage"]), int(r["step"])) <= (ckpt["stage"], ckpt["step"])])
        out.mkdir(parents=True, exist_ok=True)
        if stage1 is not None:
            save_checkpoint(stage1, out / "ckpt_stage1.pt")
    if run.ddp:
        dist.barrier()
    return out, cfg, ckpt


def load_data(args, cfg):
    """The corpus folder, the training set (random crops and enrollments) and the dev set (whole)."""
    root = data.resolve_root(args.data)
    kw = dict(mix_type="noisy" if args.noisy else "clean", freq=args.freq, mode=args.mode,
              sample_rate=cfg.sample_rate, seed=args.seed)
    mixing = {k: getattr(args, k) for k in ("speed", "absent", "three", "lowpass", "light_noise")}
    if mixing != dict(speed=list(data.SPEED), absent=0, three=0, lowpass=0, light_noise=0) and not args.dynamic_mix:
        raise InputError("--speed, --absent, --three, --lowpass and --light-noise need --dynamic-mix "
                         "(they act on the mixing of its sources)")
    train_set = (data.DynamicMix if args.dynamic_mix else data.LibriMix)(root, args.train_split, segment=args.segment,
                 enroll_segment=args.enroll_segment, **kw, **(mixing if args.dynamic_mix else {}))
    return root, train_set, data.LibriMix(root, args.dev_split, segment=None, **kw)


def validate_and_save(run, model, ema, optimizer, stage, step, best, log, clock):
    """Dev SI-SDR of the EMA model, a log row with the clock, ckpt_last.pt, and ckpt_best.pt when it is the best of
    this stage. Every rank calls it (each saves its RNG state); rank 0 does the rest. Returns the best."""
    args, cfg = run.args, run.cfg
    rng = rng_states(run)
    if run.master:
        val = evaluate(ema, run.dev_set, args.eval_examples, run.device)
        score = val["mask"] if stage == 1 else val["flow1"]
        print(f"stage {stage} step {step} dev SI-SDR: mixture {val['mixture']:.2f} mask {val['mask']:.2f} "
              f"1-step {val['flow1']:.2f} dB" + (" (best)" if score > best else ""), flush=True)
        append_row(run.out / "log.csv", {"stage": stage, "step": step, "train_loss": float(np.mean(log)) if log else float("nan"),
                                         **{f"dev_{k}": v for k, v in val.items()}, **clock})
        best = max(best, score)
        data_opts = {k: getattr(args, k) for k in ("data", "noisy", "freq", "mode", "train_split", "dev_split",
                                                   "segment", "enroll_segment")}
        state = {"config": dataclasses.asdict(cfg), "model": model.state_dict(), "ema": ema.state_dict(),
                 "optimizer": optimizer.state_dict(), "stage": stage, "step": step, "best_val": best,
                 "val": val, **clock, "rng": rng, "data": data_opts, "args": vars(args)}
        if score == best:
            save_checkpoint(state, run.out / "ckpt_best.pt")
        save_checkpoint(state, run.out / "ckpt_last.pt")
    log.clear()  # train_loss is the mean since the last validation
    if run.ddp:
        dist.barrier()
    return best


def load_stage1(run, model):
    """Stage 2 starts from stage 1's best speaker encoder and masker (ckpt_stage1.pt) and a fresh DiT."""
    weights = model_weights(torch.load(run.out / "ckpt_stage1.pt", map_location="cpu", weights_only=False)["ema"])
    model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("dit.")}, strict=False)


def make_optimizer(model, stage, args):
    """AdamW over what the stage trains (stage 1: speaker encoder and masker; stage 2: the DiT), the rest
    frozen. Returns those parameters and the optimizer."""
    model.requires_grad_(False)
    parts = [model.speaker, model.masker] if stage == 1 else [model.dit]
    params = [p for m in parts for p in m.requires_grad_().parameters()]
    return params, torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.95))


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
        loss = net(batch["mix"].to(device), batch["target"].to(device), batch["enroll"].to(device),
                   batch["enroll_lengths"].to(device), stage=stage, lengths=batch["lengths"].to(device))
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
    if stage == 2 and not resuming:
        load_stage1(run, model)
    params, optimizer = make_optimizer(model, stage, args)
    ema = copy.deepcopy(model).eval()
    step, best, minutes_before, cpu = 0, -float("inf"), 0.0, 0.0
    if resuming:  # where ckpt left the stage: its optimizer, EMA and this rank's RNG state
        optimizer.load_state_dict(ckpt["optimizer"])
        ema.load_state_dict(model_weights(ckpt["ema"]))
        set_rng_state(ckpt["rng"][run.rank] if isinstance(ckpt["rng"], list) else ckpt["rng"])
        step, best, minutes_before = ckpt["step"], ckpt["best_val"], ckpt.get("minutes", 0.0)
        cpu = ckpt.get("cpu_minutes", 0.0)
    max_steps = args.max_steps[min(stage, len(args.max_steps)) - 1]
    max_minutes = args.max_minutes and args.max_minutes[min(stage, len(args.max_minutes)) - 1]
    net = torch.compile(model) if args.compile else model
    net = DDP(net, device_ids=[run.device.index] if run.device.type == "cuda" else None) if run.ddp else net

    t_start, first_step, seen, log = time.time(), step, 0, []
    minutes = lambda: minutes_before + (time.time() - t_start) / 60  # this stage's wall time, over resumes
    clock = lambda: {"minutes": minutes(), "cpu_minutes": cpu}  # wall time; CPU time of the training steps alone
    checkpoint = lambda: validate_and_save(run, model, ema, optimizer, stage, step, best, log, clock())
    if stage == 2 and not resuming:  # step 0 is a candidate too: its zero velocity returns the mask
        best = checkpoint()
    stream = batches(train_set, args, step, run.rank, run.world)
    while step < max_steps:
        if out_of_time(run, minutes(), max_minutes):
            if master:
                print(f"stage {stage}: time budget of {max_minutes} min reached at step {step}")
            if step != first_step and step % args.eval_every:  # else this step's checkpoint exists
                best = checkpoint()
            break
        tick, batch, lr = time.process_time(), next(stream), get_lr(step, max_steps, args)  # tick: CPU time
        log.append(train_step(run, net, batch, optimizer, params, lr, stage))
        update_ema(ema, model, step, args.ema_decay)
        cpu += (time.process_time() - tick) / 60  # of this process's threads, validation apart: bench.py --curve
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
    try:  # bad input: one line, before anything is trained
        run = setup_processes(parse_args(argv))  # one process, or one per GPU under torchrun
        run.out, run.cfg, ckpt = open_run(run)  # a new run folder, or the run to resume
        root, train_set, run.dev_set = load_data(run.args, run.cfg)
    except (InputError, DataError, AudioError) as e:
        raise SystemExit(f"error: {e}")

    # the model, and the stages left to train
    torch.manual_seed(run.args.seed + run.rank)
    model = Mask2Flow(run.cfg).to(run.device)
    stages = {"1": [1], "2": [2], "all": [1, 2]}[run.args.stage]
    if ckpt is not None:
        model.load_state_dict(model_weights(ckpt["model"]))
        stages = [s for s in stages if s >= ckpt["stage"]]
    if run.master:
        n = sum(p.numel() for p in model.parameters())
        print(f"{run.args.config} model, {n / 1e6:.2f}M parameters, start={run.cfg.start}, on {run.device} x{run.world}; "
              f"{len(train_set)} training examples from {root}; writing {run.out}")
    for stage in stages:
        train_stage(run, model, stage, ckpt, train_set)
        ckpt = None
    if run.ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    except (DataError, AudioError) as e:  # e.g. a file that vanished mid-run
        sys.exit(f"error: {e}; continue with --resume once it is fixed")
    except KeyboardInterrupt:
        sys.exit("interrupted: continue with --resume")
