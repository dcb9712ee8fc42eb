"""Model registry (versions, alias changes with history and rollback, version mismatch) and
the audit log's hash chain, through the admin API and the CLI."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import text
from typer.testing import CliRunner

from gateway import cli
from gateway.config import GatewayConfig
from gateway.seed import seed
from gateway.upstreams import Breaker, Replica
from ledger import audit
from ledger.governance import GovernanceStore
from tests.governance.conftest import ADMIN_KEY, stub_pair_gateway
from tests.servers import wait_until

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def test_alias_change_rollback_and_audit_through_the_api(tmp_path):
    with stub_pair_gateway(tmp_path) as (h, _, _):
        r = httpx.post(
            h.url + "/v1/admin/models",
            headers=ADMIN,
            json={"version": "stub@2", "digest": "sha256:ab12", "notes": "candidate"},
        )
        assert r.status_code == 201 and r.json()["digest"] == "sha256:ab12"  # the configured version gets its digest
        conflict = httpx.post(
            h.url + "/v1/admin/models", headers=ADMIN, json={"version": "stub@2", "digest": "sha256:ffff"}
        )
        assert conflict.status_code == 409  # a version is immutable
        bad = httpx.put(h.url + "/v1/admin/aliases/m", headers=ADMIN, json={"targets": [{"version": "nope@1"}]})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_version"

        r = httpx.put(
            h.url + "/v1/admin/aliases/m",
            headers=ADMIN,
            json={"targets": [{"version": "stub@1", "weight": 0.5}, {"version": "stub@2", "weight": 0.5}]},
        )
        assert r.status_code == 200
        assert {t.version: t.weight for t in h.gateway.aliases.aliases["m"]} == {
            "stub@1": 0.5,
            "stub@2": 0.5,
        }  # applied at once here

        r = httpx.post(h.url + "/v1/admin/aliases/m/rollback", headers=ADMIN)
        assert r.json()["targets"] == [{"version": "stub@1", "weight": 1.0}]
        assert [t.version for t in h.gateway.aliases.aliases["m"]] == ["stub@1"]
        history = httpx.get(h.url + "/v1/admin/aliases/m", headers=ADMIN).json()["history"]
        assert [x["reason"] for x in history] == ["rollback", "admin", "configured"]

        tenant = httpx.post(
            h.url + "/v1/admin/tenants",
            headers=ADMIN,
            json={"id": "initech", "budgets": [{"period": "day", "limit": 5}]},
        )
        assert tenant.status_code == 201
        key = httpx.post(h.url + "/v1/admin/keys", headers=ADMIN, json={"tenant": "initech"}).json()
        httpx.delete(h.url + f"/v1/admin/keys/{key['key_id']}", headers=ADMIN)

        log = httpx.get(h.url + "/v1/admin/audit", headers=ADMIN, params={"actor": "admin", "limit": 50}).json()["data"]
        assert [e["action"] for e in log] == [
            "model.complete",
            "alias.set",
            "alias.rollback",
            "tenant.create",
            "key.create",
            "key.revoke",
        ]
        assert log[2]["before"] == [{"version": "stub@1", "weight": 0.5}, {"version": "stub@2", "weight": 0.5}]
        assert log[2]["after"] == [{"version": "stub@1", "weight": 1.0}]
        only_alias = httpx.get(h.url + "/v1/admin/audit", headers=ADMIN, params={"action": "alias."}).json()["data"]
        assert {e["action"] for e in only_alias} == {"alias.set", "alias.rollback"}
        assert httpx.get(h.url + "/v1/admin/audit/verify", headers=ADMIN).json()["ok"] is True
        assert httpx.get(h.url + "/v1/admin/audit", headers=h.headers("acme")).status_code == 403


def test_a_worker_reporting_other_weights_than_registered_is_a_mismatch(tmp_path):
    """End to end: the registry holds stub@1's digest; the worker's /v1/models reports one."""
    with stub_pair_gateway(tmp_path) as (h, s1, _):
        s1.behaviour.digest = "sha256:aaaa"
        r = httpx.post(h.url + "/v1/admin/models", headers=ADMIN, json={"version": "stub@1", "digest": "sha256:aaaa"})
        assert r.status_code == 201

        def mismatched() -> list[str]:
            card = httpx.get(h.url + "/v1/models", headers=h.headers()).json()["data"][0]
            return next(v for v in card["versions"] if v["version"] == "stub@1")["mismatched_upstreams"]

        def gauge() -> float | None:
            return h.gateway.metrics.registry.get_sample_value(
                "inferwatch_model_version_mismatch", {"model_alias": "m", "upstream": s1.url}
            )

        wait_until(
            lambda: gauge() == 0 and s1.behaviour.requests == 0 and mismatched() == [], "the matching digest to be seen"
        )
        s1.behaviour.digest = "sha256:bbbb"  # the worker restarted with other weights under the same name
        wait_until(lambda: mismatched() == [s1.url], "the health check to see the other digest")
        wait_until(lambda: gauge() == 1, "the mismatch gauge")


def test_registry_is_the_expected_side_of_the_version_a_worker_reports(tmp_path):
    with stub_pair_gateway(tmp_path) as (h, _, _):
        gw = h.gateway
        gw.registry = {"stub@1": {"digest": "sha256:aaaa"}}
        r = Replica("http://w", "stub@1", Breaker(5, 10), reported_version="stub@1", reported_digest="sha256:aaaa")
        assert not gw.mismatch(r)
        r.reported_digest = "sha256:bbbb"  # the worker loaded other weights under the same name
        assert gw.mismatch(r)
        r.reported_digest, r.reported_version = None, "stub@9"
        assert gw.mismatch(r)
        models = httpx.get(h.url + "/v1/models", headers=h.headers()).json()["data"][0]["versions"][0]
        assert models["mismatched_upstreams"] == [] and "registered_digest" in models


def test_audit_chain_detects_an_edited_and_a_removed_entry(ledger_engine):
    store = GovernanceStore(ledger_engine)
    seed(store, GatewayConfig(tenants={"acme": {}}))
    store.upsert_tenant("acme", settings={"rpm": 5}, actor="k1")
    store.upsert_tenant("acme", settings={"rpm": 5}, actor="k1")  # no change: no entry
    store.upsert_tenant("acme", settings={"rpm": 9}, actor="k2")
    assert audit.record_if_changed(ledger_engine, action="slo.specs", target="default", state={"slos": ["a"]})
    assert not audit.record_if_changed(ledger_engine, action="slo.specs", target="default", state={"slos": ["a"]})
    entries = audit.entries(ledger_engine)
    assert [(e["seq"], e["actor"], e["action"]) for e in entries] == [
        (1, "config", "tenant.create"),
        (2, "k1", "tenant.update"),
        (3, "k2", "tenant.update"),
        (4, "config", "slo.specs"),
    ]
    assert audit.verify(ledger_engine).ok

    with ledger_engine.begin() as c:  # someone rewrites history: k2 set 90, not 9
        c.execute(
            text("UPDATE audit_log SET after = :a WHERE seq = 3"),
            {"a": json.dumps({"name": "acme", "settings": {"rpm": 90}})},
        )
    v = audit.verify(ledger_engine)
    assert (v.ok, v.first_bad_seq, v.entries) == (False, 3, 2) and "edited" in v.reason

    with ledger_engine.begin() as c:
        c.execute(text("UPDATE audit_log SET after = :a WHERE seq = 3"), {"a": json.dumps(entries[2]["after"])})
    assert audit.verify(ledger_engine).ok  # restored exactly: intact again
    with ledger_engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE seq = 4"))  # the tail cut off
    v = audit.verify(ledger_engine)
    assert not v.ok and v.first_bad_seq == 4


def test_cli_models_alias_rollback_and_audit_verify(ledger_engine):
    config = GatewayConfig(
        upstreams={"v@1": {"urls": ["http://x"]}, "v@2": {"urls": ["http://y"]}}, aliases={"m": [{"version": "v@1"}]}
    )
    store = GovernanceStore(ledger_engine)
    seed(store, config)
    cli.set_store_factory(lambda c, d: (config, store))
    run = CliRunner().invoke
    assert run(cli.models_app, ["register", "v@3", "--digest", "sha256:cc", "--param", 'dtype="bf16"']).exit_code == 0
    listed = json.loads(run(cli.models_app, ["list", "--json"]).output)
    assert {v["version"] for v in listed["versions"]} == {"v@1", "v@2", "v@3"}
    assert next(v for v in listed["versions"] if v["version"] == "v@3")["parameters"] == {"dtype": "bf16"}

    out = run(cli.models_app, ["alias", "m", "--target", "v@1=90", "--target", "v@3=10", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["targets"] == [
        {"version": "v@1", "weight": 90.0},
        {"version": "v@3", "weight": 10.0},
    ]
    assert run(cli.models_app, ["alias", "m", "--target", "nope@1"]).exit_code == 1
    out = run(cli.models_app, ["alias", "m", "--rollback", "--json"])
    assert json.loads(out.output)["targets"] == [{"version": "v@1", "weight": 1.0}]
    assert run(cli.models_app, ["alias", "m", "--rollback", "--target", "v@1"]).exit_code == 2

    ok = run(cli.audit_app, ["verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    actions = [e["action"] for e in json.loads(run(cli.audit_app, ["list", "--action", "alias.", "--json"]).output)]
    assert actions == ["alias.set", "alias.set", "alias.rollback"]
    with ledger_engine.begin() as c:
        c.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"))
    bad = run(cli.audit_app, ["verify"])
    assert bad.exit_code == 1 and "entry 2" in bad.output
    assert json.loads(run(cli.budgets_app, ["list", "--json"]).output) == []
