#!/usr/bin/env bash
# Fill the git-ignored .whl/ folder with what the worker and the GPU benchmark import beyond
# torch and transformers (the GPU machines have no package index): CPython 3.12, manylinux
# x86-64 wheels, fetched here and carried with the tree (keep .whl/ under ~40 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download --quiet --dest .whl --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --no-deps $(awk '!/^#/ {print $2}' bench/gpu_wheels.txt)
du -sh .whl
