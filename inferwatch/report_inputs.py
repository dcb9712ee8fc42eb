"""What the weekly report needs from the gateway: its budgets, counted per period as the
gateway counts them, and its cache settings and prices.

`reports/` may not import `gateway/` (see DESIGN.md); the composition root joins them here:

    ReportService(engine, config, directory, slos, **report_inputs(engine, settings.gateway))
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gateway.budgets import Period, tenant_budgets
from gateway.config import GatewayConfig
from ledger import queries
from ledger.governance import GovernanceStore
from ledger.models import TenantSettings
from reports.cache_section import MissCost
from reports.data import BudgetsOf
from reports.model import BudgetLine


def periods(kind: str, start: datetime, until: datetime) -> Iterator[Period]:
    """The budget periods ("day" or "month") that overlap [start, until)."""
    t = start
    while t < until:
        p = Period.of(kind, t)
        yield p
        t = p.end


def budget_lines(engine: Engine, config: GatewayConfig) -> BudgetsOf:
    """Every tenant's budgets (its own, else the gateway's defaults) over each of their periods
    that overlaps [start, until), used up to `until` (the ledger's billed numbers, as the
    gateway's budget check and `GET /v1/usage` read them). None when no tenant has a budget."""
    store = GovernanceStore(engine)

    def lines(start: datetime, until: datetime) -> list[BudgetLine] | None:
        out = []
        tenants = store.tenants()
        with Session(engine) as s:
            for tenant in tenants:
                for b in tenant_budgets(TenantSettings.parse(tenant["settings"]), config):
                    for p in periods(b.period, start, until):
                        counted_until = min(p.end, until)
                        spent = queries.spend(s, tenant["id"], p.start, counted_until, key_id=b.key_id)
                        out.append(
                            BudgetLine(
                                tenant=tenant["id"],
                                budget=b.name,
                                key_id=b.key_id,
                                kind=b.kind,
                                period=b.period,
                                period_start=p.start,
                                period_end=p.end,
                                counted_until=counted_until,
                                limit=b.limit,
                                used=spent.cost_usd if b.kind == "spend" else spent.tokens,
                                soft_percent=b.soft_percent,
                                hard=b.hard,
                            )
                        )
        return out or None

    return lines


def miss_cost(config: GatewayConfig) -> MissCost:
    """What a request would have cost without the cache, at the gateway's prices."""
    return lambda alias, version, prompt, completion: config.price_for(version, alias).cost(prompt, completion)


def report_inputs(engine: Engine, config: GatewayConfig) -> dict[str, Any]:
    """`ReportService`'s keyword arguments that come from the gateway."""
    return {
        "budgets": budget_lines(engine, config),
        "cache_enabled": config.cache.enabled,
        "miss_cost": miss_cost(config),
    }
