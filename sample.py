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
import copy
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from scipy.stats import t as student_t

from data import SPEED, AudioError, DataError, DynamicMix, LibriMix, libri2mix_dir, load_audio, resolve_root
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
SPLIT_LABELS = {"test-seen": "seen speakers, held-out sentences", "test": "unseen real speakers",
                "test-synth": "unseen synthetic voices", "dev": "unseen speakers (validation)"}
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
    except ImportError as e:  # a model with resemblyzer's speaker encoder, without resemblyzer installed
        raise InputError(f"checkpoint {path}: {first_line(e)}") from None
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


def precision(device, bf16):
    """bf16 autocast when asked (meant for GPUs; test_sample.py bounds its distance from fp32), else fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def extract_batch(model, mixes, refs, steps, bf16=False):
    """Lists of mixtures (L_i,) and references (Le_i,), float32 -> list of (L_i,) estimates, in one
    zero-padded forward pass: the model masks the padding, so each equals its extraction alone."""
    device = next(model.parameters()).device
    pad = lambda xs: torch.nn.utils.rnn.pad_sequence([torch.from_numpy(x) for x in xs], batch_first=True).to(device)
    size = lambda xs: torch.tensor([len(x) for x in xs], device=device)
    with precision(device, bf16):
        est = model.extract(pad(mixes), pad(refs), size(refs), steps=steps, lengths=size(mixes))
    return [e[:len(m)].float().cpu().numpy() for e, m in zip(est, mixes)]


def extract_long(model, mix, ref, steps, chunk, bf16=False):
    """mix (L,), ref (Le,) float32 at the model's rate -> (L,) estimate of the ref's speaker.
    Windows of `chunk` samples overlap by OVERLAP and are cross-faded (normalised overlap-add),
    so memory stays bounded; a recording of at most one chunk is extracted in one call."""
    run = lambda x: extract_batch(model, [x], [ref], steps, bf16)[0]
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
    est = extract_long(model, mix, ref, args.steps, int(args.chunk_seconds * sr), args.bf16)
    if mix_rate != sr:
        est = resample_poly(est, mix_rate, sr).astype(np.float32)
    est = np.pad(est, (0, max(0, info.frames - len(est))))[:info.frames]  # exactly the input's length
    est, gain = fit_full_scale(est)
    if gain < 1:
        print(f"note: the output would exceed full scale; scaled down by {-20 * math.log10(gain):.1f} dB")
    # Keep the input's encoding when it is PCM or float and the output format takes it. A compressed
    # one (MP3, Vorbis) is no WAV encoding: write the format's default, 16-bit PCM for WAV and FLAC,
    # which every player reads and which is finer than a lossy input (the peak is <= FULL_SCALE: no clipping).
    fmt = out.suffix[1:].upper()
    pcm_or_float = info.subtype.startswith("PCM_") or info.subtype in ("FLOAT", "DOUBLE")
    subtype = info.subtype if pcm_or_float and sf.check_format(fmt, info.subtype) else sf.default_subtype(fmt)
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
    embed = resemblyzer_embedding(sr)
    if embed is not None:
        last = {}  # the target's embedding, computed once for all the systems compared on it

        def spk_sim(est, target):
            if last.get("target") is not target:
                last.update(target=target, embedding=embed(target))
            return embed(est) @ last["embedding"]  # cosine
        fns["spk_sim"] = spk_sim
    return fns


def resemblyzer_embedding(sr):
    """wav (numpy) -> resemblyzer's unit-norm speaker embedding (pretrained, bundled weights), or None
    when it is not installed or its weights cannot be loaded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
            from resemblyzer import VoiceEncoder, preprocess_wav
        encoder = VoiceEncoder("cpu", verbose=False)
    except (ImportError, OSError, RuntimeError):
        return None
    return lambda wav: encoder.embed_utterance(preprocess_wav(wav, source_sr=sr))


def safe(fn, *args):
    """A metric that cannot be computed for one item (e.g. PESQ finds no speech) is NaN, not a crash."""
    try:
        return float(fn(*args))
    except Exception:
        return float("nan")


