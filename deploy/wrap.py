"""Wrap generated alert rules, Alertmanager routes and Grafana dashboards into Kubernetes
objects (called by render.sh): python deploy/wrap.py BUILD_DIR OUT_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

NAMESPACE = "inferwatch"
LABELS = {"app.kubernetes.io/part-of": "inferwatch"}


def _meta(name: str, **labels: str) -> dict:
    return {"name": name, "namespace": NAMESPACE, "labels": {**LABELS, **labels}}


def prometheus_rule(rules_file: Path) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta("inferwatch", release="prometheus"),
        "spec": yaml.safe_load(rules_file.read_text()),
    }


def alertmanager_secret(config_file: Path) -> dict:
    # the Prometheus Operator and the Alertmanager chart both read `alertmanager.yaml` from a Secret
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta("inferwatch-alertmanager"),
        "type": "Opaque",
        "stringData": {"alertmanager.yaml": config_file.read_text()},
    }


def dashboard_config_maps(directory: Path) -> list[dict]:
    """One ConfigMap per dashboard, labelled for Grafana's dashboard sidecar."""
    out = []
    for f in sorted(directory.rglob("*.json")):
        uid = json.loads(f.read_text()).get("uid") or f.stem
        meta = _meta(f"grafana-dashboard-{uid}".lower()[:63], grafana_dashboard="1")
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {f.name: f.read_text()}})
    return out


def main(build: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "prometheusrule.yaml").write_text(
        yaml.safe_dump(prometheus_rule(build / "alerts" / "rules.yaml"), sort_keys=False)
    )
    (out / "alertmanager.yaml").write_text(
        yaml.safe_dump(alertmanager_secret(build / "alerts" / "alertmanager.yaml"), sort_keys=False)
    )
    (out / "grafana-dashboards.yaml").write_text(
        yaml.safe_dump_all(dashboard_config_maps(build / "dashboards"), sort_keys=False)
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
