"""
Extract a target speaker from a mixture with a trained Mask2Flow-TSE checkpoint.

    python sample.py mix.wav ref.wav                        # -> mix_extracted.wav, one Euler step
    python sample.py mix.wav ref.wav --steps 4 -o out.wav   # four Euler steps
    python sample.py mix.wav ref.wav --steps 0              # stage 1 alone (mask-only)

Any sample rate, stereo, quiet or long recordings: audio is resampled to the model's rate,
downmixed, processed in overlapping chunks and written back at the input's rate and length.
The checkpoint helpers here (find_checkpoint, load_model, get_device) serve eval.py and bench.py too.
"""

import argparse
import math
import platform
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from data import AudioError, DataError, load_audio
from mask2flow import Config, Mask2Flow, count_parameters

REPO = Path(__file__).resolve().parent  # runs/ and pretrained/ are the repository's, from any directory
PRETRAINED = REPO / "pretrained" / "demo.pt"
RUNS = REPO / "runs"
MIN_REF_SECONDS = 0.5  # shorter enrollments carry too little of the voice to identify it
SILENT_PEAK = 10 ** (-80 / 20)  # a recording whose peak is below -80 dBFS is treated as silence
CHUNK_SECONDS = 10.0  # long recordings are extracted in windows of this length, which bounds memory
OVERLAP = 0.1  # fraction of each window cross-faded with its neighbour
FULL_SCALE = 0.99  # outputs louder than this are scaled down rather than clipped
# Config fields that mask2flow.py no longer has, each with the value that is now its only behaviour:
# a checkpoint that holds it loads; any other value is a layout this code no longer builds.
RETIRED = {"speaker": "ours", "masker": "conv", "mask_stride": 1, "fast_attention": True,
           "mask_lstm_layers": None}  # None: any value (it sized the LSTM masker, which "conv" never built)


class InputError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def steps_label(k):
    return "mask-only" if k == 0 else f"{k} step{'s' * (k > 1)}"


def row(cells):
    """One row of a markdown table, as eval.py and bench.py print them."""
    return "| " + " | ".join(str(c) for c in cells) + " |"

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
                     "train.py (README, Train), or pass --ckpt PATH")


def checkpoint_config(saved):
    """Config from a checkpoint's asdict(config), without the RETIRED fields that hold today's behaviour."""
    saved = dict(saved)
    for key, only in RETIRED.items():
        if only is not None and saved.get(key, only) != only:
            raise InputError(f"Config.{key} {saved[key]!r}, which this mask2flow.py no longer builds "
                             f"(only {only!r}; the git history has the code that did)")
        saved.pop(key, None)
    return Config(**saved)


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
        model = Mask2Flow(checkpoint_config(ckpt["config"]))
        model.load_state_dict(ckpt["ema"])
        model.classifier = None  # training only (Config.spk_loss): extraction never reads it, nor counts it
    except InputError as e:
        raise InputError(f"checkpoint {path}: {e}") from None
    except (TypeError, RuntimeError, AssertionError) as e:
        raise InputError(f"checkpoint {path} does not fit this mask2flow.py: {first_line(e)}") from None
    stage = ckpt.get("stage", 2)
    print(f"checkpoint: {path} (stage {stage}, step {ckpt.get('step', '?')}, "
          f"{count_parameters(model) / 1e6:.2f}M parameters)")
    if stage == 1:
        print("note: this checkpoint trained stage 1 only; its flow is untrained (zero velocity), so steps > 0 "
              "add nothing to stage 1")
    elif ckpt.get("step") == 0:
        print("note: its stage 2 kept its untrained start (step 0 was its best on dev): the flow returns the mask")
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


def main(argv=None):
    """Run the command line; returns the exit status (2 with one `error:` line for bad input)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mix", help="the mixture (any rate, mono or stereo)")
    p.add_argument("ref", help="a reference recording of the speaker to extract (>= 0.5 s)")
    p.add_argument("-o", "--output", metavar="PATH", help="where to write (default <mix>_extracted.wav; never an input)")
    p.add_argument("--ckpt", metavar="PATH", help="checkpoint (default: the newest finished Mask2Flow model, "
                   "runs/*/ckpt_best.pt of stage 2 with start masked, else pretrained/demo.pt)")
    p.add_argument("--steps", type=int, metavar="N", default=1, help="Euler steps of the flow; 0 = mask-only (default 1)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto = cuda when present")
    p.add_argument("--chunk-seconds", type=float, metavar="S", default=CHUNK_SECONDS,
                   help=f"process long recordings in windows of this length, cross-faded (default {CHUNK_SECONDS:g})")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast: for GPUs (on most CPUs it is slower)")
    args = p.parse_args(argv)
    if args.steps < 0 or args.chunk_seconds < 1:
        p.error("--steps must be 0 (mask-only) or more, --chunk-seconds at least 1")
    return run(extract_file, args)


def run(command, args):
    """command(args) as a command line: bad input is one `error:` line and exit status 2."""
    try:
        command(args)
    except (AudioError, DataError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
