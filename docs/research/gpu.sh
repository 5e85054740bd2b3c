#!/usr/bin/env bash
# The measurements that need a GPU, in one run of a few minutes (no corpus needed):
#   bash docs/research/gpu.sh [OUTDIR]     # default runs/gpu; writes the files below and prints every table
# 1. the model tests on CUDA (test_mask2flow.py's cuda half; CI runs the cpu half)
# 2. fp32 against bf16 autocast training, same weights and batches (docs/research/train_bench.py precision)
# 3. seconds per paper-preset training step at batch 8 and 32 (docs/research/train_bench.py speed)
# 4. real-time factors of both presets, 1 / 4 / 8 steps (bench.py), fp32 and bf16;
#    then the paper preset eager and under torch.compile (CUDA graphs), side by side
# 5. train.py on cuda, alone and under torchrun, and sample.py on cuda against cpu (no file kept)
# Copy its files to docs/research/evidence/gpu/ only after reading them (then python docs/research/results.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/gpu}
mkdir -p "$out"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider test_mask2flow.py -k cuda 2>&1 | tee "$out/pytest_cuda.txt" || failed=1  # a failing test stops no measurement
python3 docs/research/train_bench.py precision --config small --steps 400 --device cuda \
    --out "$out/precision_small.json"
python3 docs/research/train_bench.py speed --config paper --batch 8 32 --device cuda --out "$out/train_speed_paper.json"
python3 bench.py --configs small paper --steps 1 4 8 --device cuda -o "$out/bench_cuda.json"
python3 bench.py --configs small paper --steps 1 4 8 --device cuda --bf16 -o "$out/bench_cuda_bf16.json"
python3 bench.py --configs paper --steps 1 4 8 --device cuda --compile -o "$out/bench_cuda_compile.json"
# 5. end to end on CUDA: both stages (tiny preset) on a small generated corpus, alone and under torchrun
#    (NCCL, one rank); then the shipped model extracts a real two-voice mixture on cuda (fp32, bf16) and cpu
e2e=$(mktemp -d)
python3 -c "import sys; from pathlib import Path; sys.path.insert(0, 'tests'); from test_data import make_librimix as m
root = Path(sys.argv[1]) / 'LibriMix'; m(root, 'train-100', 8); m(root, 'dev', 4)" "$e2e"
tiny=(--data "$e2e/LibriMix" --config tiny --max-steps 20 20 --batch-size 4 --segment 0.5 --enroll-segment 0.5
      --eval-every 10 --eval-examples 4 --log-every 10 --device cuda)
python3 train.py "${tiny[@]}" --out "$e2e/one"
python3 -m torch.distributed.run --nproc_per_node 1 train.py "${tiny[@]}" --out "$e2e/ddp"
python3 -c "import sys, soundfile as sf; from data import load_audio
a, b = load_audio(sys.argv[1])[:48000], load_audio(sys.argv[2])[:48000]
sf.write(sys.argv[4] + '/mix.wav', a + b, 16000); sf.write(sys.argv[4] + '/ref.wav', load_audio(sys.argv[3]), 16000)" \
    speech/librispeech/1272/*/1272-128104-0000.* speech/vctk/p227/p227_005.* \
    speech/librispeech/1272/*/1272-128104-0001.* "$e2e"
extract() { python3 sample.py "$e2e/mix.wav" "$e2e/ref.wav" --ckpt pretrained/demo.pt -o "$e2e/$1.wav" "${@:2}"; }
extract cpu --device cpu; extract cuda --device cuda; extract bf16 --device cuda --bf16
python3 -c "import sys; from data import load_audio; from mask2flow import si_sdr; import torch
cpu = torch.from_numpy(load_audio(sys.argv[1]))
for f in sys.argv[2:]:  # two cpu runs agree to about 100 dB
    print(f'{f}: SI-SDR against the cpu output {si_sdr(torch.from_numpy(load_audio(f)), cpu).item():.1f} dB')" \
    "$e2e/cpu.wav" "$e2e/cuda.wav" "$e2e/bf16.wav"
exit ${failed:-0}