def mean_ci(values, clusters=None):
    """Mean of the finite values with the half-width of its 95% interval, n (finite values) and
    n_failed (NaN or None: the metric failed there; excluded from the mean, never silently).
    `clusters` names each value's sampling unit (the mixture, whose two targets are not independent);
    by default every value is its own unit, which gives the plain Student t interval."""
    x = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    clusters = np.arange(len(x)) if clusters is None else np.asarray(clusters)
    assert clusters.shape == x.shape, f"{len(clusters)} cluster labels for {len(x)} values"
    ok = np.isfinite(x)
    n, x, clusters = int(ok.sum()), x[ok], clusters[ok]
    if n == 0:
        return {"mean": None, "ci95": None, "n": 0, "n_failed": len(ok), "clusters": 0}
    # cluster-robust t interval: Var(mean) = G/(G-1) * sum_g (sum_{i in g} (x_i - mean))^2 / n^2, t with G-1 dof
    resid = np.bincount(np.unique(clusters, return_inverse=True)[1].ravel(), weights=x - x.mean())
    G = len(resid)
    half = student_t.ppf(0.975, G - 1) * math.sqrt(G / (G - 1) * (resid ** 2).sum()) / n if G > 1 else None
    return {"mean": float(x.mean()), "ci95": None if half is None else float(half), "n": n,
            "n_failed": len(ok) - n, "clusters": G}


def to_json(obj, level=0):
    """json.dumps(obj, indent=2), except that a list of plain values stays on one line: a report's
    per-example scores are a few lines, not thousands."""
    pad, end = "\n" + "  " * (level + 1), "\n" + "  " * level
    if isinstance(obj, dict) and obj:
        return "{" + ",".join(f"{pad}{json.dumps(k)}: {to_json(v, level + 1)}" for k, v in obj.items()) + end + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[" + ",".join(pad + to_json(v, level + 1) for v in obj) + end + "]"
    return json.dumps(obj)


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def cell(m):
    """mean ± half-width, with n where the metric failed on some examples (those are not in the mean)."""
    if m is None or isinstance(m, str):
        return m or "–"
    value = "failed" if m["mean"] is None else f"{m['mean']:.2f}"
    value += f" ± {m['ci95']:.2f}" if m["ci95"] is not None else ""
    return value + (f" (n = {m['n']})" if m.get("n_failed") else "")


