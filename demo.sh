#!/usr/bin/env bash
# The main job, on the offline demo corpus: build it from the real speech of speech/ (under a minute),
# let the shipped model (pretrained/demo.pt) extract one unseen-speaker test mixture into
# runs/demo-<date>/shipped/ to listen to (mixture, enrollment, extraction, spectrograms.png; its SI-SDRi,
# and Whisper's WER when requirements-eval.txt is installed), then train both stages of the small model
# on CPU for MINUTES1 + MINUTES2 minutes (default 10 + 4) on mixtures drawn afresh (two or three voices,
# the target sometimes absent or alone, some recordings band-limited, light noise), extract the same
# mixture, evaluate on unseen speakers under four conditions and on seen speakers, and end with the
# trained model and the shipped one side by side on the same examples. EVAL_LIMIT (examples per split,
# default 100) shortens or lengthens the evaluation; WER and DNSMOS (about a second per signal on 2 cores)
# are left to `python eval.py` here.
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python  # the environment of install.sh
[ -x "$PY" ] || { echo "error: no $PY: run bash install.sh first" >&2; exit 1; }
MINUTES1=${MINUTES1:-10}
MINUTES2=${MINUTES2:-4}
RUN=runs/demo-$(date +%Y%m%d-%H%M%S)

$PY corpus.py                             # data/demo, in the LibriMix layout (kept if already built)
echo "== the shipped model first: one mixture of speakers it never heard"
$PY docs/paper_figures.py example --ckpt pretrained/demo.pt --out "$RUN/shipped"
echo "== now training the small model on this machine: $MINUTES1 + $MINUTES2 minutes"
$PY train.py --data demo --dynamic-mix --absent 0.1 --three 0.3 --lowpass 0.3 --light-noise 0.5 \
    --out "$RUN" --config small --max-steps 1400 600 --max-minutes "$MINUTES1" "$MINUTES2" \
    --eval-every 200 --mask-wave-loss 0.01 --wave-loss 0.001

# the same unseen-speaker test mixture and its enrollment, from the fixed enrollment list
D=data/demo/Libri2Mix/wav16k/min
IFS=, read -r MIX TARGET ENROLL < <(sed -n 2p "$D/metadata/enrollment_test.csv")
$PY sample.py --ckpt "$RUN/ckpt_best.pt" "$D/test/mix_clean/$MIX.wav" "$D/$ENROLL" -o "$RUN/example_extracted.wav"
echo "mixture $D/test/mix_clean/$MIX.wav, clean target $D/test/s$TARGET/$MIX.wav"

FAST=(--steps 1 --limit "${EVAL_LIMIT:-100}" --skip dnsmos wer)
$PY eval.py --ckpt "$RUN/ckpt_best.pt" --data demo "${FAST[@]}" --split test
$PY eval.py --ckpt "$RUN/ckpt_best.pt" --data demo "${FAST[@]}" --split test-seen --conditions two
$PY eval.py --ckpt pretrained/demo.pt --data demo "${FAST[@]}" --split test --conditions two -o "$RUN/shipped"
$PY docs/paper_figures.py compare "$RUN/eval_demo_test_clean.json" "$RUN/shipped/eval_demo_test_clean.json"
