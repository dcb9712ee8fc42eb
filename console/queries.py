"""Read-only queries of the console over the ledger: traffic by alias and version from the
rollups, and the request explorer's keyset pages over the raw rows.

Every function takes a Session or Connection; time ranges are half-open [start, end), UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from ledger import queries as ledger_queries
from ledger.models import (
    ModelAlias,
    ModelAliasChange,
    ModelVersion,
    Request,
    RequestRollupBucketHour,
    RequestRollupBucketMinute,
    RequestRollupHour,
    RequestRollupMinute,
    SafetyHitRow,
)

Conn = Session | Connection


# --- traffic by alias and version (the overview) ------------------------------------------------


@dataclass
class Traffic:
    """Sums over a window for one (alias, version), or for everything (alias None)."""

    alias: str | None
    version: str | None
    requests: int = 0
    server_errors: int = 0  # 5xx
    client_errors: int = 0  # 4xx
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    answered: int = 0  # 2xx: the requests whose latency the percentiles describe
    ttft_count: int = 0  # 2xx with a first token
    latency: dict[float, int] = field(default_factory=dict)  # bound -> 2xx count in (previous bound, bound]
    ttft: dict[float, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def latency_quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.latency, self.answered)

    def ttft_quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.ttft, self.ttft_count)

    def add(self, other: "Traffic") -> None:
        for name in (
            "requests",
            "server_errors",
            "client_errors",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "cache_hits",
            "answered",
            "ttft_count",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.latency, other.latency), (self.ttft, other.ttft)):
            for le, n in theirs.items():
                mine[le] = mine.get(le, 0) + n


def histogram_quantile(q: float, buckets: dict[float, int], total: int) -> float | None:
    """Prometheus' estimate: linear inside the bucket holding rank q * total (from 0 at the
    first bucket). Values above the largest bound count toward `total` only; a rank among
    them gives the largest bound, as `histogram_quantile` does for the +Inf bucket."""
    if total <= 0 or not buckets:
        return None
    rank, seen, lower = q * total, 0, 0.0
    for le in sorted(buckets):
        n = buckets[le]
        if n and seen + n >= rank:
            return lower + (le - lower) * (rank - seen) / n
        seen += n
        lower = le
    return lower


def traffic(conn: Conn, start: datetime, end: datetime, *, hourly: bool, tenant: str | None = None) -> list[Traffic]:
    """Per (alias, version) over [start, end), from the hour rollups (`hourly`, for ranges
    on whole hours) or the minute ones; sorted by alias, then version."""
    R: type[RequestRollupHour] | type[RequestRollupMinute]
    B: type[RequestRollupBucketHour] | type[RequestRollupBucketMinute]
    if hourly:
        R, B = RequestRollupHour, RequestRollupBucketHour
        t_r, t_b = R.hour, B.hour
    else:
        R, B = RequestRollupMinute, RequestRollupBucketMinute
        t_r, t_b = R.minute, B.minute
    scope = [R.tenant == tenant] if tenant is not None else []
    out: dict[tuple[str, str], Traffic] = {}

    def slot(alias: str, version: str) -> Traffic:
        return out.setdefault((alias, version), Traffic(alias, version or None))

    stmt = (
        select(
            R.alias,
            R.model_version,
            R.status_class,
            func.sum(R.requests),
            func.sum(R.prompt_tokens),
            func.sum(R.completion_tokens),
            func.sum(R.cost_usd),
            func.sum(R.cache_hits),
            func.sum(R.ttft_count),
        )
        .where(t_r >= start, t_r < end, *scope)
        .group_by(R.alias, R.model_version, R.status_class)
    )
    for alias, version, sc, n, pt, ct, cost, hits, ttft_n in conn.execute(stmt):
        t = slot(alias, version)
        t.requests += int(n)
        t.prompt_tokens += int(pt)
        t.completion_tokens += int(ct)
        t.cost_usd += float(cost)
        t.cache_hits += int(hits or 0)
        if sc == "5xx":
            t.server_errors += int(n)
        elif sc == "4xx":
            t.client_errors += int(n)
        elif sc == "2xx":
            t.answered += int(n)
            t.ttft_count += int(ttft_n)
    bscope = [B.tenant == tenant] if tenant is not None else []
    bstmt = (
        select(B.alias, B.model_version, B.metric, B.le, func.sum(B.count))
        .where(t_b >= start, t_b < end, B.status_class == "2xx", B.metric.in_(("latency", "ttft")), *bscope)
        .group_by(B.alias, B.model_version, B.metric, B.le)
    )
    for alias, version, metric, le, n in conn.execute(bstmt):
        hist = slot(alias, version).latency if metric == "latency" else slot(alias, version).ttft
        hist[float(le)] = hist.get(float(le), 0) + int(n)
    return [out[k] for k in sorted(out)]


def total(rows: Iterable[Traffic]) -> Traffic:
    t = Traffic(None, None)
    for r in rows:
        t.add(r)
    return t


# --- the request explorer ----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFilter:
    tenant: str | None = None
    alias: str | None = None
    version: str | None = None
    status: str | None = None  # a code ("503") or a class ("5xx")
    error_type: str | None = None
    cache_hit: bool | None = None
    safety_action: str | None = None  # block, flag, redact...: requests with such a hit
    start: datetime | None = None
    end: datetime | None = None

    def conditions(self) -> list[Any]:
        conds: list[Any] = []
        for col, value in (
            (Request.tenant, self.tenant),
            (Request.alias, self.alias),
            (Request.model_version, self.version),
            (Request.error_type, self.error_type),
            (Request.cache_hit, self.cache_hit),
        ):
            if value is not None:
                conds.append(col == value)
        if self.status is not None:
            conds.append(
                Request.status_class == self.status
                if self.status.endswith("xx")
                else Request.status_code == int(self.status)
            )
        if self.safety_action is not None:
            conds.append(
                exists().where(SafetyHitRow.request_id == Request.request_id, SafetyHitRow.action == self.safety_action)
            )
        if self.start is not None:
            conds.append(Request.started_at >= self.start)
        if self.end is not None:
            conds.append(Request.started_at < self.end)
        return conds


Cursor = tuple[datetime, str]  # (started_at, request_id) of the last row of the previous page

EXPLORER_COLUMNS = (
    Request.request_id,
    Request.started_at,
    Request.tenant,
    Request.alias,
    Request.model_version,
    Request.operation,
    Request.status_code,
    Request.error_type,
    Request.latency_s,
    Request.ttft_s,
    Request.prompt_tokens,
    Request.completion_tokens,
    Request.cost_usd,
    Request.cache_hit,
    Request.trace_id,
)


def find_requests(conn: Conn, f: RequestFilter, *, after: Cursor | None = None, limit: int = 50) -> list[Any]:
    """Newest first, `limit` rows after the cursor: a keyset page, so page 1000 costs what page
    one does (the started_at indexes serve the order)."""
    stmt = select(*EXPLORER_COLUMNS).where(*f.conditions())
    if after is not None:
        t, rid = after
        # `started_at <= t` bounds the index scan; the OR breaks ties by request id.
        stmt = stmt.where(
            Request.started_at <= t,
            or_(Request.started_at < t, and_(Request.started_at == t, Request.request_id < rid)),
        )
    stmt = stmt.order_by(Request.started_at.desc(), Request.request_id.desc()).limit(limit)
    return list(conn.execute(stmt))


def minutes_back(now: datetime, minutes: int) -> tuple[datetime, datetime]:
    """[start, end) covering the last `minutes` minutes up to and including `now`'s minute."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(minutes=minutes), end