def evaluate(args, steps):
    device = get_device(args.device)
    ckpt_path = Path(args.ckpt) if args.ckpt else find_checkpoint()
    model, ckpt = load_model(ckpt_path, device)
    trained_with = ckpt.get("args") or {}  # train.py's arguments (none in a shipped checkpoint)
    heard = None  # the voices it trained on, when train.py --voices kept only some (results.py splits by them)
    if trained_with.get("voices", 1.0) < 1:
        w = trained_with
        try:
            heard = DynamicMix(resolve_root(w["data"]), w["train_split"], freq=w["freq"], mode=w["mode"],
                               seed=w["seed"], voices=w["voices"]).voices()
        except DataError as e:
            print(f"note: the voices it trained on are not reported ({e})", file=sys.stderr)
    sr, chunk = model.cfg.sample_rate, int(args.chunk_seconds * model.cfg.sample_rate)
    root = resolve_root(args.data)
    data_name = args.data if args.data in ("demo", "LibriMix") else Path(args.data).resolve().name
    mix_type = "noisy" if args.noisy else "clean"
    out_dir = Path(args.output) if args.output else ckpt_path.parent
    fns = optional_metrics(sr)
    missing = {key for key, fn in fns.items() if fn is None}
    masked = model.cfg.start == "masked"
    systems = {"mixture": None, "mask-only" if masked else f"x0 = {model.cfg.start}": 0,
               **{f"{'Mask2Flow' if masked else 'flow'} {steps_label(k)}": k for k in steps}}
    sdr = lambda est, target: si_sdr(torch.from_numpy(est)[None], torch.from_numpy(target)[None]).item()

    present = [s for s in ("test", "test-synth", "test-seen")  # the demo corpus has all three
               if any(libri2mix_dir(root).glob(f"wav*/*/metadata/mixture_{s}_*.csv"))]
    for split in args.split or present or ["test"]:
        dataset = LibriMix(root, split=split, mix_type=mix_type, segment=None, sample_rate=sr, seed=0)
        n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        scores = {name: {key: [] for key in METRICS} for name in systems}
        examples = {"mixture_id": [], "target_index": [], "speaker": []}  # who each score belongs to
        torch.manual_seed(0)  # a "noise" start draws x0 at random
        t0, t_model = time.time(), 0.0
        for first in range(0, n, args.batch_size):  # one padded forward pass per batch and system
            items = [dataset[i] for i in range(first, min(n, first + args.batch_size))]
            mixes, targets, refs = ([item[k].numpy().astype(np.float32) for item in items] for k in ("mix", "target", "enroll"))
            for key, column in examples.items():
                column.extend(item[key] for item in items)
            for name, k in systems.items():
                t1 = time.time()
                if k is None:
                    ests = mixes
                elif max(map(len, mixes)) <= chunk:
                    ests = extract_batch(model, mixes, refs, k, args.bf16)
                else:
                    ests = [extract_long(model, m, r, k, chunk, args.bf16) for m, r in zip(mixes, refs)]
                t_model += time.time() - t1
                for mix, target, est in zip(mixes, targets, ests):
                    values = {"si_sdr": sdr(est, target), **{key: safe(fn, est, target) for key, fn in fns.items() if fn}}
                    values["si_sdri"] = values["si_sdr"] - sdr(mix, target)
                    for key, value in values.items():  # to 1e-4, far below any difference reported; NaN -> None
                        scores[name][key].append(round(value, 4) if math.isfinite(value) else None)
            done = first + len(items)
            eta = (time.time() - t0) / done * (n - done)
            print(f"\r{split}: {done}/{n} examples, {time.time() - t0:.0f} s, ETA {eta:.0f} s ",
                  end="", file=sys.stderr, flush=True)
        print(f"\n{split}: the model extracted {n * (len(systems) - 1) / max(t_model, 1e-9):.1f} examples/s "
              f"(batch {args.batch_size}, {'bf16' if args.bf16 else 'fp32'})", file=sys.stderr)

        report = {"data": data_name, "root": str(root), "split": split, "label": SPLIT_LABELS.get(split, split),
                  "mix_type": mix_type, "n": n, "checkpoint": str(ckpt_path), "stage": ckpt.get("stage"),
                  "step": ckpt.get("step"), "seed": trained_with.get("seed"),
                  "trained_on": trained_with.get("stage1"), "voices": trained_with.get("voices", 1.0),
                  "speed": list(trained_with.get("speed", SPEED)), "trained_voices": heard,
                  "config": ckpt["config"],
                  "parameters": {"total": count_parameters(model),
                                 **{part: count_parameters(getattr(model, part)) for part in ("speaker", "masker", "dit")}},
                  "device": str(device), "machine": device_name(device),
                  "platform": platform.platform(), "torch": torch.__version__,
                  "seconds": round(time.time() - t0, 1), "model_seconds": round(t_model, 1),
                  "batch_size": args.batch_size, "bf16": args.bf16, "examples": examples, "systems": {}}
        for name, k in systems.items():  # intervals clustered by mixture: its two targets are not independent
            metrics = {key: NOT_INSTALLED if key in missing else mean_ci(v, examples["mixture_id"])
                       for key, v in scores[name].items()}
            report["systems"][name] = {"steps": k, "metrics": metrics,
                                       "scores": {key: v for key, v in scores[name].items() if key not in missing}}
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"eval_{data_name}_{split}_{mix_type}.json"
        path.write_text(to_json(report) + "\n")
        G = len(set(examples["mixture_id"]))
        print(f"\n### {data_name} {split} ({report['label']}), {mix_type}, n = {n} in {G} mixture{'s' * (G > 1)}, "
              "mean ± 95% interval clustered by mixture\n")
        print(row(["system", "steps", *METRICS.values()]))
        print(row(["---"] * (len(METRICS) + 2)))
        for name, s in report["systems"].items():
            print(row([name, "–" if s["steps"] is None else s["steps"], *map(cell, s["metrics"].values())]))
        for name, s in report["systems"].items():
            for key, m in s["metrics"].items():
                if isinstance(m, dict) and m["n_failed"]:
                    print(f"{METRICS[key]} of {name} failed on {m['n_failed']} of {n} examples: not in its mean")
        print(f"\nwrote {path}")

# -----------------------------------------------------------------------------
# speed


def bench_mode(bf16, compiled):
    """How a benchmark ran, as its report and results.py name it."""
    return ("bf16 autocast" if bf16 else "fp32") + (", torch.compile" if compiled else "")


# The presets before their CPU speed-up (--before): a BiLSTM masker after four 2-D convs, and for paper
# a wider one (512), DiT tokens of 4 frames instead of 8 and the speaker encoder at every frame.
BEFORE = {"small": dict(masker="lstm", mask_layers=4),
          "paper": dict(masker="lstm", mask_layers=4, mask_hidden=512, patch=4, spk_stride=1)}
COMPILED_PARTS = ("spec", "wav", "embed_speaker", "masker", "dit")


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


