#!/usr/bin/env bash
# The measurements that need a GPU, in one run of a few minutes (no corpus needed):
#   bash docs/gpu.sh [OUTDIR]     # default runs/gpu; writes the files below and prints every table
# 1. the model tests on CUDA (test_mask2flow.py runs each device test on cpu and cuda)
# 2. fp32 against bf16 autocast training, same weights and batches (docs/train_bench.py precision)
# 3. seconds per paper-preset training step at batch 8 and 32 (docs/train_bench.py speed)
# 4. real-time factors of both presets and both maskers, 1 / 4 / 8 steps (sample.py --bench)
# Copy the JSON files to docs/evidence/ only after reading them; docs/README.md says where each goes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/gpu}
mkdir -p "$out"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider test_mask2flow.py 2>&1 | tee "$out/pytest.txt"
python3 docs/train_bench.py precision --config small --steps 400 --device cuda --out "$out/precision_small.json"
python3 docs/train_bench.py speed --config paper --batch 8 32 --device cuda --out "$out/train_speed_paper.json"
python3 sample.py --bench --configs small paper --maskers conv lstm --eval-steps 1 4 8 --device cuda \
    -o "$out/bench_cuda.json"
