"""Traffic and spend of a week from the hourly rollups: the report's cost and usage numbers.

The hourly rollups hold the same sums as the raw request rows (the writer adds both in one
transaction), and a week is whole hours, so these totals equal the raw rows' while reading
up to 168 rows per slice instead of every request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from ledger.models import RequestRollupHour as RH
from ledger.models import Tenant
from ledger.queries import Conn, utc_day
from reports.model import DailySpend, Line

_SUMS = ("requests", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits", "cache_lookups")
Slice = tuple[str, str, str]  # tenant, alias, model version ('' when none)


def slices(conn: Conn, start: datetime, end: datetime) -> dict[Slice, dict[str, float]]:
    """Sums per (tenant, alias, model version) over the hours in [start, end)."""
    stmt = (
        select(RH.tenant, RH.alias, RH.model_version, *(func.sum(getattr(RH, c)) for c in _SUMS))
        .where(RH.hour >= start, RH.hour < end)
        .group_by(RH.tenant, RH.alias, RH.model_version)
    )
    return {
        (t, a, v): dict(zip(_SUMS, (float(x or 0) for x in sums), strict=True)) for t, a, v, *sums in conn.execute(stmt)
    }


def daily_spend(conn: Conn, start: datetime, end: datetime) -> dict[str, dict[date, float]]:
    """Spend per tenant and UTC day over the hours in [start, end)."""
    day = utc_day(RH.hour)
    stmt = select(RH.tenant, day, func.sum(RH.cost_usd)).where(RH.hour >= start, RH.hour < end).group_by(RH.tenant, day)
    out: dict[str, dict[date, float]] = defaultdict(dict)
    for tenant, d, cost in conn.execute(stmt):
        out[tenant][d if isinstance(d, date) else date.fromisoformat(str(d)[:10])] = float(cost or 0)
    return dict(out)


def known_tenants(conn: Conn) -> list[str]:
    return list(conn.execute(select(Tenant.id).order_by(Tenant.id)).scalars())


def _line(name: str, now: Iterable[dict[str, float]], prev: Iterable[dict[str, float]], **dims: Any) -> Line:
    cur = {c: sum(s[c] for s in now) for c in _SUMS}
    before = {c: sum(s[c] for s in prev) for c in ("requests", "cost_usd")}
    return Line(
        name=name,
        **dims,
        requests=int(cur["requests"]),
        prompt_tokens=int(cur["prompt_tokens"]),
        completion_tokens=int(cur["completion_tokens"]),
        cost_usd=cur["cost_usd"],
        cache_hits=int(cur["cache_hits"]),
        prev_requests=int(before["requests"]),
        prev_cost_usd=before["cost_usd"],
    )


def _group(
    now: dict[Slice, dict[str, float]], prev: dict[Slice, dict[str, float]], key: Any, extra: Iterable[Any] = ()
) -> dict[Any, tuple[list[dict[str, float]], list[dict[str, float]]]]:
    groups: dict[Any, tuple[list[dict[str, float]], list[dict[str, float]]]] = {k: ([], []) for k in extra}
    for i, data in enumerate((now, prev)):
        for s, sums in data.items():
            groups.setdefault(key(s), ([], []))[i].append(sums)
    return groups


def _by_cost(lines: list[Line]) -> list[Line]:
    return sorted(lines, key=lambda x: (-x.cost_usd, -x.prev_cost_usd, x.name))


def lines(
    now: dict[Slice, dict[str, float]], prev: dict[Slice, dict[str, float]], tenants: Iterable[str]
) -> tuple[Line, list[Line], list[Line], list[Line]]:
    """(totals, by tenant, by alias, by alias and version), each slice with last week's
    requests and spend; `tenants` are listed even without traffic in either week."""
    total = _line("all traffic", now.values(), prev.values())
    by_tenant = [_line(t, *g, tenant=t) for t, g in _group(now, prev, lambda s: s[0], tenants).items()]
    by_alias = [_line(a, *g, alias=a) for a, g in _group(now, prev, lambda s: s[1]).items()]
    by_model = [
        _line(f"{a} · {v or '(no version)'}", *g, alias=a, model_version=v or None)
        for (a, v), g in _group(now, prev, lambda s: (s[1], s[2])).items()
    ]
    return total, _by_cost(by_tenant), _by_cost(by_alias), _by_cost(by_model)


def week_days(by_tenant_day: dict[str, dict[date, float]], days: Iterable[date]) -> list[DailySpend]:
    out = []
    for d in days:
        spend = {t: v[d] for t, v in sorted(by_tenant_day.items()) if v.get(d)}
        out.append(DailySpend(day=d, cost_usd=sum(spend.values()), by_tenant=spend))
    return out
