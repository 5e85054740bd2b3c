r"""
Training steps on generated batches, for two questions a GPU answers in minutes:

    python docs/research/train_bench.py speed --config paper --batch 8 32 --device cuda
        seconds per training step of each stage at each batch size, fp32 and bf16 autocast
    python docs/research/train_bench.py precision --config small --steps 400 --device cuda
        stage-1 and stage-2 loss curves of fp32 and bf16 autocast from the same weights on the same
        batches: mixed precision may be used only where the curves agree

Batches are made on the device, so no corpus is needed: each "voice" is a harmonic tone with its
own pitch, vocal-tract-like spectral envelope and syllable rhythm; a mixture holds two voices
at -5..5 dB, the enrollment is another utterance of the target voice. train.py's optimiser
settings (AdamW 0.9/0.95, weight decay 0.01, clip 1.0, lr 1e-3 after 200 warm-up steps) are used.
Writes one JSON (--out) with every number it prints.
"""

import argparse
import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from mask2flow import CONFIGS, Mask2Flow, count_parameters  # noqa: E402
from sample import device_name  # noqa: E402

SR = 16000


def voices(n, seconds, g, device):
    """n voices: (pitch Hz, formant Hz x3) drawn from g; a waveform of each is made by utterance()."""
    pitch = 80 + 220 * torch.rand(n, 1, generator=g)
    formants = torch.stack([300 + 600 * torch.rand(n, generator=g), 900 + 1400 * torch.rand(n, generator=g),
                            2200 + 1300 * torch.rand(n, generator=g)], 1)
    return pitch.to(device), formants.to(device)


def utterance(pitch, formants, seconds, g, device):
    """(n, L) harmonic speech-like waveforms: pitch contour, formant envelope, syllable rhythm."""
    n, L = pitch.shape[0], int(seconds * SR)
    t = torch.arange(L, device=device) / SR
    wobble = 1 + 0.08 * torch.sin(2 * math.pi * (0.5 + torch.rand(n, 1, generator=g).to(device)) * t)
    phase = 2 * math.pi * torch.cumsum(pitch * wobble, dim=1) / SR  # (n, L)
    k = torch.arange(1, 40, device=device)  # harmonics
    freq = pitch[:, :, None] * k  # (n, 1, K)
    envelope = sum(torch.exp(-((freq - f[:, None, None]) / 150) ** 2) for f in formants.T) + 0.02  # (n, 1, K)
    envelope = envelope * (freq < SR / 2)
    wave = (envelope * torch.sin(phase[:, :, None] * k)).sum(-1)  # (n, L)
    rate = 3 + 3 * torch.rand(n, 1, generator=g).to(device)  # syllables per second
    syllables = torch.relu(torch.sin(2 * math.pi * rate * t + 6.28 * torch.rand(n, 1, generator=g).to(device)))
    wave = wave * syllables
    return wave / wave.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)


def batch(B, g, device, seconds=3.0):
    """mix, target, enrollment (B, L): two voices at -5..5 dB; the enrollment another utterance."""
    pitch, formants = voices(2 * B, seconds, g, device)
    speech = utterance(pitch, formants, seconds, g, device)  # (2B, L)
    enroll = utterance(pitch[:B] * (1 + 0.05 * torch.randn(B, 1, generator=g).to(device)), formants[:B],
                       seconds, g, device)
    target, other = speech[:B], speech[B:]
    db = (10 * torch.rand(B, 1, generator=g) - 5).to(device)
    mix = target + other * 10 ** (-db / 20)
    return 0.05 * mix, 0.05 * target, enroll


def make_model(cfg, device, seed=0):
    torch.manual_seed(seed)
    return Mask2Flow(cfg).to(device)


def optimiser_step(model, stage, precision, device, warmup=200, lr=1e-3):
    """train.py's optimisation of one stage as a function of a batch: returns step(batch) -> loss."""
    params = [p for m in ((model.speaker, model.masker) if stage == 1 else (model.dit,)) for p in m.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    count = [0]

    def step(b):
        mix, target, enroll = b
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (count[0] + 1) / warmup)
        with amp:
            loss = model(mix, target, enroll, stage=stage)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        count[0] += 1
        return loss.item()  # waits for the device
    return step


