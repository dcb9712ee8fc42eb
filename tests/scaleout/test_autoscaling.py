"""deploy/k8s/autoscaling.yaml: workers scale on queue depth and running batch through KEDA,
gateways on CPU through an HPA. The ScaledObject validates against KEDA's own schema, the HPA
against Kubernetes' (strict); every query is PromQL that promtool accepts and reads only
metrics our worker exports; the targets, the warm minimum and the gateway's discovery of the
workers fit the other manifests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from dashboards.check import metric_names
from inference.metrics import WorkerMetrics
from inferwatch.settings import Settings
from tests.conftest import _in_ci
from tests.servers import ROOT

K8S = ROOT / "deploy" / "k8s"
KEDA_MODELS = ROOT / ".cache" / "keda-schema"  # tests/scaleout/install_keda_schema.sh


def _docs(name: str) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all((K8S / name).read_text()) if d}


@pytest.fixture(scope="module")
def scaled_object() -> dict:
    return _docs("autoscaling.yaml")["ScaledObject"]


@pytest.fixture(scope="module")
def keda_validate(tmp_path_factory: pytest.TempPathFactory):
    """Validate ScaledObjects with KEDA's schema (Node.js; the package installed by
    install_keda_schema.sh, which ./dev test and CI run). Returns a function of documents."""
    node = shutil.which("node")
    if node is None or not (KEDA_MODELS / "node_modules" / "@kubernetes-models" / "keda").is_dir():
        if _in_ci():
            pytest.fail("KEDA's schema is not installed: run tests/scaleout/install_keda_schema.sh")
        pytest.skip("KEDA's schema not installed (tests/scaleout/install_keda_schema.sh)")
    script = KEDA_MODELS / "validate_scaledobject.mjs"  # beside node_modules, where its import resolves
    shutil.copyfile(ROOT / "tests" / "scaleout" / "validate_scaledobject.mjs", script)

    def validate(*docs: dict) -> list[dict]:
        done = subprocess.run([node, str(script), *map(json.dumps, docs)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    return validate


def test_scaled_object_validates_against_kedas_schema(scaled_object: dict, keda_validate):
    broken = {**scaled_object, "spec": {**scaled_object["spec"], "minReplicaCount": "two"}}
    no_triggers = {**scaled_object, "spec": {k: v for k, v in scaled_object["spec"].items() if k != "triggers"}}
    good, bad, missing = keda_validate(scaled_object, broken, no_triggers)
    assert good == {"ok": True, "error": ""}
    assert not bad["ok"] and "minReplicaCount" in bad["error"]  # the validator does reject
    assert not missing["ok"] and "triggers" in missing["error"]


def test_scaled_object_names_only_fields_keda_declares(scaled_object: dict):
    """KEDA's schema admits unknown fields, which KEDA then ignores: a misspelt `minReplicas`
    would silently mean no warm minimum. Every key must be one the spec's model declares."""
    if not (KEDA_MODELS / "node_modules").is_dir():
        pytest.skip("KEDA's schema not installed (tests/scaleout/install_keda_schema.sh)")
    model = (KEDA_MODELS / "node_modules/@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObjectSpec.d.ts").read_text()
    declared = {line.split('"')[1] for line in model.splitlines() if line.strip().startswith('"')}
    assert {"minReplicaCount", "maxReplicaCount", "triggers"} <= declared
    assert set(scaled_object["spec"]) <= declared


def test_gateway_hpa_validates_strictly_and_has_a_cpu_request():
    hpa = _docs("autoscaling.yaml")["HorizontalPodAutoscaler"]
    kubernetes_validate.validate(hpa, kubernetes_validate.latest_version(), strict=True)
    gateway = _docs("gateway.yaml")["Deployment"]
    want = {"apiVersion": "apps/v1", "kind": "Deployment", "name": gateway["metadata"]["name"]}
    assert hpa["spec"]["scaleTargetRef"] == want
    assert "replicas" not in gateway["spec"]  # the HPA owns it; kubectl apply must not reset it
    # CPU utilization is measured against the request: without one the HPA cannot scale
    assert gateway["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


def test_worker_triggers_read_metrics_the_worker_exports(scaled_object: dict, tmp_path: Path):
    worker = _docs("worker.yaml")["StatefulSet"]
    spec = scaled_object["spec"]
    target = spec["scaleTargetRef"]
    assert target["kind"] == "StatefulSet" and target["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]  # a warm minimum, never scaled to zero
    exported = {m.name + suffix for m in WorkerMetrics("any@version").registry.collect() for suffix in ("", "_total")}
    queries = {t["name"]: t["metadata"]["query"] for t in spec["triggers"]}
    assert set(queries) == {"queue-depth", "running-batch"}
    assert metric_names(queries["queue-depth"]) == {"inferwatch_worker_num_requests_waiting"}
    assert metric_names(queries["running-batch"]) == {"inferwatch_worker_num_requests_running"}
    for q in queries.values():
        assert metric_names(q) <= exported
        assert 'job="inferwatch-worker"' in q  # the scrape job of deploy/k8s/prometheus.yaml
    assert any(
        j["job_name"] == "inferwatch-worker"
        for j in yaml.safe_load(_docs("prometheus.yaml")["ConfigMap"]["data"]["prometheus.yml"])["scrape_configs"]
    )
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian's prometheus)")
    rules = tmp_path / "triggers.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "keda-triggers",
                        "rules": [
                            {"record": f"keda:{name.replace('-', '_')}", "expr": q} for name, q in queries.items()
                        ],
                    }
                ]
            }
        )
    )
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_gateway_discovers_the_workers_through_their_headless_service():
    cm = _docs("gateway-config.yaml")["ConfigMap"]
    settings = Settings.model_validate(yaml.safe_load(cm["data"]["inferwatch.yaml"]))
    [upstream] = settings.gateway.upstreams.values()
    service = _docs("worker.yaml")["Service"]
    assert service["spec"]["clusterIP"] == "None"  # headless: DNS answers with every ready pod
    port = service["spec"]["ports"][0]["port"]
    assert upstream.discover == [f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port}"]
