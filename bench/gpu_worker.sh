#!/usr/bin/env bash
# The worker's GPU benchmark as one prepared script (for a machine with a CUDA GPU and torch):
# a random-weight Mistral-7B-shaped model, 128-token prompts, 128 new tokens, 1/8/32/64 streams,
# side by side with sequential model.generate. Results go to $OUT (or ./out) as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
model=$(python3 bench/make_random_model.py --shape mistral-7b --device cuda --out /tmp/iw-m7b)
python3 bench/worker_throughput.py --model "$model" --device cuda --prompt-len 128 --max-tokens 128 \
  --levels 1,8,32,64 --per-client 2 --baseline-requests 2 --max-model-len 512 --json | tee "$OUT/gpu_worker.json"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt"
