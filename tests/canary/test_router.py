from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from canary.router import build_canary_router
from canary.service import CanaryService
from ledger.db import create_engine_for, migrate
from tests.canary._ledger import T0, FakeClock, traffic

KEYS = {
    "Bearer admin": SimpleNamespace(tenant=None, key_id="admin", is_admin=True),
    "Bearer acme": SimpleNamespace(tenant="acme", key_id="k_acme", is_admin=False),
}
ADMIN = {"authorization": "Bearer admin"}
TENANT = {"authorization": "Bearer acme"}


async def authenticate(authorization: str | None) -> SimpleNamespace:
    if authorization not in KEYS:
        raise HTTPException(401, "bad key")
    return KEYS[authorization]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    migrate(url)
    e = create_engine_for(url)
    yield e
    e.dispose()


@pytest.fixture
def setup(engine: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, CanaryService, FakeClock]]:
    traffic(engine, tmp_path / "spool", T0, 600, 600, 300, slow=1.6, seed=7)
    clock = FakeClock(T0 + timedelta(minutes=10))
    svc = CanaryService(engine, clock=clock, ingest_lag_s=0, notify=lambda url, p: None)
    app = FastAPI()
    app.include_router(build_canary_router(svc, authenticate))
    with TestClient(app) as c:
        yield c, svc, clock


def test_create_and_read_a_fixed_analysis(setup) -> None:
    c, _, _ = setup
    r = c.post(
        "/v1/canary/analyses",
        headers=ADMIN,
        json={"alias": "chat", "baseline": "v1", "canary": "v2", "profile": "latency-only", "window_minutes": 10},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("ca_") and body["verdict"] == "fail" and body["exit_code"] == 1
    got = c.get(f"/v1/canary/analyses/{body['id']}", headers=TENANT).json()
    assert got["verdict"] == "fail" and got["result"]["metrics"][0]["name"] == "latency_s"
    assert {m["name"] for m in got["result"]["metrics"]} == {"latency_s", "ttft_s", "tpot_s", "output_tokens_per_s"}
    listed = c.get("/v1/canary/analyses", headers=ADMIN).json()["data"]
    assert [a["id"] for a in listed] == [body["id"]]


def test_metrics_config_replaces_the_profiles_metrics(setup) -> None:
    c, _, _ = setup
    r = c.post(
        "/v1/canary/analyses",
        headers=ADMIN,
        json={
            "alias": "chat",
            "baseline": "v1",
            "canary": "v2",
            "window_minutes": 10,
            "metrics": [
                {"name": "error", "kind": "proportion", "min_samples": 10, "tolerance": 1.0, "absolute_margin": 0.05}
            ],
        },
    )
    assert r.status_code == 201, r.text
    assert [m["name"] for m in r.json()["result"]["metrics"]] == ["error"]


def test_live_analysis_result_so_far(setup) -> None:
    c, _, clock = setup
    r = c.post(
        "/v1/canary/analyses",
        headers=ADMIN,
        json={"alias": "chat", "baseline": "v1", "canary": "v2", "live": True, "deadline_minutes": 5},
    )
    assert r.status_code == 201
    aid = r.json()["id"]
    assert r.json()["status"] == "running" and r.json()["exit_code"] is None
    clock.advance(301)
    got = c.get(f"/v1/canary/analyses/{aid}", headers=ADMIN).json()
    assert got["decided"] and got["status"] == "done"


def test_errors_are_openai_shaped(setup) -> None:
    c, _, _ = setup
    base = {"alias": "chat", "baseline": "v1", "canary": "v2"}
    r = c.post("/v1/canary/analyses", headers=TENANT, json={**base, "window_minutes": 5})
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    r = c.post("/v1/canary/analyses", headers=ADMIN, json={**base, "profile": "nope", "window_minutes": 5})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_profile"
    r = c.post("/v1/canary/analyses", headers=ADMIN, json=base)
    assert r.status_code == 400 and "window_minutes" in r.json()["error"]["message"]
    r = c.post(
        "/v1/canary/analyses", headers=ADMIN, json={**base, "live": True, "window_minutes": 5, "deadline_minutes": 5}
    )
    assert r.status_code == 400
    r = c.get("/v1/canary/analyses/ca_nope", headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["code"] == "analysis_not_found"
    assert c.get("/v1/canary/analyses/ca_nope").status_code == 401
    for path in ("/v1/canary/rollouts/ro_nope", "/v1/canary/rollouts"):
        assert c.get(path, headers=TENANT).status_code == 403
    assert c.post("/v1/canary/rollouts/ro_nope/pause", headers=ADMIN).status_code == 404


def test_rollout_lifecycle(setup) -> None:
    c, svc, _ = setup
    body = {
        "alias": "chat",
        "baseline": "v1",
        "canary": "v2",
        "profile": "latency-only",
        "steps": [5, 50],
        "min_step_s": 0,
        "min_step_samples": 0,
    }
    assert c.post("/v1/canary/rollouts", headers=TENANT, json=body).status_code == 403
    r = c.post("/v1/canary/rollouts", headers=ADMIN, json=body)
    assert r.status_code == 201, r.text
    ro = r.json()
    assert ro["state"] == "running" and ro["canary_percent"] == 5 and ro["steps"] == [5, 50, 100]
    assert ro["analysis"]["mode"] == "live" and [e["kind"] for e in ro["events"]] == ["started", "step"]
    assert {t.version: t.weight for t in svc.rollouts.store.aliases()["chat"]} == {"v1": 95.0, "v2": 5.0}
    assert c.post("/v1/canary/rollouts", headers=ADMIN, json=body).status_code == 409
    rid = ro["id"]
    assert c.post(f"/v1/canary/rollouts/{rid}/pause", headers=ADMIN).json()["state"] == "paused"
    assert c.post(f"/v1/canary/rollouts/{rid}/pause", headers=ADMIN).status_code == 409
    assert c.post(f"/v1/canary/rollouts/{rid}/resume", headers=ADMIN).json()["state"] == "running"
    out = c.post(f"/v1/canary/rollouts/{rid}/abort", headers=ADMIN).json()
    assert out["state"] == "aborted" and out["canary_percent"] == 0
    assert out["events"][-1]["kind"] == "aborted" and out["events"][-1]["detail"]["by"] == "admin"
    assert c.get(f"/v1/canary/rollouts/{rid}", headers=ADMIN).json()["state"] == "aborted"
    assert [x["id"] for x in c.get("/v1/canary/rollouts", headers=ADMIN).json()["data"]] == [rid]
    r = c.post("/v1/canary/rollouts", headers=ADMIN, json={**body, "steps": [50, 10]})
    assert r.status_code == 400 and "steps" in r.json()["error"]["message"]
