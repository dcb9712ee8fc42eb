#!/usr/bin/env bash
# The worker's GPU run as one prepared script (about 5-8 minutes on one H100/H200 with torch and
# transformers installed):
#   1. installs what the worker imports beyond torch/transformers from the wheels in .whl/
#      (bench/fetch_wheels.sh fills it; the GPU machines have no package index);
#   2. bench/gpu_check.py: greedy outputs of a small fp32 model through the engine equal
#      model.generate, every steady decode step replays a graph captured at warm-up, and launching
#      a step makes no host synchronisation (one event sync per step);
#   3. a random-weight Mistral-7B-shaped bf16 model: 128-token prompts, 128 new tokens, staggered
#      arrivals, 1/8/32/64 streams beside sequential model.generate in the same run.
# Everything goes to $OUT (default ./out) as JSON plus the logs.
#
#   bench/gpu_worker.sh              # on the GPU machine
#   bench/gpu_worker.sh --cpu-smoke  # the same steps on a tiny model on the CPU (checks the script)
#   IW_WORKER_FLAGS="--compile true" bench/gpu_worker.sh   # also torch.compile each decoder layer
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
smoke=0; [[ "${1:-}" == "--cpu-smoke" ]] && smoke=1
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/steps.log"; }

# 1. missing packages, from the carried wheels only (never replaces an installed package)
missing=()
while read -r module req; do
  [[ -z "$module" || "$module" == \#* ]] && continue
  "$PY" -c "import $module" 2>/dev/null || missing+=("$req")
done < bench/gpu_wheels.txt
if (( ${#missing[@]} )); then
  site=${IW_SITE:-/tmp/iw-site}
  stamp "installing from .whl/: ${missing[*]}"
  "$PY" -m pip install --quiet --no-index --find-links .whl --no-deps --target "$site" "${missing[@]}"
  export PYTHONPATH="$PYTHONPATH:$site"
fi
"$PY" - <<'PY' | tee "$OUT/env.json"
import json, platform, torch, transformers, fastapi, pydantic, uvicorn
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
                  "fastapi": fastapi.__version__, "pydantic": pydantic.VERSION, "uvicorn": uvicorn.__version__, "gpu": gpu}))
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/gpu.txt" || true

if (( smoke )); then dev=cpu; shape=tiny; levels=1,4; tokens=16; prompt=32; base=1; extra="--per-client 1"
else dev=cuda; shape=mistral-7b; levels=1,8,32,64; tokens=128; prompt=128; base=2; extra="--per-client 2"; fi

# 2. correctness and one sync per step
stamp "correctness check on $dev"
"$PY" bench/gpu_check.py --device "$dev" > "$OUT/check.json" 2> "$OUT/check.log" || { stamp "CHECK FAILED"; cat "$OUT/check.json"; }
cat "$OUT/check.json"

# 3. throughput
stamp "writing a random-weight $shape model"
model=$("$PY" bench/make_random_model.py --shape "$shape" --device "$dev" --out /tmp/iw-$shape 2> "$OUT/make_model.log")
stamp "throughput at $levels streams"
"$PY" bench/worker_throughput.py --model "$model" --device "$dev" --prompt-len "$prompt" --max-tokens "$tokens" \
  --levels "$levels" $extra --baseline-requests "$base" --max-model-len 512 --worker-flags "${IW_WORKER_FLAGS:-}" \
  --json > "$OUT/gpu_worker.json" 2> "$OUT/throughput.log"
cat "$OUT/gpu_worker.json"
stamp "done"
