#!/usr/bin/env bash
# Train on a machine with CUDA and bring back what the evaluation needs. The demo corpus is built
# there from speech/ in a few minutes (python corpus.py: data/demo, train-100 as sources only), then
#   bash docs/research/gpu_train.sh OUT NAME STEPS1 STEPS2 MINUTES1 MINUTES2 [train.py options]
# trains both stages with dynamic mixing at batch 32 (the steps set the schedule, the minutes cap
# each stage), and writes OUT/NAME.pt (config, EMA weights, training arguments: what eval.py
# reads) and OUT/NAME_log.csv. Then, on the machine with the corpus:
#   python eval.py --ckpt OUT/NAME.pt --data demo --limit 100 -o docs/research/evidence/NAME
# DEVICE=cpu runs the same on a CPU, DATA=DIR trains on another corpus (test_train.py checks the script so).
set -euo pipefail
cd "$(dirname "$0")/../.."
usage="usage: bash docs/research/gpu_train.sh OUT NAME STEPS1 STEPS2 MINUTES1 MINUTES2 [train.py options]"
[ $# -ge 6 ] || { echo "$usage" >&2; exit 2; }
out=$1 name=$2 s1=$3 s2=$4 m1=$5 m2=$6
shift 6
data=${DATA:-data/demo}
[ -f "$data/Libri2Mix/wav16k/min/metadata/mixture_train-100_mix_clean.csv" ] ||
    { echo "error: $data holds no corpus; build it with python corpus.py --out $data" >&2; exit 2; }
[ ! -e "$out/$name.pt" ] || { echo "error: $out/$name.pt exists; choose another NAME" >&2; exit 2; }
device=${DEVICE:-cuda}
[ "$device" = cpu ] || python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print(torch.cuda.get_device_name())"
mkdir -p "$out"
run=$(mktemp -d)/$name
python3 train.py --data "$data" --dynamic-mix --device "$device" --batch-size 32 --workers 12 --max-steps "$s1" "$s2" \
    --max-minutes "$m1" "$m2" --eval-every 500 --eval-examples 100 --log-every 100 --out "$run" "$@"
python3 -c "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False)
torch.save({k: c[k] for k in ('config', 'ema', 'stage', 'step', 'val', 'data', 'args')}, sys.argv[2])" \
    "$run/ckpt_last.pt" "$out/$name.pt"
cp "$run/log.csv" "$out/${name}_log.csv"
echo "wrote $out/$name.pt and $out/${name}_log.csv"
