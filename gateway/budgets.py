"""Spend and token budgets per tenant (or key), per UTC day and calendar month.

Used = what the ledger billed for the period (the hourly rollups, the same numbers as the
usage API and the bill) + what this replica recorded that the ledger writer has not stored
yet. Replicas agree through the database within `budget_refresh_s`; with Redis configured,
per-period counters incremented at record time let them agree at once (the larger of the
two counts). A soft crossing is notified once per period: the first replica to insert the
`budget_notices` row sends the webhooks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import httpx
from sqlalchemy import Engine, Table, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger import queries
from ledger.models import BudgetNotice, TenantSettings
from ledger.record import RequestRecord

from .config import Budget, GatewayConfig
from .shared import RedisUnavailable, SharedRedis, key

log = logging.getLogger("inferwatch.gateway")
PERIOD_WORD = {"day": "daily", "month": "monthly"}
MAX_PENDING = 200_000  # records waiting for the ledger; beyond this (database long away) the oldest are forgotten


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # the reset time

    @classmethod
    def of(cls, kind: str, now: datetime) -> "Period":
        now = now.astimezone(timezone.utc)
        if kind == "day":
            start = now.replace(hour=0, minute=0, second=0, microsecond=0)
            return cls(start, start + timedelta(days=1))
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return cls(start, end)


def iso_z(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def scope_of(tenant: str, key_id: str | None) -> str:
    return tenant if key_id is None else f"{tenant}/{key_id}"


@dataclass(frozen=True)
class BudgetStatus:
    tenant: str
    budget: Budget
    period: Period
    used: float

    @property
    def ratio(self) -> float:
        return self.used / self.budget.limit

    @property
    def exceeded(self) -> bool:
        return self.used >= self.budget.limit

    @property
    def soft_crossed(self) -> bool:
        return self.budget.soft_percent is not None and self.ratio * 100 >= self.budget.soft_percent

    def describe(self) -> str:
        b = self.budget
        amount = f"${b.limit:,.2f}" if b.kind == "spend" else f"{b.limit:,.0f} tokens"
        who = f"key {b.key_id} of tenant {self.tenant}" if b.key_id else f"tenant {self.tenant}"
        kind = "spend" if b.kind == "spend" else "token"
        return f"{PERIOD_WORD[b.period]} {kind} budget of {amount} for {who}"

    def refusal(self) -> str:
        return f"The {self.describe()} is used up; it resets at {iso_z(self.period.end)}."

    def to_dict(self) -> dict[str, Any]:
        b = self.budget
        state = "exceeded" if self.exceeded else "soft_limit" if self.soft_crossed else "ok"
        return {
            "tenant": self.tenant,
            "key_id": b.key_id,
            "budget": b.name,
            "period": b.period,
            "kind": b.kind,
            "limit": b.limit,
            "used": round(self.used, 10),
            "remaining": round(max(0.0, b.limit - self.used), 10),
            "used_ratio": round(self.ratio, 6),
            "soft_percent": b.soft_percent,
            "hard": b.hard,
            "state": state,
            "period_start": iso_z(self.period.start),
            "resets_at": iso_z(self.period.end),
        }


def billed(engine: Engine, tenant: str, budgets: Sequence[Budget], now: datetime) -> list[BudgetStatus]:
    """Budget state from the ledger alone (the usage API and the CLI)."""
    out = []
    with Session(engine) as s:
        for b in budgets:
            p = Period.of(b.period, now)
            spent = queries.spend(s, tenant, p.start, p.end, key_id=b.key_id)
            out.append(BudgetStatus(tenant, b, p, spent.cost_usd if b.kind == "spend" else spent.tokens))
    return out


def tenant_budgets(settings: TenantSettings, config: GatewayConfig) -> tuple[Budget, ...]:
    """A tenant's own budgets (in its settings), else the gateway's defaults."""
    own = settings.budgets
    return tuple(Budget.model_validate(b) for b in own) if own is not None else tuple(config.default_budgets)


def report(store: Any, config: GatewayConfig, tenant: str | None, now: datetime) -> list[dict[str, Any]]:
    """Budget state of one tenant (or all) from the ledger: the usage API and the CLI."""
    tenants = [{"id": tenant, "settings": store.tenant_settings(tenant)}] if tenant else store.tenants()
    return [
        st.to_dict()
        for t in tenants
        for st in billed(store.engine, t["id"], tenant_budgets(TenantSettings.parse(t["settings"]), config), now)
    ]


@dataclass
class _Pending:
    tenant: str
    key_id: str | None
    started_at: datetime
    cost_usd: float
    tokens: int


def _counter_key(tenant: str, b: Budget, p: Period) -> str:
    return key("budget", scope_of(tenant, b.key_id), b.kind, b.period, int(p.start.timestamp()))


class BudgetTracker:
    def __init__(
        self,
        engine: Engine,
        redis: SharedRedis,
        *,
        clock: Callable[[], datetime],
        webhooks: Sequence[str] = (),
        on_status: Callable[[BudgetStatus], None] | None = None,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.clock = clock
        self.webhooks = list(webhooks)
        self._on_status = on_status or (lambda s: None)
        self._billed: dict[tuple[str, str | None, str, datetime], queries.Spend] = {}  # (tenant, key, period, start)
        # Recorded here, maybe not in the ledger yet, for tenants with budgets: the records by
        # tenant and request id (dropped once stored), and their sums by (tenant, key id or None
        # for the whole tenant, period kind, period start), so a check costs O(budgets).
        self._pending: dict[str, dict[str, _Pending]] = {}
        self._pending_count = 0
        self._pending_sums: dict[tuple[str, str | None, str, datetime], list[float]] = {}  # [cost, tokens, records]
        self._budgets: dict[str, list[Budget]] = {}  # tenants seen, with their budgets
        self._notified: set[tuple[str, str, datetime]] = set()
        self._tasks: set[asyncio.Task] = set()

    # ---- request path --------------------------------------------------------------------
    async def check(self, tenant: str, key_id: str | None, budgets: Sequence[Budget]) -> BudgetStatus | None:
        """The first hard budget that is used up, or None (the request may go on)."""
        mine = [b for b in budgets if b.key_id is None or b.key_id == key_id]
        self._budgets[tenant] = list(budgets)
        if not mine:
            return None
        now = self.clock()
        if any((tenant, b.key_id, b.period, Period.of(b.period, now).start) not in self._billed for b in mine):
            await self._load(tenant, now)  # first request of a tenant (or of a new period): read the ledger once
        for st in await self._statuses(tenant, mine, now):
            if st.budget.hard and st.exceeded:
                return st
        return None

    def add(self, rec: RequestRecord) -> None:
        """Count a record at once (called where the record is built)."""
        tokens = rec.total_tokens
        budgets = [b for b in self._budgets.get(rec.tenant, ()) if b.key_id is None or b.key_id == rec.key_id]
        if not budgets or (not rec.cost_usd and not tokens):
            return
        if self._pending_count >= MAX_PENDING:  # the database long away: forget the oldest of the largest tenant
            largest = max(self._pending.values(), key=len)
            self._drop_pending(next(iter(largest)), largest)
        self._add_pending(rec.request_id, _Pending(rec.tenant, rec.key_id, rec.started_at, rec.cost_usd, tokens))
        if self.redis.url:
            task = asyncio.get_running_loop().create_task(self._count_in_redis(rec, budgets))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _count_in_redis(self, rec: RequestRecord, budgets: list[Budget]) -> None:
        async def incr(r: Any) -> None:
            pipe = r.pipeline(transaction=False)
            for b in budgets:
                p = Period.of(b.period, rec.started_at)
                k = _counter_key(rec.tenant, b, p)
                if b.kind == "spend":
                    pipe.incrbyfloat(k, rec.cost_usd)
                else:
                    pipe.incrby(k, rec.total_tokens)
                pipe.expireat(k, int(p.end.timestamp()) + 86_400)
            await pipe.execute()

        try:
            await self.redis.run(incr)
        except RedisUnavailable:
            pass  # the ledger count covers it

    async def _statuses(self, tenant: str, budgets: Sequence[Budget], now: datetime) -> list[BudgetStatus]:
        out = []
        for b in budgets:
            p = Period.of(b.period, now)
            base = self._billed.get((tenant, b.key_id, b.period, p.start), queries.Spend(0.0, 0))
            pending = self._pending_sums.get((tenant, b.key_id, b.period, p.start), (0.0, 0))
            used: float = (base.cost_usd + pending[0]) if b.kind == "spend" else (base.tokens + pending[1])
            out.append(BudgetStatus(tenant, b, p, used))
        if self.redis.url:
            try:
                shared = await self.redis.run(lambda r: r.mget([_counter_key(tenant, s.budget, s.period) for s in out]))
                out = [
                    BudgetStatus(tenant, s.budget, s.period, max(s.used, float(v or 0)))
                    for s, v in zip(out, shared, strict=True)
                ]
            except RedisUnavailable:
                pass
        return out

    # ---- background ----------------------------------------------------------------------
    async def refresh(self) -> None:
        """Re-read every known tenant's spend from the ledger; notify soft crossings."""
        for tenant in list(self._budgets):
            await self.refresh_tenant(tenant)

    async def refresh_tenant(self, tenant: str) -> None:
        budgets = self._budgets.get(tenant) or []
        if not budgets:
            return
        now = self.clock()
        if not await self._load(tenant, now):
            return
        for st in await self._statuses(tenant, budgets, now):
            self._on_status(st)
            if st.soft_crossed:
                await self._notify_once(st)

    async def _load(self, tenant: str, now: datetime) -> bool:
        budgets = self._budgets.get(tenant) or []
        try:
            await asyncio.to_thread(self._read, tenant, budgets, now)
            return True
        except SQLAlchemyError as exc:
            # database away: keep the last numbers plus what this replica recorded since (a
            # period never read counts from zero until the database is back)
            log.warning("cannot read the budgets of %s from the ledger: %s", tenant, type(exc).__name__)
            for b in budgets:
                self._billed.setdefault(
                    (tenant, b.key_id, b.period, Period.of(b.period, now).start), queries.Spend(0.0, 0)
                )
            return False

    def _read(self, tenant: str, budgets: Sequence[Budget], now: datetime) -> None:
        ids = list(self._pending.get(tenant, ()))
        with Session(self.engine) as s:
            # ids first, sums second: a record stored in between is counted twice until the
            # next refresh, never missed
            stored = queries.stored_request_ids(s, ids) if ids else set()
            for b in budgets:
                p = Period.of(b.period, now)
                self._billed[(tenant, b.key_id, b.period, p.start)] = queries.spend(
                    s, tenant, p.start, p.end, key_id=b.key_id
                )
        mine = self._pending.get(tenant, {})
        for rid in stored:
            self._drop_pending(rid, mine)

    def _sum_keys(self, p: _Pending) -> list[tuple[str, str | None, str, datetime]]:
        keys = [None, p.key_id] if p.key_id is not None else [None]
        return [(p.tenant, k, kind, Period.of(kind, p.started_at).start) for k in keys for kind in ("day", "month")]

    def _add_pending(self, rid: str, p: _Pending) -> None:
        self._pending.setdefault(p.tenant, {})[rid] = p
        self._pending_count += 1
        for k in self._sum_keys(p):
            acc = self._pending_sums.setdefault(k, [0.0, 0, 0])  # cost, tokens, records
            acc[0] += p.cost_usd
            acc[1] += p.tokens
            acc[2] += 1

    def _drop_pending(self, rid: str, mine: dict[str, _Pending]) -> None:
        p = mine.pop(rid, None)
        if p is None:
            return
        self._pending_count -= 1
        for k in self._sum_keys(p):
            acc = self._pending_sums[k]
            acc[0] -= p.cost_usd
            acc[1] -= p.tokens
            acc[2] -= 1
            if acc[2] == 0:  # none left: no key per past period, no float drift
                del self._pending_sums[k]

    async def _notify_once(self, st: BudgetStatus) -> None:
        scope = scope_of(st.tenant, st.budget.key_id)
        mark = (scope, st.budget.name, st.period.start)
        if mark in self._notified:
            return
        self._notified.add(mark)
        try:
            claimed = await asyncio.to_thread(self._claim, scope, st)
        except SQLAlchemyError:
            self._notified.discard(mark)
            return
        if not claimed or not self.webhooks:
            return
        payload = {
            "kind": "budget_soft_limit",
            "message": f"The {st.describe()} is {st.ratio:.0%} used "
            f"(soft limit {st.budget.soft_percent:g} %); it resets at {iso_z(st.period.end)}.",
            **st.to_dict(),
        }
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                for url in self.webhooks:
                    (await client.post(url, json=payload)).raise_for_status()
        except httpx.HTTPError as exc:  # give the claim back: the next refresh tries again
            log.warning("budget webhook failed (%s): will retry", exc)
            await asyncio.to_thread(self._unclaim, scope, st)
            self._notified.discard(mark)

    def _claim(self, scope: str, st: BudgetStatus) -> bool:
        row = {
            "scope": scope,
            "budget": st.budget.name,
            "period_start": st.period.start,
            "used_ratio": st.ratio,
            "sent_at": datetime.now(timezone.utc),
        }
        table = cast(Table, BudgetNotice.__table__)  # typed FromClause; a declarative model's is a Table
        with self.engine.begin() as conn:
            insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
            return bool(conn.execute(insert.values(**row).on_conflict_do_nothing()).rowcount)

    def _unclaim(self, scope: str, st: BudgetStatus) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(BudgetNotice).where(
                    BudgetNotice.scope == scope,
                    BudgetNotice.budget == st.budget.name,
                    BudgetNotice.period_start == st.period.start,
                )
            )