def train_steps(model, stage, batches, precision, device, log):
    step, losses = optimiser_step(model, stage, precision, device), []
    for i, b in enumerate(batches):
        losses.append(step(b))
        if (i + 1) % log == 0:
            print(f"  stage {stage} {precision} step {i + 1}: loss {sum(losses[-log:]) / log:.5f}", flush=True)
    return losses


def precision(args, cfg, device):
    """fp32 and bf16 from the same initial weights on the same batches, stage 1 then stage 2."""
    g = torch.Generator().manual_seed(0)
    batches = [batch(args.batch[0], g, device) for _ in range(args.steps)]
    curves = {}
    for stage in (1, 2):
        for prec in ("fp32", "bf16"):
            model = make_model(cfg, device)
            if stage == 2:  # the same trained stage 1 under both precisions
                model.load_state_dict(stage1, strict=False)
            curves[f"stage{stage}_{prec}"] = train_steps(model, stage, batches, prec, device, max(1, args.steps // 8))
            if stage == 1 and prec == "fp32":
                stage1 = {k: v for k, v in model.state_dict().items() if not k.startswith("dit.")}
    every = max(1, args.steps // 8)
    table = {name: [sum(c[i:i + every]) / len(c[i:i + every]) for i in range(0, len(c), every)]
             for name, c in curves.items()}
    print(f"\nmean loss per {every} steps, batch {args.batch[0]}, {args.config} on {device_name(device)}")
    for name, values in table.items():
        print(f"{name:12s} " + " ".join(f"{v:.5f}" for v in values))
    for stage in (1, 2):
        a, b = table[f"stage{stage}_fp32"], table[f"stage{stage}_bf16"]
        print(f"stage {stage}: loss fell {a[0] / a[-1]:.2f}x in fp32, {b[0] / b[-1]:.2f}x in bf16")
    return {"steps": args.steps, "batch": args.batch[0], "every": every, "mean_loss": table}


def speed(args, cfg, device):
    """Seconds per training step of each stage, precision and batch size (median after warm-up)."""
    rows = []
    g = torch.Generator().manual_seed(0)
    for B in args.batch:
        data = [batch(B, g, device) for _ in range(3)]
        for prec in args.precisions:
            for stage in (1, 2):
                step = optimiser_step(make_model(cfg, device), stage, prec, device)
                times = []
                for i in range(args.repeats + 3):  # 3 warm-up steps
                    t0 = time.perf_counter()
                    step(data[i % 3])
                    times.append(time.perf_counter() - t0)
                sec = sorted(times[3:])[args.repeats // 2]
                rows.append(dict(batch=B, precision=prec, stage=stage, seconds=sec, examples_per_s=B / sec))
                print(f"batch {B:3d} {prec} stage {stage}: {sec * 1000:.1f} ms/step, {B / sec:.0f} examples/s", flush=True)
    return {"rows": rows, "repeats": args.repeats}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["speed", "precision"])
    p.add_argument("--config", default="small", choices=list(CONFIGS))
    p.add_argument("--batch", type=int, nargs="+", default=[32], help="batch sizes (precision uses the first)")
    p.add_argument("--steps", type=int, default=400, help="precision: training steps per stage and precision")
    p.add_argument("--repeats", type=int, default=10, help="speed: timed steps per setting")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default=None, help="JSON file (default runs/train_bench_<what>_<config>.json)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but no CUDA GPU is visible")
    device = torch.device(args.device)
    cfg = CONFIGS[args.config]
    print(f"{args.config}, {count_parameters(Mask2Flow(cfg)) / 1e6:.1f}M parameters, "
          f"on {device_name(device)}, torch {torch.__version__}")
    result = {"what": args.what, "config": args.config, "device": device_name(device),
              "torch": torch.__version__, **(speed if args.what == "speed" else precision)(args, cfg, device)}
    out = Path(args.out or ROOT / "runs" / f"train_bench_{args.what}_{args.config}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
