#!/usr/bin/env bash
# Generates the manifests that come from our generators into deploy/k8s/generated/ (or $1):
#   prometheusrule.yaml       PrometheusRule from `inferwatch alerts build` (SLO + operational rules)
#   alertmanager.yaml         Secret with the Alertmanager routes from the same build
#   grafana-dashboards.yaml   ConfigMap per dashboard from `inferwatch dashboards build`
# Usage: deploy/render.sh [OUT_DIR]   (INFERWATCH=path of the inferwatch command, default ./dev)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-deploy/k8s/generated}
IW=${INFERWATCH:-./dev}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$IW alerts build --out "$work/alerts" >&2
$IW dashboards build --out "$work/dashboards" >&2
mkdir -p "$OUT"
"${PYTHON:-.venv/bin/python}" deploy/wrap.py "$work" "$OUT"
