"""
Extract a target speaker from a mixture with a trained Mask2Flow-TSE checkpoint.

    python sample.py mix.wav ref.wav                   # -> mix_extracted.wav, one Euler step
    python sample.py mix.wav ref.wav --steps 0 -o out.wav   # stage 1 alone (mask-only)
    python sample.py --eval --data demo                # SI-SDR(i), PESQ, ESTOI, speaker similarity
    python sample.py --bench                           # real-time factors, CPU and CUDA

Any sample rate, stereo, quiet or long recordings: audio is resampled to the model's rate,
downmixed, processed in overlapping chunks and written back at the input's rate and length.
"""

import argparse
import json
import math
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from scipy.stats import t as student_t

from data import AudioError, DataError, LibriMix, libri2mix_dir, load_audio, resolve_root
from mask2flow import CONFIGS, Config, Mask2Flow, count_parameters, si_sdr

REPO = Path(__file__).resolve().parent  # runs/ and pretrained/ are the repository's, from any directory
PRETRAINED = REPO / "pretrained" / "demo.pt"
RUNS = REPO / "runs"
MIN_REF_SECONDS = 0.5  # shorter enrollments carry too little of the voice to identify it
SILENT_PEAK = 10 ** (-80 / 20)  # a recording whose peak is below -80 dBFS is treated as silence
CHUNK_SECONDS = 10.0  # long recordings are extracted in windows of this length, which bounds memory
OVERLAP = 0.1  # fraction of each window cross-faded with its neighbour
FULL_SCALE = 0.99  # outputs louder than this are scaled down rather than clipped
BENCH_SECONDS = 4.0  # length of the benchmark's input
SPLIT_LABELS = {"test-seen": "seen speakers, held-out sentences", "test": "unseen speakers",
                "dev": "unseen speakers (validation)"}
NOT_INSTALLED = "n/a (pip install -r requirements-eval.txt)"


class InputError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def steps_label(k):
    return "mask-only" if k == 0 else f"{k} step{'s' * (k > 1)}"


# -----------------------------------------------------------------------------
# checkpoint and device


def find_checkpoint(runs=RUNS, pretrained=PRETRAINED):
    """The newest finished Mask2Flow model among runs/*/ckpt_best.pt (start 'masked', stage 2), else the
    shipped pretrained/demo.pt; never a baseline or a stage-1 model. Prints which one, and why."""
    found = []
    for path in Path(runs).glob("*/ckpt_best.pt"):
        try:  # mmap: the weights are not read, only the config and the stage
            ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
        except Exception:
            continue  # not a checkpoint: never a candidate
        if isinstance(ckpt, dict) and ckpt.get("stage") == 2 and ckpt.get("config", {}).get("start") == "masked":
            found.append((path.stat().st_mtime, path, ckpt.get("step")))
    if found:
        _, path, step = max(found)
        print(f"using {path}: the newest Mask2Flow model in {runs} (stage 2, step {step}); "
              f"baselines and stage-1-only runs are never picked; --ckpt chooses another")
        return path
    if Path(pretrained).exists():
        print(f"using the shipped {pretrained}: no run in {runs} has a Mask2Flow stage 2 yet; --ckpt chooses another")
        return Path(pretrained)
    raise InputError(f"no Mask2Flow checkpoint in {runs}/*/ckpt_best.pt or at {pretrained}: train one with "
                     "`python data.py demo && python train.py --data demo`, or pass --ckpt PATH")


def load_model(path, device):
    """Rebuild the model from the checkpoint alone: its config and its EMA weights."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    first_line = lambda e: (str(e).strip().splitlines() or [type(e).__name__])[0]
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)  # holds RNG states: load trusted files only
    except Exception as e:  # a corrupt or foreign file fails in many ways, all meaning "not a checkpoint"
        raise InputError(f"cannot read checkpoint {path}: {first_line(e)}") from None
    if not isinstance(ckpt, dict) or not {"config", "ema"} <= ckpt.keys():
        raise InputError(f"{path} is not a Mask2Flow checkpoint: it lacks the 'config' and 'ema' that train.py saves")
    try:
        model = Mask2Flow(Config(**ckpt["config"]))
        model.load_state_dict(ckpt["ema"])
    except (TypeError, RuntimeError, AssertionError) as e:
        raise InputError(f"checkpoint {path} does not fit this mask2flow.py: {first_line(e)}") from None
    stage = ckpt.get("stage", 2)
    print(f"checkpoint: {path} (stage {stage}, step {ckpt.get('step', '?')}, "
          f"{count_parameters(model) / 1e6:.2f}M parameters)")
    if stage == 1:
        print("note: this checkpoint trained stage 1 only; its flow is untrained (zero velocity), so steps > 0 "
              "add nothing to stage 1")
    return model.to(device).eval(), ckpt


def get_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here")
    return torch.device(name)


def device_name(device):
    """What the numbers were measured on: the GPU's name, or the CPU model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    n = torch.get_num_threads()
    return f"{cpu}, {n} thread{'s' * (n > 1)}"

