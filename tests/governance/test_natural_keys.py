"""Bodies holding a list with a natural key (alias targets, budgets, canary metrics) name the
repeated key in a 400 and write nothing, on SQLite and PostgreSQL alike. The long schema
fuzz found the alias case as a 500 (the unique index of model_aliases)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from gateway import cli
from gateway.config import GatewayConfig
from gateway.seed import seed
from ledger.db import migrate
from ledger.governance import GovernanceStore
from tests.governance.conftest import ADMIN_KEY, Harness, stub_pair_gateway

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
_dbs = itertools.count()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One gateway per database kind for the module (each test checks its own body)."""
    tmp: Path = tmp_path_factory.mktemp("keys")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'l.db'}"
        migrate(url)
    else:
        url = request.getfixturevalue("pg_server").create_database(
            f"natural_keys{next(_dbs)}", template=request.getfixturevalue("pg_ledger_template")
        )
    with stub_pair_gateway(tmp, url) as (h, _, _):
        yield h


def _refused(r: httpx.Response, message: str, param: str) -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert message in err["message"] and err["param"] == param, err


def _audit_actions(h: Harness) -> list[str]:
    return [
        e["action"] for e in httpx.get(h.url + "/v1/admin/audit", headers=ADMIN, params={"limit": 1000}).json()["data"]
    ]


def test_alias_targets_naming_a_version_twice_are_400_and_change_nothing(gw):
    before = httpx.get(gw.url + "/v1/admin/aliases/m", headers=ADMIN).json()
    audit_before = _audit_actions(gw)
    body = {
        "targets": [
            {"version": "stub@1", "weight": 1},
            {"version": "stub@2", "weight": 1},
            {"version": "stub@1", "weight": 3},
        ]
    }
    _refused(
        httpx.put(gw.url + "/v1/admin/aliases/m", headers=ADMIN, json=body),
        "version stub@1 appears twice in targets",
        "targets",
    )
    # the fuzz's case: a new alias, so nothing to delete first
    _refused(
        httpx.put(gw.url + "/v1/admin/aliases/0", headers=ADMIN, json={"targets": [{"version": "stub@2"}] * 2}),
        "version stub@2 appears twice in targets",
        "targets",
    )
    assert httpx.get(gw.url + "/v1/admin/aliases/m", headers=ADMIN).json() == before
    assert httpx.get(gw.url + "/v1/admin/aliases/0", headers=ADMIN).status_code == 404
    assert _audit_actions(gw) == audit_before
    # the same versions once each still work, so nothing was left half-written or locked
    ok = httpx.put(
        gw.url + "/v1/admin/aliases/0", headers=ADMIN, json={"targets": [{"version": "stub@1"}, {"version": "stub@2"}]}
    )
    assert ok.status_code == 200, ok.text
    assert [t["version"] for t in httpx.get(gw.url + "/v1/admin/aliases/0", headers=ADMIN).json()["targets"]] == [
        "stub@1",
        "stub@2",
    ]


def test_tenant_budgets_repeating_period_kind_and_key_are_400_and_change_nothing(gw):
    budgets = [{"period": "day", "limit": 5}]
    assert (
        httpx.put(gw.url + "/v1/admin/tenants/acme/budgets", headers=ADMIN, json={"budgets": budgets}).status_code
        == 200
    )
    twice = [
        {"period": "day", "limit": 5},
        {"period": "month", "limit": 50},
        {"period": "day", "kind": "spend", "limit": 9},
    ]
    _refused(
        httpx.put(gw.url + "/v1/admin/tenants/acme/budgets", headers=ADMIN, json={"budgets": twice}),
        "budget day-spend appears twice in budgets",
        "budgets",
    )
    per_key = [{"period": "day", "limit": 5, "key_id": "abc"}, {"period": "day", "limit": 1, "key_id": "abc"}]
    _refused(
        httpx.put(gw.url + "/v1/admin/tenants/acme/budgets", headers=ADMIN, json={"budgets": per_key}),
        "budget day-spend-abc appears twice in budgets",
        "budgets",
    )
    acme = next(t for t in httpx.get(gw.url + "/v1/admin/tenants", headers=ADMIN).json()["data"] if t["id"] == "acme")
    assert [(b["period"], b["limit"]) for b in acme["settings"]["budgets"]] == [("day", 5.0)]
    # a spend and a token budget of one period, and one per key, are different budgets
    distinct = [
        {"period": "day", "limit": 5},
        {"period": "day", "kind": "tokens", "limit": 1000},
        {"period": "day", "limit": 1, "key_id": "abc"},
    ]
    assert (
        httpx.put(gw.url + "/v1/admin/tenants/acme/budgets", headers=ADMIN, json={"budgets": distinct}).status_code
        == 200
    )


