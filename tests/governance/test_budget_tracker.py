"""The budget tracker's own books: what this replica recorded but the ledger may not hold yet.
Kept only for tenants with budgets, summed per period, and dropped once the ledger has it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ledger.buckets import normalize
from ledger.db import create_engine_for, migrate
from ledger.record import RequestRecord
from ledger.store import write_records
from gateway.budgets import BudgetTracker
from gateway.config import Budget
from gateway.shared import SharedRedis

NOW = datetime(2026, 11, 30, 23, 59, 0, tzinfo=timezone.utc)  # a minute before a new day and month


def rec(rid: str, tenant: str, cost: float, at: datetime = NOW, key_id: str = "k1") -> RequestRecord:
    return RequestRecord(
        request_id=rid,
        started_at=at,
        tenant=tenant,
        key_id=key_id,
        operation="chat",
        alias="m",
        model_version="v",
        upstream="u",
        status_code=200,
        latency_s=0.1,
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd=cost,
    )


def test_pending_spend_is_per_tenant_per_period_and_dropped_once_stored(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'l.db'}")
    migrate(engine)
    clock = [NOW]
    t = BudgetTracker(engine, SharedRedis(None, 5.0), clock=lambda: clock[0])
    day = Budget(period="day", kind="spend", limit=10.0)
    month_tokens = Budget(period="month", kind="tokens", limit=1000)
    key_day = Budget(period="day", kind="spend", limit=3.0, key_id="k2")

    async def scenario() -> None:
        assert await t.check("acme", "k1", [day, month_tokens, key_day]) is None
        assert await t.check("free", "k9", []) is None
        for i in range(4):
            t.add(rec(f"a{i}", "acme", 2.0))
        t.add(rec("b0", "acme", 2.0, key_id="k2"))
        for i in range(1000):  # a tenant without budgets leaves nothing behind
            t.add(rec(f"f{i}", "free", 1.0, key_id="k9"))
        assert set(t._pending) == {"acme"} and t._pending_count == 5

        status = {s.budget.name: s.used for s in await t._statuses("acme", [day, month_tokens, key_day], NOW)}
        assert status == {"day-spend": 10.0, "month-tokens": 75, "day-spend-k2": 2.0}
        assert (await t.check("acme", "k1", [day, month_tokens, key_day])).budget is day  # 10 of 10: used up

        with engine.begin() as conn:  # the ledger now holds three of them: counted once, not twice
            write_records(conn, [rec(f"a{i}", "acme", 2.0) for i in range(3)], normalize(None))
        await t.refresh_tenant("acme")
        assert t._pending_count == 2
        status = {s.budget.name: s.used for s in await t._statuses("acme", [day, month_tokens, key_day], NOW)}
        assert status == {"day-spend": 10.0, "month-tokens": 75, "day-spend-k2": 2.0}

        clock[0] = NOW + timedelta(minutes=2)  # a new day and a new month: nothing pending counts there
        status = {s.budget.name: s.used for s in await t._statuses("acme", [day, month_tokens, key_day], clock[0])}
        assert status == {"day-spend": 0.0, "month-tokens": 0, "day-spend-k2": 0.0}

        with engine.begin() as conn:
            write_records(conn, [rec("a3", "acme", 2.0), rec("b0", "acme", 2.0, key_id="k2")], normalize(None))
        await t.refresh_tenant("acme")
        assert t._pending_count == 0 and t._pending_sums == {}  # no key left behind per past period

    asyncio.run(scenario())