# -----------------------------------------------------------------------------
# extraction of a whole recording


def extract_long(model, mix, ref, steps, chunk):
    """mix (L,), ref (Le,) float32 at the model's rate -> (L,) estimate of the ref's speaker.
    Windows of `chunk` samples overlap by OVERLAP and are cross-faded (normalised overlap-add),
    so memory stays bounded; a recording of at most one chunk is extracted in one call."""
    device = next(model.parameters()).device
    ref = torch.from_numpy(ref)[None].to(device)  # (1, Le)
    run = lambda x: model.extract(torch.from_numpy(x)[None].to(device), ref, steps=steps)[0].cpu().numpy()
    L = len(mix)
    if L <= chunk:
        return run(mix)
    fade = max(1, int(chunk * OVERLAP))
    starts = list(range(0, L - chunk, chunk - fade)) + [L - chunk]  # the last window ends at L
    ramp = ((np.arange(fade) + 0.5) / fade).astype(np.float32)  # never 0: every sample has weight
    out, weight = np.zeros(L, np.float32), np.zeros(L, np.float32)
    for i, s in enumerate(starts):
        w = np.ones(chunk, np.float32)
        if i > 0:
            w[:fade] = ramp
        if i < len(starts) - 1:
            w[-fade:] = ramp[::-1]
        out[s:s + chunk] += w * run(mix[s:s + chunk])
        weight[s:s + chunk] += w
    return out / weight


def fit_full_scale(wav):
    """Scale down (never clip) a waveform whose peak exceeds FULL_SCALE. Returns it and the gain."""
    peak = float(np.abs(wav).max(initial=0.0))
    gain = FULL_SCALE / peak if peak > FULL_SCALE else 1.0
    return wav * gain, gain


def output_path(args):
    """Where to write: -o, else <mix>_extracted.wav beside the mix; never one of the inputs."""
    out = Path(args.output) if args.output else Path(args.mix).with_name(Path(args.mix).stem + "_extracted.wav")
    for given in (args.mix, args.ref):
        if out.exists() and Path(given).exists() and out.samefile(given):
            raise InputError(f"refusing to overwrite the input {given}: choose another -o")
    if not out.parent.is_dir():
        raise InputError(f"cannot write {out}: folder {out.parent} does not exist")
    if out.suffix[1:].upper() not in sf.available_formats():
        raise InputError(f"cannot write {out}: unknown audio format {out.suffix!r} (use .wav or .flac)")
    return out


def extract_file(args):
    out = output_path(args)
    device = get_device(args.device)
    model, _ = load_model(args.ckpt or find_checkpoint(), device)
    sr = model.cfg.sample_rate
    mix, mix_rate = load_audio(args.mix, sr, return_rate=True)
    ref, _ = load_audio(args.ref, sr, return_rate=True)
    for path, wav in ((args.mix, mix), (args.ref, ref)):
        if np.abs(wav).max() < SILENT_PEAK:
            raise InputError(f"audio file is silent (peak below -80 dBFS): {path}")
    if len(ref) < MIN_REF_SECONDS * sr:
        raise InputError(f"reference {args.ref} is {len(ref) / sr:.2f} s long; at least "
                         f"{MIN_REF_SECONDS} s of the target speaker is needed")
    info = sf.info(args.mix)
    print(f"mix: {info.frames / info.samplerate:.2f} s at {info.samplerate} Hz, {info.channels} channel(s); "
          f"extracting ({steps_label(args.steps)}) on {device}")

    t0 = time.time()
    est = extract_long(model, mix, ref, args.steps, int(args.chunk_seconds * sr))
    if mix_rate != sr:
        est = resample_poly(est, mix_rate, sr).astype(np.float32)
    est = np.pad(est, (0, max(0, info.frames - len(est))))[:info.frames]  # exactly the input's length
    est, gain = fit_full_scale(est)
    if gain < 1:
        print(f"note: the output would exceed full scale; scaled down by {-20 * math.log10(gain):.1f} dB")
    subtype = info.subtype if sf.check_format(out.suffix[1:].upper(), info.subtype) else None
    try:
        sf.write(out, est, mix_rate, subtype=subtype)
    except (OSError, RuntimeError) as e:  # soundfile's errors are RuntimeErrors
        raise InputError(f"cannot write {out}: {' '.join(str(e).split())}") from None
    print(f"wrote {out} ({len(est) / mix_rate:.2f} s at {mix_rate} Hz, mono) in {time.time() - t0:.1f} s")

