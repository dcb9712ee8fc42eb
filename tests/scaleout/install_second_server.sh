#!/usr/bin/env bash
# Installs the second, independent OpenAI-compatible server the scale-out tests put behind
# the gateway: LiteLLM's proxy (PyPI `litellm[proxy]`), in its own venv so that its
# dependencies cannot clash with ours. Idempotent; cached under .cache/. Prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${LITELLM_VERSION:-1.108.7}
VENV=.cache/litellm-venv
STAMP="$VENV/.installed-$VERSION"
if [ ! -f "$STAMP" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q "litellm[proxy]==$VERSION" >&2
  touch "$STAMP"
fi
echo "$PWD/$VENV/bin/litellm"
