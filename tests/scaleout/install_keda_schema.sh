#!/usr/bin/env bash
# Installs KEDA's ScaledObject schema for the deploy/ tests: the npm package
# @kubernetes-models/keda (MIT), validators generated from KEDA's own CRDs, run with the
# machine's Node.js. Idempotent; cached under .cache/. Prints the folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=${KEDA_MODELS_VERSION:-2.0.0}
DIR=.cache/keda-schema
STAMP="$DIR/.installed-$VERSION"
if [ ! -f "$STAMP" ]; then
  rm -rf "$DIR"
  mkdir -p "$DIR"
  echo '{"private": true, "type": "module"}' > "$DIR/package.json"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "@kubernetes-models/keda@$VERSION" >&2
  touch "$STAMP"
fi
echo "$PWD/$DIR"