# -----------------------------------------------------------------------------
# evaluation of a whole split

METRICS = {"si_sdr": "SI-SDR (dB)", "si_sdri": "SI-SDRi (dB)", "pesq": "PESQ-WB", "estoi": "ESTOI",
           "spk_sim": "spk sim"}


def optional_metrics(sr):
    """PESQ (wide band), ESTOI and speaker similarity from the packages of requirements-eval.txt:
    name -> fn(est, target), or None where the package is missing. The speaker encoder is
    resemblyzer's pretrained one (bundled weights), independent of the encoder we train."""
    fns = {"pesq": None, "estoi": None, "spk_sim": None}
    try:
        from pesq import pesq
        fns["pesq"] = lambda est, target: pesq(sr, target, est, "wb")
    except ImportError:
        pass
    try:
        from pystoi import stoi
        fns["estoi"] = lambda est, target: stoi(target, est, sr, extended=True)
    except ImportError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
            from resemblyzer import VoiceEncoder, preprocess_wav
        encoder = VoiceEncoder("cpu", verbose=False)
        embed = lambda wav: encoder.embed_utterance(preprocess_wav(wav, source_sr=sr))  # unit norm
        last = {}  # the target's embedding, computed once for all the systems compared on it

        def spk_sim(est, target):
            if last.get("target") is not target:
                last.update(target=target, embedding=embed(target))
            return embed(est) @ last["embedding"]  # cosine
        fns["spk_sim"] = spk_sim
    except (ImportError, OSError, RuntimeError):  # not installed, or its weights cannot be loaded
        pass
    return fns


def safe(fn, *args):
    """A metric that cannot be computed for one item (e.g. PESQ finds no speech) is NaN, not a crash."""
    try:
        return float(fn(*args))
    except Exception:
        return float("nan")