def hours_back(now: datetime, hours: int) -> tuple[datetime, datetime]:
    """[start, end) of the last `hours` UTC hours, the current (partial) one included."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(hours=hours), end


def per_minute(
    conn: Conn, start: datetime, end: datetime, *, tenant: str | None = None
) -> list[tuple[datetime, int, int]]:
    """(minute, requests, 5xx) for each minute of [start, end) that saw requests, oldest first."""
    R = RequestRollupMinute
    errors = func.sum(R.requests).filter(R.status_class == "5xx")
    stmt = (
        select(R.minute, func.sum(R.requests), errors)
        .where(R.minute >= start, R.minute < end, *([R.tenant == tenant] if tenant is not None else []))
        .group_by(R.minute)
        .order_by(R.minute)
    )
    return [(m, int(n), int(e or 0)) for m, n, e in conn.execute(stmt)]


# --- aliases (the rollouts' weights) -------------------------------------------------------


def alias_weights(conn: Conn) -> dict[str, list[tuple[str, float]]]:
    """Each alias's versions and weights as the gateways read them, versions sorted."""
    out: dict[str, list[tuple[str, float]]] = {}
    for alias, version, weight in conn.execute(
        select(ModelAlias.alias, ModelAlias.model_version, ModelAlias.weight).order_by(
            ModelAlias.alias, ModelAlias.model_version
        )
    ):
        out.setdefault(alias, []).append((version, float(weight)))
    return out


def alias_history(conn: Conn, alias: str | None = None, *, limit: int = 200) -> list[Any]:
    """Alias mappings (alias, changed_at, actor, reason, targets), newest first; one alias or all."""
    C = ModelAliasChange
    stmt = select(C.alias, C.changed_at, C.actor, C.reason, C.targets).order_by(C.id.desc()).limit(limit)
    if alias is not None:
        stmt = stmt.where(C.alias == alias)
    return list(conn.execute(stmt))


def model_versions(conn: Conn) -> list[Any]:
    """The registered versions, newest first."""
    V = ModelVersion
    return list(
        conn.execute(
            select(V.version, V.digest, V.source, V.notes, V.created_at, V.created_by).order_by(
                V.created_at.desc(), V.version
            )
        )
    )


def daily_usage(
    conn: Conn, start: datetime, end: datetime, *, tenant: str | None = None
) -> list[ledger_queries.UsageRow]:
    """`ledger.queries.usage` (the rows of GET /v1/usage) for whole UTC days, read from the hour
    rollups: the same sums (the writer keeps both in one transaction), some 60 times fewer rows."""
    H = RequestRollupHour
    day = ledger_queries.utc_day(H.hour)
    stmt = (
        select(
            H.tenant,
            day.label("day"),
            H.alias,
            H.model_version,
            func.sum(H.requests),
            func.sum(H.prompt_tokens),
            func.sum(H.completion_tokens),
            func.sum(H.cost_usd),
            func.sum(H.cache_hits),
            func.sum(H.cache_lookups),
        )
        .where(H.hour >= start, H.hour < end, *([H.tenant == tenant] if tenant is not None else []))
        .group_by(H.tenant, day, H.alias, H.model_version)
        .order_by(day, H.tenant, H.alias, H.model_version)
    )
    return [ledger_queries.UsageRow.from_row(row) for row in conn.execute(stmt)]


__all__ = [
    "Traffic",
    "traffic",
    "total",
    "histogram_quantile",
    "per_minute",
    "RequestFilter",
    "find_requests",
    "Cursor",
    "minutes_back",
    "hours_back",
    "alias_weights",
    "alias_history",
    "model_versions",
    "daily_usage",
]
