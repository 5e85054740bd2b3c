"""
What sample.py, train.py, eval.py, bench.py and data.py share: errors that end a command in one line,
files (audio at any rate and channel count, CSV tables), the device, checkpoints (the default one,
loading, configs of older versions, crash-safe saving, RNG states) and the extraction of whole
recordings, batched or in cross-faded windows.
"""

import csv
import math
import os
import platform
import random
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from mask2flow import Config, Mask2Flow, count_parameters

REPO = Path(__file__).resolve().parent  # runs/ and pretrained/ are the repository's, from any directory
PRETRAINED = REPO / "pretrained" / "demo.pt"
RUNS = REPO / "runs"
SAMPLE_RATE = 16000
CHUNK_SECONDS = 10.0  # long recordings are extracted in windows of this length, which bounds memory
OVERLAP = 0.1  # fraction of each window cross-faded with its neighbour
FULL_SCALE = 0.99  # outputs louder than this are scaled down rather than clipped
# Config fields that mask2flow.py no longer has, each with the value that is now its only behaviour:
# a checkpoint that holds it loads; any other value is a layout this code no longer builds. None: any
# value (mask_lstm_layers sized an LSTM that "conv" never built; spk_loss and spk_classes trained a
# speaker classifier that extraction never ran).
RETIRED = {"speaker": "ours", "masker": "conv", "mask_stride": 1, "fast_attention": True,
           "mask_lstm_layers": None, "spk_loss": None, "spk_classes": None}


class InputError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


class AudioError(Exception):
    """A file that cannot be used as audio. The message (one line) names the file."""


class DataError(Exception):
    """A corpus that cannot be read or built. The message (one line) says what to do."""


def run(command, args):
    """command(args) as a command line: bad input is one `error:` line and exit status 2."""
    try:
        command(args)
    except (AudioError, DataError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def steps_label(k):
    return "mask-only" if k == 0 else f"{k} step{'s' * (k > 1)}"


def row(cells):
    """One row of a markdown table, as eval.py and bench.py print them."""
    return "| " + " | ".join(str(c) for c in cells) + " |"

# -----------------------------------------------------------------------------
# files: audio in and out, CSV tables


SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def claimed_frames(path, channels, subtype):
    """The sample count a RIFF/WAVE header claims (its data chunk's size), or None for other files."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:] != b"WAVE" or subtype not in SAMPLE_BYTES:
            return None
        while len(chunk := f.read(8)) == 8:
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                return None if size in (0, 0xFFFFFFFF) else size // (channels * SAMPLE_BYTES[subtype])  # streamed
            f.seek(size + size % 2, 1)
    return None


def load_audio(path, sample_rate=SAMPLE_RATE, return_rate=False):
    """Read a sound file as float32 mono (L,), resampled to sample_rate (None keeps the file's). A WAV
    file shorter than its header says (a truncated copy) is read as far as it goes, with a warning."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        with sf.SoundFile(path) as f:
            claimed = claimed_frames(path, f.channels, f.subtype)
            x, rate = f.read(dtype="float32", always_2d=True), f.samplerate  # (L, C)
    except Exception as e:
        raise AudioError(f"cannot read audio file {path}: {' '.join(str(e).split())}") from None
    if claimed is not None and claimed > len(x):
        print(f"warning: {path} is truncated: its header claims {claimed} samples, the file holds {len(x)}; "
              f"using those", file=sys.stderr)
    if x.size == 0:
        raise AudioError(f"audio file is empty: {path}")
    if not np.isfinite(x).all():
        raise AudioError(f"audio file contains NaN or infinite samples: {path}")
    x = x.mean(axis=1)  # downmix to mono
    if sample_rate and rate != sample_rate:
        g = math.gcd(rate, sample_rate)
        x = resample_poly(x, sample_rate // g, rate // g).astype(np.float32)
    return (x, rate) if return_rate else x


def fit_full_scale(wav):
    """Scale down (never clip) a waveform whose peak exceeds FULL_SCALE. Returns it and the gain."""
    peak = float(np.abs(wav).max(initial=0.0))
    gain = FULL_SCALE / peak if peak > FULL_SCALE else 1.0
    return wav * gain, gain


def write_audio(path, wav, rate, out_rate, like):
    """Write wav (L,) at rate as a mono file at out_rate, exactly as long as the sound file `like`, in its
    encoding when it is PCM or float and the format takes it, else the format's default (16-bit PCM for
    WAV and FLAC: a compressed input, MP3 or Vorbis, is no WAV encoding). Returns the gain (<= 1) that
    kept it within FULL_SCALE."""
    info = sf.info(like)
    if out_rate != rate:
        g = math.gcd(rate, out_rate)
        wav = resample_poly(wav, out_rate // g, rate // g).astype(np.float32)
    wav, gain = fit_full_scale(np.pad(wav, (0, max(0, info.frames - len(wav))))[:info.frames])
    fmt = Path(path).suffix[1:].upper()
    pcm_or_float = info.subtype.startswith("PCM_") or info.subtype in ("FLOAT", "DOUBLE")
    subtype = info.subtype if pcm_or_float and sf.check_format(fmt, info.subtype) else sf.default_subtype(fmt)
    try:
        sf.write(path, wav, out_rate, subtype=subtype)
    except (OSError, RuntimeError) as e:  # soundfile's errors are RuntimeErrors
        raise InputError(f"cannot write {path}: {' '.join(str(e).split())}") from None
    return gain


def read_csv(path, required=()):
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    missing = [c for c in required if rows and c not in rows[0]]
    if not rows or missing:
        raise DataError(f"{path} is empty or lacks the columns {', '.join(missing or required)}")
    return rows


def write_csv(path, rows):
    part = f"{path}.{os.getpid()}.part"  # then renamed: readers never see half a file
    with open(part, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")  # as LibriMix's (pandas) CSVs
        w.writeheader()
        w.writerows(rows)
    os.replace(part, path)


def append_row(path, row):
    """Append a dict as a CSV row, writing the header with the first one."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})

# -----------------------------------------------------------------------------
# device and checkpoints


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


def precision(device, bf16):
    """bf16 autocast when asked (meant for GPUs; test_common.py bounds its distance from fp32), else fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


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


def model_weights(state):
    """A saved state dict without the retired speaker classifier ('classifier.*', trained with spk_loss)."""
    return {k: v for k, v in state.items() if not k.startswith("classifier.")}


def first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def read_checkpoint(path):
    """The dict that train.py saved at path, or an InputError that says why not (missing, unreadable, foreign)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)  # holds RNG states: load trusted files only
    except Exception as e:  # a corrupt or foreign file fails in many ways, all meaning "not a checkpoint"
        raise InputError(f"cannot read checkpoint {path}: {first_line(e)}") from None
    if not isinstance(ckpt, dict) or not {"config", "ema"} <= ckpt.keys():
        raise InputError(f"{path} is not a Mask2Flow checkpoint: it lacks the 'config' and 'ema' that train.py saves")
    return ckpt


def load_model(path, device):
    """Rebuild the model from the checkpoint alone: its config and its EMA weights."""
    ckpt = read_checkpoint(path)
    try:
        model = Mask2Flow(checkpoint_config(ckpt["config"]))
        model.load_state_dict(model_weights(ckpt["ema"]))
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


def save_checkpoint(state, path):
    """Write to a temporary file, then rename: a crash never leaves a broken checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def rng_state():
    """Every random state a training step draws from (set_rng_state puts one back)."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(s):
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if torch.cuda.is_available() and s["cuda"]:
        torch.cuda.set_rng_state_all(s["cuda"])

# -----------------------------------------------------------------------------
# extraction of whole recordings


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