def bench(args, steps):
    devices = ([torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
               if args.device == "auto" else [get_device(args.device)])
    if args.compile and torch.device("cpu") in devices and not shutil.which(os.environ.get("CXX", "g++")):
        raise InputError("--compile on the cpu needs a C++ compiler (Debian: sudo apt-get install g++), "
                         "or time --device cuda alone")
    models = []  # (label, model, compiled, checkpoint); the presets untrained, as fast as trained
    for name, before in [(n, b) for n in args.configs for b in [False] + [True] * (args.before and n in BEFORE)]:
        model = Mask2Flow(dataclasses.replace(CONFIGS[name], **BEFORE[name]) if before else CONFIGS[name]).eval()
        models.append((f"{name}, before" if before else name, model, False, None))
    if args.ckpt:  # a trained model of any layout, named after its run folder
        model = load_model(args.ckpt, torch.device("cpu"))[0]
        models.append((Path(args.ckpt).resolve().parent.name, model, False, str(args.ckpt)))
    if args.compile:  # each timed beside its eager self, in the same run
        models += [(f"{label}, torch.compile", compiled(model), True, ckpt) for label, model, _, ckpt in list(models)]

    inputs = {rate: bench_input(rate) for rate in {model.cfg.sample_rate for _, model, _, _ in models}}

    def extraction(model, device, k, is_compiled):
        mix, ref = inputs[model.cfg.sample_rate]

        def run():
            if is_compiled:  # each extraction is a new step of the CUDA graphs, not a replay
                torch.compiler.cudagraph_mark_step_begin()
            with precision(device, args.bf16):
                model.extract(mix.to(device), ref.to(device), steps=k)
        return run

    rows = []
    for device in devices:
        table, runs = [], {}
        for label, model, is_compiled, ckpt in models:
            model.to(device)
            table.append({"config": label, "checkpoint": ckpt, "parameters": count_parameters(model),
                          "masker_parameters": count_parameters(model.masker), "device": str(device),
                          "device_name": device_name(device), "bf16": args.bf16, "compile": is_compiled,
                          "rtf": {}, "peak_mib": None})
            runs.update({(len(table) - 1, k): extraction(model, device, k, is_compiled) for k in [0] + steps})
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
        rows += table

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


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mix", nargs="?", help="the mixture (any rate, mono or stereo)")
    p.add_argument("ref", nargs="?", help="a reference recording of the speaker to extract (>= 0.5 s)")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="where to write: the extracted audio (default <mix>_extracted.wav, never an input); "
                   "with --eval the folder of the JSON results (default: the checkpoint's folder); "
                   "with --bench the JSON table (default <repo>/runs/bench.json)")
    p.add_argument("--ckpt", metavar="PATH", help="checkpoint (default: the newest finished Mask2Flow model, "
                   "runs/*/ckpt_best.pt of stage 2 with start masked, else pretrained/demo.pt); "
                   "with --bench, also time it beside the presets")
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
                   help="--eval: splits (default: those of test, test-synth, test-seen the corpus has)")
    p.add_argument("--noisy", action="store_true", help="--eval: noisy mixtures (mix_both) instead of clean")
    p.add_argument("--limit", type=int, metavar="N",
                   help="--eval: only the first N examples of each split (two per mixture: each speaker as the target)")
    p.add_argument("--eval-steps", type=int, nargs="+", metavar="N",
                   help="step counts compared with mask-only by --eval (default 1 4) and --bench (default 1 8)")
    p.add_argument("--batch-size", type=int, metavar="N", default=8,
                   help="--eval: examples per forward pass (padding is masked, so results do not depend on it)")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast for extraction and --eval: for GPUs (on most CPUs it is slower)")
    p.add_argument("--bench", action="store_true", help="measure real-time factors instead")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), metavar="NAME", default=list(CONFIGS),
                   help=f"--bench: model configs to time, of {list(CONFIGS)} (default all)")
    p.add_argument("--before", action="store_true",
                   help="--bench: also time each preset as it was before its CPU speed-up (BiLSTM masker; for "
                        "paper also shorter DiT tokens), side by side")
    p.add_argument("--compile", action="store_true",
                   help="--bench: also time each model with its STFT, iSTFT, speaker encoder, masker and DiT under "
                        "torch.compile (on cuda as CUDA graphs), side by side; compiling takes minutes")
    p.add_argument("--repeats", type=int, metavar="N", default=5,
                   help="--bench: timed runs per measurement, after one warm-up; the median is reported (default 5)")
    return p


def main(argv=None):
    """Run the command line; returns the exit status (2 with one `error:` line for bad input)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if not (args.eval or args.bench) and (args.mix is None or args.ref is None):
        parser.error("give a mixture and a reference (python sample.py mix.wav ref.wav), or --eval, or --bench")
    if min(args.eval_steps or [1]) < 1 or min(args.repeats, args.batch_size) < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--eval-steps, --repeats, --batch-size and --limit must be at least 1")
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
