from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from slo.router import build_slo_router, visible
from slo.service import SLOService

from tests.slo._support import T0, mixed_hour, slos, write

SPECS = """\
service: svc
slos:
  - {name: avail, objective: 99, sli: {availability: {}}}
  - {name: avail-acme, objective: 99, sli: {availability: {}}, selector: {tenant: acme}}
  - {name: ttft, objective: 90, sli: {latency: {metric: ttft, threshold: 0.3}}}
  - {name: safety, objective: 99.9, sli: {safety_incidents: {direction: output}}}
"""
NOW = T0 + timedelta(minutes=60)
KEYS = {
    "Bearer admin": SimpleNamespace(tenant=None, is_admin=True),
    "Bearer globex": SimpleNamespace(tenant="globex", is_admin=False),
}


async def authenticate(authorization: str | None) -> SimpleNamespace:
    if authorization not in KEYS:
        raise HTTPException(401, "bad key")
    return KEYS[authorization]


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[tuple[TestClient, SLOService]]:
    items = slos(SPECS)
    write(sqlite_engine, mixed_hour(), items)
    svc = SLOService(sqlite_engine, items, clock=lambda: NOW)
    app = FastAPI()
    app.include_router(build_slo_router(svc, authenticate))
    with TestClient(app) as c:
        yield c, svc


ADMIN = {"authorization": "Bearer admin"}


def test_list_needs_a_key(client: tuple[TestClient, SLOService]) -> None:
    c, _ = client
    assert c.get("/v1/slos").status_code == 401
    assert c.get("/v1/slos/avail", headers={"authorization": "Bearer nope"}).status_code == 401


def test_list_has_current_status_of_every_slo(client: tuple[TestClient, SLOService]) -> None:
    c, _ = client
    r = c.get("/v1/slos", headers=ADMIN)
    assert r.status_code == 200
    body = r.json()
    data = {d["name"]: d for d in body["data"]}
    assert body["object"] == "list" and list(data) == ["avail", "avail-acme", "ttft", "safety"]
    a = data["avail"]
    assert a["objective"] == 0.99 and a["sli"] == pytest.approx(300 / 306)
    assert a["budget_remaining"] == pytest.approx(1 - (6 / 306) / 0.01)
    assert set(a["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert a["burn_rates"]["1h"] == pytest.approx((6 / 306) / 0.01)
    assert a["alerts"]["ticket"]["firing"] and not a["alerts"]["page"]["firing"]
    assert a["alerts"]["no_data"] == {"firing": False, "after_minutes": 15}
    assert a["time_to_exhaustion_s"] == 0.0 and a["status"] == "ticket"
    assert data["ttft"]["sli"] == pytest.approx(0.8)
    assert data["safety"]["status"] == "ok" and data["safety"]["sli"] == 1.0  # no safety hits in the mixed hour


def test_one_slo_with_history(client: tuple[TestClient, SLOService]) -> None:
    c, svc = client
    for m in (58, 59, 60):
        svc.run_once(T0 + timedelta(minutes=m))
    r = c.get("/v1/slos/avail", headers=ADMIN)
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "avail" and body["sli"] == pytest.approx(300 / 306)
    assert [h["evaluated_at"] for h in body["history"]] == [
        (T0 + timedelta(minutes=m)).isoformat() for m in (60, 59, 58)
    ]
    assert body["history"][0]["ticket"] is True and body["history"][0]["status"] == "ticket"
    since = c.get("/v1/slos/avail", headers=ADMIN, params={"since": "2025-01-06T12:59:00Z", "limit": 1}).json()
    assert [h["evaluated_at"] for h in since["history"]] == [(T0 + timedelta(minutes=60)).isoformat()]
    assert c.get("/v1/slos/avail", headers=ADMIN, params={"limit": 0}).status_code == 422


def test_unknown_slo_is_a_404_in_openai_format(client: tuple[TestClient, SLOService]) -> None:
    c, _ = client
    r = c.get("/v1/slos/nope", headers=ADMIN)
    assert r.status_code == 404
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"} and err["code"] == "slo_not_found" and "nope" in err["message"]


def test_tenant_keys_see_only_their_own_tenant_scoped_slos(client: tuple[TestClient, SLOService]) -> None:
    c, _ = client
    g = {"authorization": "Bearer globex"}
    names = [d["name"] for d in c.get("/v1/slos", headers=g).json()["data"]]
    assert names == ["avail", "ttft", "safety"]
    assert c.get("/v1/slos/avail-acme", headers=g).status_code == 404
    assert c.get("/v1/slos/avail-acme", headers=ADMIN).status_code == 200


def test_an_slo_grouped_by_tenant_is_shown_only_to_admins_or_its_only_tenant() -> None:
    grouped = slos(
        """\
service: svc
slos:
  - {name: all-by-tenant, objective: 99, sli: {availability: {}}, selector: {group_by: [tenant]}}
  - name: two-by-tenant
    objective: 99
    sli: {availability: {}}
    selector: {tenant: [acme, globex], group_by: [tenant]}
  - {name: globex-by-tenant, objective: 99, sli: {availability: {}}, selector: {tenant: globex, group_by: [tenant]}}
  - {name: by-alias, objective: 99, sli: {availability: {}}, selector: {group_by: [model_alias]}}
"""
    )
    seen = {who: [s.name for s in grouped if visible(s, KEYS[who])] for who in KEYS}
    assert seen["Bearer admin"] == ["all-by-tenant", "two-by-tenant", "globex-by-tenant", "by-alias"]
    # another tenant's group (and its name in the worst-group reason) never reaches globex
    assert seen["Bearer globex"] == ["globex-by-tenant", "by-alias"]
