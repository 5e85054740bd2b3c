"""
Extract a target speaker from a mixture with a trained Mask2Flow-TSE checkpoint.

    python sample.py mix.wav ref.wav                        # -> mix_extracted.wav, one Euler step
    python sample.py mix.wav ref.wav --steps 4 -o out.wav   # four Euler steps
    python sample.py mix.wav ref.wav --steps 0              # stage 1 alone (mask-only)

Any sample rate, stereo, quiet or long recordings: audio is resampled to the model's rate,
downmixed, processed in overlapping chunks and written back at the input's rate and length.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from common import (CHUNK_SECONDS, InputError, extract_long, find_checkpoint, get_device, load_audio, load_model, run,
                    steps_label, write_audio)

MIN_REF_SECONDS = 0.5  # shorter enrollments carry too little of the voice to identify it
SILENT_PEAK = 10 ** (-80 / 20)  # a recording whose peak is below -80 dBFS is treated as silence


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
    ref = load_audio(args.ref, sr)
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
    gain = write_audio(out, est, sr, mix_rate, like=args.mix)  # the input's rate, length and encoding
    if gain < 1:
        print(f"note: the output would exceed full scale; scaled down by {-20 * math.log10(gain):.1f} dB")
    print(f"wrote {out} ({info.frames / mix_rate:.2f} s at {mix_rate} Hz, mono) in {time.time() - t0:.1f} s")


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


if __name__ == "__main__":
    sys.exit(main())