def mean_ci(values):
    """Mean, half-width of the 95% confidence interval (Student t) and count of the finite values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    half = student_t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else None
    return {"mean": float(x.mean()), "ci95": None if half is None else float(half), "n": len(x)}


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def cell(m):
    if m is None or isinstance(m, str):
        return m or "–"
    return f"{m['mean']:.2f}" + (f" ± {m['ci95']:.2f}" if m["ci95"] is not None else "")


def evaluate(args, steps):
    device = get_device(args.device)
    ckpt_path = Path(args.ckpt) if args.ckpt else find_checkpoint()
    model, ckpt = load_model(ckpt_path, device)
    sr, chunk = model.cfg.sample_rate, int(args.chunk_seconds * model.cfg.sample_rate)
    root = resolve_root(args.data)
    data_name = args.data if args.data in ("demo", "LibriMix") else Path(args.data).resolve().name
    mix_type = "noisy" if args.noisy else "clean"
    out_dir = Path(args.output) if args.output else ckpt_path.parent
    has_seen = any(libri2mix_dir(root).glob("wav*/*/metadata/mixture_test-seen_*.csv"))  # the demo corpus
    fns = optional_metrics(sr)
    missing = {key for key, fn in fns.items() if fn is None}
    masked = model.cfg.start == "masked"
    systems = {"mixture": None, "mask-only" if masked else f"x0 = {model.cfg.start}": 0,
               **{f"{'Mask2Flow' if masked else 'flow'} {steps_label(k)}": k for k in steps}}
    sdr = lambda est, target: si_sdr(torch.from_numpy(est)[None], torch.from_numpy(target)[None]).item()

    for split in args.split or (["test-seen", "test"] if has_seen else ["test"]):
        dataset = LibriMix(root, split=split, mix_type=mix_type, segment=None, sample_rate=sr, seed=0)
        n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        scores = {name: {key: [] for key in METRICS} for name in systems}
        torch.manual_seed(0)  # a "noise" start draws x0 at random
        t0 = time.time()
        for i in range(n):
            item = dataset[i]
            mix, target, ref = (item[k].numpy().astype(np.float32) for k in ("mix", "target", "enroll"))
            sdr_mix = sdr(mix, target)
            for name, k in systems.items():
                est = mix if k is None else extract_long(model, mix, ref, k, chunk)
                values = {"si_sdr": sdr(est, target), **{key: safe(fn, est, target) for key, fn in fns.items() if fn}}
                values["si_sdri"] = values["si_sdr"] - sdr_mix
                for key, value in values.items():
                    scores[name][key].append(value)
            eta = (time.time() - t0) / (i + 1) * (n - i - 1)
            print(f"\r{split}: {i + 1}/{n} examples, {time.time() - t0:.0f} s, ETA {eta:.0f} s ",
                  end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)

        report = {"data": data_name, "root": str(root), "split": split, "label": SPLIT_LABELS.get(split, split),
                  "mix_type": mix_type, "n": n, "checkpoint": str(ckpt_path), "stage": ckpt.get("stage"),
                  "step": ckpt.get("step"), "config": ckpt["config"],
                  "parameters": {"total": count_parameters(model),
                                 **{part: count_parameters(getattr(model, part)) for part in ("speaker", "masker", "dit")}},
                  "device": str(device), "machine": device_name(device),
                  "platform": platform.platform(), "torch": torch.__version__,
                  "seconds": round(time.time() - t0, 1), "systems": {}}
        for name, k in systems.items():
            metrics = {key: NOT_INSTALLED if key in missing else mean_ci(v) for key, v in scores[name].items()}
            report["systems"][name] = {"steps": k, "metrics": metrics}
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"eval_{data_name}_{split}_{mix_type}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\n### {data_name} {split} ({report['label']}), {mix_type}, n = {n}, mean ± 95% CI\n")
        print(row(["system", "steps", *METRICS.values()]))
        print(row(["---"] * (len(METRICS) + 2)))
        for name, s in report["systems"].items():
            print(row([name, "–" if s["steps"] is None else s["steps"], *map(cell, s["metrics"].values())]))
        print(f"\nwrote {path}")

# -----------------------------------------------------------------------------
# speed


def bench(args, steps):
    devices = ([torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
               if args.device == "auto" else [get_device(args.device)])
    g = torch.Generator().manual_seed(0)
    rows = []
    for name in args.configs:
        cfg = CONFIGS[name]
        mix = 0.1 * torch.randn(1, int(BENCH_SECONDS * cfg.sample_rate), generator=g)
        ref = 0.1 * torch.randn(1, int(3.0 * cfg.sample_rate), generator=g)
        model = Mask2Flow(cfg).eval()  # untrained weights take the same time as trained ones
        for device in devices:
            model.to(device)
            r = {"config": name, "parameters": count_parameters(model), "device": str(device),
                 "device_name": device_name(device), "rtf": {}, "peak_mib": None}
            for k in [0] + steps:
                model.extract(mix.to(device), ref.to(device), steps=k)  # warm-up
                if device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    model.extract(mix.to(device), ref.to(device), steps=k)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
                if device.type == "cuda":
                    r["peak_mib"] = max(r["peak_mib"] or 0, torch.cuda.max_memory_allocated() / 2**20)
                r["rtf"][k] = float(np.median(times)) / BENCH_SECONDS  # the median shrugs off a busy moment
                print(f"{name} on {device}, {steps_label(k)}: RTF {r['rtf'][k]:.4f}", file=sys.stderr)
            rows.append(r)

    ratios = [(steps[0], 0)] + [(k, steps[0]) for k in steps[1:]]  # 1 step / mask-only, N steps / 1 step
    print(f"\nreal-time factor (compute time / audio time, lower is faster) on {BENCH_SECONDS:.0f} s of audio, "
          f"median of {args.repeats} runs after a warm-up\n")
    print(row(["config", "params", "device", *map(steps_label, [0] + steps),
               *[f"{steps_label(a)} / {steps_label(b)}" for a, b in ratios], "peak GPU MiB"]))
    print(row(["---"] * (4 + 2 * len(steps) + 1)))
    for r in rows:
        rtf = r["rtf"]
        print(row([r["config"], f"{r['parameters'] / 1e6:.2f}M", f"{r['device']}: {r['device_name']}",
                   *[f"{rtf[k]:.4f}" for k in [0] + steps], *[f"{rtf[a] / rtf[b]:.2f}x" for a, b in ratios],
                   "–" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"]))
    out = Path(args.output) if args.output else RUNS / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"audio_seconds": BENCH_SECONDS, "repeats": args.repeats, "steps": steps,
                               "platform": platform.platform(), "torch": torch.__version__, "rows": rows},
                              indent=2) + "\n")
    print(f"\nwrote {out}")

# -----------------------------------------------------------------------------


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mix", nargs="?", help="the mixture (any rate, mono or stereo)")
    p.add_argument("ref", nargs="?", help="a reference recording of the speaker to extract (>= 0.5 s)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="where to write: the extracted audio (default <mix>_extracted.wav, never an input); "
                   "with --eval the folder of the JSON results (default: the checkpoint's folder); "
                   "with --bench the JSON table (default <repo>/runs/bench.json)")
    p.add_argument("--ckpt", metavar="PATH", help="checkpoint (default: the newest finished Mask2Flow model, "
                   "runs/*/ckpt_best.pt of stage 2 with start masked, else pretrained/demo.pt)")
    p.add_argument("--steps", type=int, metavar="N", default=1,
                   help="Euler steps of the flow; 0 = mask-only (default 1)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto = cuda when present (--bench: cpu and cuda)")
    p.add_argument("--chunk-seconds", type=float, metavar="S", default=CHUNK_SECONDS,
                   help=f"process long recordings in windows of this length, cross-faded (default {CHUNK_SECONDS:g})")
    p.add_argument("--eval", action="store_true", help="evaluate a whole split instead of one file")
    p.add_argument("--data", default="demo", metavar="demo|LibriMix|PATH",
                   help="--eval: demo (<repo>/data/demo), LibriMix ($LIBRIMIX or <repo>/LibriMix) or a LibriMix-layout folder")
    p.add_argument("--split", nargs="+", metavar="NAME",
                   help="--eval: splits (default: test-seen and test where the corpus has test-seen, as the demo "
                   "corpus does; else test)")
    p.add_argument("--noisy", action="store_true", help="--eval: noisy mixtures (mix_both) instead of clean")
    p.add_argument("--limit", type=int, metavar="N",
                   help="--eval: only the first N examples of each split (two per mixture: each speaker as the target)")
    p.add_argument("--eval-steps", type=int, nargs="+", metavar="N",
                   help="step counts compared with mask-only by --eval (default 1 4) and --bench (default 1 8)")
    p.add_argument("--bench", action="store_true", help="measure real-time factors instead")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), metavar="NAME", default=list(CONFIGS),
                   help=f"--bench: model configs to time, of {list(CONFIGS)} (default all)")
    p.add_argument("--repeats", type=int, metavar="N", default=5,
                   help="--bench: timed runs per measurement, after one warm-up; the median is reported (default 5)")
    return p


def main(argv=None):
    """Run the command line; returns the exit status (2 with one `error:` line for bad input)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if not (args.eval or args.bench) and (args.mix is None or args.ref is None):
        parser.error("give a mixture and a reference (python sample.py mix.wav ref.wav), or --eval, or --bench")
    if min(args.eval_steps or [1]) < 1 or args.repeats < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--eval-steps, --repeats and --limit must be at least 1")
    if args.steps < 0 or args.chunk_seconds < 1:
        parser.error("--steps must be 0 (mask-only) or more, --chunk-seconds at least 1")
    try:
        if args.bench:
            bench(args, steps=args.eval_steps or [1, 8])  # the paper's Figure 2 runs 8 steps
        elif args.eval:
            evaluate(args, steps=args.eval_steps or [1, 4])
        else:
            extract_file(args)
    except (AudioError, DataError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