def test_a_new_tenant_with_a_budget_twice_is_400_and_not_created(gw):
    body = {"id": "twice-budgeted", "budgets": [{"period": "month", "limit": 5}, {"period": "month", "limit": 6}]}
    _refused(
        httpx.post(gw.url + "/v1/admin/tenants", headers=ADMIN, json=body),
        "budget month-spend appears twice in budgets",
        "budgets",
    )
    assert "twice-budgeted" not in {
        t["id"] for t in httpx.get(gw.url + "/v1/admin/tenants", headers=ADMIN).json()["data"]
    }


@pytest.mark.parametrize("route", ["/v1/canary/analyses", "/v1/canary/rollouts"])
def test_canary_metrics_naming_a_metric_twice_are_400_and_start_nothing(gw, route):
    body = {
        "alias": "m",
        "baseline": "stub@1",
        "canary": "stub@2",
        "window_minutes": 5,
        "metrics": [{"name": "ttft_s"}, {"name": "error", "kind": "proportion"}, {"name": "ttft_s", "min_samples": 3}],
    }
    if route.endswith("rollouts"):
        del body["window_minutes"]
    _refused(httpx.post(gw.url + route, headers=ADMIN, json=body), "metric ttft_s appears twice in metrics", "metrics")
    assert httpx.get(gw.url + route, headers=ADMIN).json()["data"] == []
    # a profile object with a metric twice is refused by the profile's own check
    inline = {k: v for k, v in body.items() if k != "metrics"} | {"profile": {"name": "p", "metrics": body["metrics"]}}
    r = httpx.post(gw.url + route, headers=ADMIN, json=inline)
    assert r.status_code == 400 and "duplicate metric names" in r.json()["error"]["message"], r.text
    assert httpx.get(gw.url + route, headers=ADMIN).json()["data"] == []


def test_configuration_refuses_a_version_or_budget_twice():
    ups = {"v@1": {"urls": ["http://x"]}}
    with pytest.raises(ValidationError, match="version v@1 appears twice in targets"):
        GatewayConfig(upstreams=ups, aliases={"m": [{"version": "v@1"}, {"version": "v@1", "weight": 2}]})
    with pytest.raises(ValidationError, match="budget month-tokens appears twice in budgets"):
        GatewayConfig(default_budgets=[{"period": "month", "kind": "tokens", "limit": 1}] * 2)
    with pytest.raises(ValidationError, match="budget day-spend appears twice in budgets"):
        GatewayConfig(tenants={"t": {"budgets": [{"period": "day", "limit": 1}, {"period": "day", "limit": 2}]}})


def test_cli_alias_with_a_version_twice_exits_2_and_changes_nothing(ledger_engine):
    config = GatewayConfig(
        upstreams={"v@1": {"urls": ["http://x"]}, "v@2": {"urls": ["http://y"]}}, aliases={"m": [{"version": "v@1"}]}
    )
    store = GovernanceStore(ledger_engine)
    seed(store, config)
    cli.set_store_factory(lambda c, d: (config, store))
    out = CliRunner().invoke(cli.models_app, ["alias", "m", "--target", "v@2=1", "--target", "v@2=3"])
    assert out.exit_code == 2 and "version v@2 appears twice in --target" in out.output, out.output
    assert [t.version for t in store.aliases()["m"]] == ["v@1"]
    assert [h["reason"] for h in store.alias_history("m")] == ["configured"]
