"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas
(kubernetes-validate, strict), the generated PrometheusRule's rules pass promtool, the
scrape config passes promtool, the Alertmanager routes pass amtool, the gateway's settings
load, and the Dockerfile copies every package the project installs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from inferwatch.settings import Settings
from tests.servers import ROOT

K8S = ROOT / "deploy" / "k8s"
CORE = ("v1", "apps/v1", "autoscaling/v2")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/render.sh run afresh: what the generators produce today."""
    out = tmp_path_factory.mktemp("generated")
    env = {**os.environ, "INFERWATCH": str(Path(sys.executable).parent / "inferwatch"), "PYTHON": sys.executable}
    subprocess.run(["bash", str(ROOT / "deploy" / "render.sh"), str(out)], check=True, env=env, capture_output=True)
    return out


def _docs(paths: list[Path]) -> list[dict]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text()) if d]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian's prometheus / prometheus-alertmanager)")
    return path


def test_core_manifests_validate_strictly(rendered):
    docs = _docs(sorted(K8S.glob("*.yaml")) + sorted(rendered.glob("*.yaml")))
    core = [d for d in docs if d.get("apiVersion") in CORE]
    kinds = {d["kind"] for d in core}
    assert {"Namespace", "Secret", "ConfigMap", "Deployment", "Service", "StatefulSet"} <= kinds
    version = kubernetes_validate.latest_version()
    for d in core:
        kubernetes_validate.validate(d, version, strict=True)
    # the negative case: the validator does reject a wrong manifest
    bad = next(d for d in core if d["kind"] == "Deployment")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**bad, "spec": {**bad["spec"], "replicas": "two"}}, version, strict=True)


def test_workers_request_gpus_and_gateway_reads_the_ledger_secret():
    docs = {d["kind"]: d for d in _docs([K8S / "gateway.yaml", K8S / "worker.yaml"]) if d["kind"] != "Service"}
    worker = docs["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INFERWATCH_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "inferwatch-secrets"


def test_gateway_settings_in_the_config_map_load():
    cm = _docs([K8S / "gateway-config.yaml"])[0]
    settings = Settings.model_validate(yaml.safe_load(cm["data"]["inferwatch.yaml"]))
    assert settings.gateway.aliases["chat"][0].version in settings.gateway.upstreams


def test_prometheus_rule_rules_pass_promtool(rendered, tmp_path):
    promtool = _need("promtool")
    [rule] = _docs([rendered / "prometheusrule.yaml"])
    assert rule["kind"] == "PrometheusRule" and rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"SUCCESS: \d+ rules found", done.stdout + done.stderr)


def test_scrape_config_passes_promtool(tmp_path):
    promtool = _need("promtool")
    cm = _docs([K8S / "prometheus.yaml"])[0]
    text = cm["data"]["prometheus.yml"].replace("/etc/prometheus/secrets/metrics-token", str(tmp_path / "token"))
    (tmp_path / "token").write_text("t")
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(text)
    done = subprocess.run([promtool, "check", "config", "--syntax-only", str(cfg)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = {j["job_name"] for j in yaml.safe_load(text)["scrape_configs"]}
    assert jobs == {"inferwatch-gateway", "inferwatch-worker"}


def test_alertmanager_routes_pass_amtool(rendered, tmp_path):
    amtool = _need("amtool")
    [secret] = _docs([rendered / "alertmanager.yaml"])
    cfg = tmp_path / "alertmanager.yaml"
    cfg.write_text(secret["stringData"]["alertmanager.yaml"])
    done = subprocess.run([amtool, "check-config", str(cfg)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_become_config_maps(rendered):
    maps = _docs([rendered / "grafana-dashboards.yaml"])
    assert len(maps) >= 3
    for m in maps:
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1" and len(m["data"]) == 1


def test_kustomization_lists_existing_files_and_dockerfile_copies_every_package():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) ", (ROOT / "Dockerfile").read_text(), re.M))
    assert {p.rstrip("*") for p in packages} <= copied


def test_committed_generated_manifests_are_current(rendered):
    """deploy/k8s/generated is what render.sh produces today: rules, routes and dashboards are
    generated, never edited, and a change to the generators must be rendered before it lands."""
    committed = ROOT / "deploy" / "k8s" / "generated"
    fresh = {p.name: p.read_text() for p in rendered.iterdir()}
    assert {p.name: p.read_text() for p in committed.iterdir()} == fresh, "run deploy/render.sh"
