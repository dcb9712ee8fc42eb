"""Budgets: refusal at the limit, reset at the period boundary, soft notices once per period,
and two gateway processes sharing a PostgreSQL ledger enforcing one budget together."""

from __future__ import annotations

from collections.abc import Callable
import sys
import time
from datetime import datetime, timezone

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.budgets import Period
from gateway.config import Budget, TenantConfig
from ledger.db import create_engine_for
from ledger.governance import GovernanceStore
from ledger.models import BudgetNotice
from tests.governance.conftest import PRICES, stub_pair_gateway
from tests.servers import ROOT, Proc, ThreadedServer, free_port, spawn_logged, wait_ready
from tests.prom_text import samples

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}  # $1 each


def wait_for(cond, what: str, timeout: float = 20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if v := cond():
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_periods_are_utc_days_and_calendar_months():
    t = datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert Period.of("day", t) == Period(
        datetime(2026, 12, 31, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    )
    assert Period.of("month", t) == Period(
        datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    )
    assert Period.of("month", datetime(2027, 2, 10, 5, tzinfo=timezone.utc)).end == datetime(
        2027, 3, 1, tzinfo=timezone.utc
    )


def test_hard_budget_refuses_at_the_limit_and_resets_next_period(tmp_path):
    hooks: list[dict] = []
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> dict:
        hooks.append(await request.json())
        return {}

    budgets = [
        Budget(period="day", kind="spend", limit=3, soft_percent=50),
        Budget(period="month", kind="tokens", limit=1000, soft_percent=None),
    ]
    with (
        ThreadedServer(receiver) as rx,
        stub_pair_gateway(
            tmp_path,
            tenants={"acme": TenantConfig(budgets=budgets), "globex": TenantConfig()},
            budget_refresh_s=0.2,
            budget_webhooks=[rx.url + "/hook"],
        ) as (h, _, _),
    ):
        now = [datetime(2030, 1, 31, 23, 0, tzinfo=timezone.utc)]
        h.gateway.clock = lambda: now[0]

        def send(tenant: str = "acme") -> httpx.Response:
            return httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers=h.headers(tenant), timeout=10)

        assert [send().status_code for _ in range(3)] == [200, 200, 200]
        refused = send()
        assert refused.status_code == 429
        err = refused.json()["error"]
        assert err["code"] == "budget_exceeded"
        assert (
            err["message"]
            == "The daily spend budget of $3.00 for tenant acme is used up; it resets at 2030-02-01T00:00:00Z."
        )
        assert int(refused.headers["retry-after"]) == 3600
        assert send("globex").status_code == 200  # another tenant's budget is its own

        usage = httpx.get(h.url + "/v1/usage", headers=h.headers("acme")).json()
        day = next(b for b in usage["budgets"] if b["budget"] == "day-spend")
        assert (day["used"], day["remaining"], day["state"]) == (3.0, 0.0, "exceeded")
        # the soft limit (50 %) was crossed once this period: one webhook, one notice row
        wait_for(lambda: hooks, "the soft-limit webhook")
        time.sleep(0.5)  # several refreshes later: still one
        assert len(hooks) == 1 and hooks[0]["budget"] == "day-spend" and hooks[0]["tenant"] == "acme"
        with Session(h.gateway.store.engine) as s:
            assert s.scalar(select(func.count()).select_from(BudgetNotice)) == 1

        now[0] = datetime(2030, 2, 1, 0, 0, 5, tzinfo=timezone.utc)  # the next day (and month): budgets reset
        assert send().status_code == 200
        assert h.metric("inferwatch_rate_limited_total", tenant="acme", limit="budget") == 1
        wait_for(
            lambda: h.metric("inferwatch_budget_used_ratio", tenant="acme", budget="day-spend") == pytest.approx(1 / 3),
            "the gauge",
        )


def _start_gateway(tmp_path, name: str, config: dict) -> Proc:
    port = free_port()
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({**config, "port": port, "data_dir": str(tmp_path / name)}))
    log = tmp_path / f"{name}.log"
    proc = spawn_logged(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tests.governance.gateway_process:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        log,
        cwd=ROOT,
        env={"INFERWATCH_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, log, deadline_s=60)
    return Proc(url, proc, log)


def _spend_across(urls: list[str], headers: dict[str, str], seen: Callable[[], list[float | None]]) -> list[int]:
    """Six $1 requests alternating between replicas under a $4 budget; after each success,
    wait until the ledger has it and every replica that saw the tenant has read it back."""
    codes = []
    for i in range(6):
        r = httpx.post(urls[i % 2] + "/v1/chat/completions", json=CHAT, headers=headers, timeout=10)
        codes.append(r.status_code)
        if r.status_code == 200:
            n = codes.count(200)
            wait_for(
                lambda n=n: (
                    httpx.get(urls[0] + "/v1/usage", headers=headers).json()["totals"]["cost_usd"] == n
                    and all(ratio in (None, pytest.approx(n / 4)) for ratio in seen())
                ),
                f"both replicas to count {n}",
            )
        else:
            assert r.json()["error"]["code"] == "budget_exceeded"
    return codes


def test_two_replicas_share_one_budget_through_the_database(tmp_path):
    from tests.governance.test_shared_redis import two_replicas

    tenants = {"acme": TenantConfig(budgets=[Budget(period="month", kind="spend", limit=4)])}
    with two_replicas(tmp_path, None, tenants=tenants, prices=PRICES, budget_refresh_s=0.2) as (a, b, _):

        def seen() -> list[float | None]:
            return [
                h.gateway.metrics.registry.get_sample_value(
                    "inferwatch_budget_used_ratio", {"tenant": "acme", "budget": "month-spend"}
                )
                for h in (a, b)
            ]

        assert _spend_across([a.url, b.url], a.headers("acme"), seen) == [200, 200, 200, 200, 429, 429]


@pytest.mark.slow
@pytest.mark.postgres
def test_two_gateway_processes_share_one_budget_through_the_database(tmp_path, pg_server):
    from tests.gateway.conftest import stub_server

    db = pg_server.create_database("budget_two_gateways")
    with stub_server() as stub:
        config = {
            "database_url": db,
            "admin_key": "admin-key-budgets-0123",
            "gateway": {
                "upstreams": {"stub@1": {"urls": [stub.url]}},
                "aliases": {"m": [{"version": "stub@1"}]},
                "prices": PRICES,
                "key_cache_ttl_s": 0,
                "budget_refresh_s": 0.2,
                "tenants": {"acme": {"budgets": [{"period": "month", "kind": "spend", "limit": 4}]}},
            },
        }
        a = _start_gateway(tmp_path, "a", config)
        b = _start_gateway(tmp_path, "b", config)
        try:
            engine = create_engine_for(db)
            key = GovernanceStore(engine).create_key("acme").secret
            engine.dispose()  # its pooled connection, else closed only when collected
            headers = {"authorization": f"Bearer {key}"}

            def seen() -> list[float | None]:
                out = []
                for gw in (a, b):
                    text = httpx.get(gw.url + "/metrics").text
                    found = samples(text, "inferwatch_budget_used_ratio", budget="month-spend", tenant="acme")
                    out.append(found[0].value if found else None)
                return out

            assert _spend_across([a.url, b.url], headers, seen) == [200, 200, 200, 200, 429, 429]
            assert (
                httpx.get(b.url + "/v1/usage", headers=headers).json()["totals"]["cost_usd"] == 4.0
            )  # the budget and the bill agree
        finally:
            a.stop()
            b.stop()
