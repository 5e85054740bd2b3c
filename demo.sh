#!/usr/bin/env bash
# The main job, on the offline demo corpus: build it, train both stages of the small model for about
# 15 minutes on CPU on its fixed mixtures, extract one unseen-speaker test mixture to a wav
# file, and evaluate unseen real, unseen synthetic and seen speakers.
# MINUTES (per stage, default 7) and EVAL_LIMIT (examples per split, default 100) shorten or lengthen it.
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python  # the environment of install.sh
[ -x "$PY" ] || { echo "error: no $PY: run bash install.sh first" >&2; exit 1; }
MINUTES=${MINUTES:-7}
RUN=runs/demo-$(date +%Y%m%d-%H%M%S)

$PY data.py demo                          # data/demo, in the LibriMix layout (kept if already built)
$PY train.py --data demo --out "$RUN" --config small --max-steps 1400 1400 --max-minutes "$MINUTES" --eval-every 200

# one unseen-speaker test mixture and its enrollment, from the fixed enrollment list
D=data/demo/Libri2Mix/wav16k/min
IFS=, read -r MIX TARGET ENROLL < <(sed -n 2p "$D/metadata/enrollment_test.csv")
$PY sample.py --ckpt "$RUN/ckpt_best.pt" "$D/test/mix_clean/$MIX.wav" "$D/$ENROLL" -o "$RUN/example_extracted.wav"
echo "mixture $D/test/mix_clean/$MIX.wav, clean target $D/test/s$TARGET/$MIX.wav"

$PY sample.py --ckpt "$RUN/ckpt_best.pt" --eval --data demo --limit "${EVAL_LIMIT:-100}"
