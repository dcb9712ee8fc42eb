"""Read side of the ledger: usage, per-minute SLO series, canary samples, retention.

Every function takes a `Session` or a `Connection` and leaves the transaction to the caller.
Time ranges are half-open, [start, end), in UTC (naive datetimes are taken as UTC). Usage
and SLO series read the minute rollups, so they are exact to the minute and stay cheap after
raw rows are purged; canary samples read raw rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, delete, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from ledger.models import (
    Request,
    RequestRollupBucketMinute,
    RequestRollupHour,
    RequestRollupMinute,
    SafetyHitRow,
)
from ledger.record import RequestRecord, SafetyHit
from ledger.rollups import minute_of
from ledger.store import RECORD_COLUMNS

Conn = Session | Connection

R = RequestRollupMinute
B = RequestRollupBucketMinute
_METRIC_COUNT = {"latency": R.requests, "ttft": R.ttft_count, "tpot": R.tpot_count}
_THRESHOLD_TOLERANCE = 1e-9  # so that a threshold equal to a bound matches despite float noise


class utc_day(FunctionElement[Any]):
    """The UTC calendar day of a timestamp column, whatever the session's time zone."""

    inherit_cache = True
    name = "utc_day"


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"  # stored as naive UTC text


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"date(timezone('UTC', {compiler.process(element.clauses, **kw)}))"


def _selectors(model: Any, *, alias: str | None, model_version: str | None, tenant: str | None) -> list[Any]:
    conds = []
    if alias is not None:
        conds.append(model.alias == alias)
    if model_version is not None:
        conds.append(model.model_version == model_version)
    if tenant is not None:
        conds.append(model.tenant == tenant)
    return conds


def _minute_range(model: Any, start: datetime, end: datetime) -> list[Any]:
    """Rollup minutes overlapping [start, end): the minute holding `start` is included."""
    return [model.minute >= minute_of(start), model.minute < end]


# --- usage (GET /v1/usage) -----------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    tenant: str
    day: date  # UTC day
    alias: str
    model_version: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cache_hits: int = 0
    cache_lookups: int = 0  # requests the response cache was asked about (hits and misses)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> UsageRow:
        """From a row of (tenant, day, alias, version, and the sums of requests, prompt tokens,
        completion tokens, cost, cache hits, cache lookups), as both rollups' queries select it."""
        t, d, a, v, n, pt, ct, c, h, lk = row
        return cls(
            tenant=t,
            day=d if isinstance(d, date) else date.fromisoformat(str(d)[:10]),  # SQLite gives text
            alias=a,
            model_version=v or None,
            requests=int(n),
            prompt_tokens=int(pt),
            completion_tokens=int(ct),
            cost_usd=float(c),
            cache_hits=int(h or 0),
            cache_lookups=int(lk or 0),
        )


def usage(conn: Conn, start: datetime, end: datetime, *, tenant: str | None = None) -> list[UsageRow]:
    """Requests, tokens and cost per (tenant, UTC day, alias, model version) over
    [start, end); one tenant, or all tenants when `tenant` is None (admin)."""
    day = utc_day(R.minute)
    stmt = (
        select(
            R.tenant,
            day.label("day"),
            R.alias,
            R.model_version,
            func.sum(R.requests),
            func.sum(R.prompt_tokens),
            func.sum(R.completion_tokens),
            func.sum(R.cost_usd),
            func.sum(R.cache_hits),
            func.sum(R.cache_lookups),
        )
        .where(*_minute_range(R, start, end), *([R.tenant == tenant] if tenant is not None else []))
        .group_by(R.tenant, day, R.alias, R.model_version)
        .order_by(day, R.tenant, R.alias, R.model_version)
    )
    return [UsageRow.from_row(row) for row in conn.execute(stmt)]


@dataclass(frozen=True)
class Spend:
    cost_usd: float
    tokens: int  # prompt + completion


def spend(conn: Conn, tenant: str, start: datetime, end: datetime, *, key_id: str | None = None) -> Spend:
    """What a tenant (or one of its keys) was billed over [start, end), whole UTC hours: the
    numbers usage and the bill show. A tenant reads the hourly rollups; a key, its raw rows."""
    if key_id is None:
        H = RequestRollupHour
        stmt = select(func.sum(H.cost_usd), func.sum(H.prompt_tokens + H.completion_tokens)).where(
            H.tenant == tenant, H.hour >= start, H.hour < end
        )
    else:
        stmt = select(func.sum(Request.cost_usd), func.sum(Request.prompt_tokens + Request.completion_tokens)).where(
            Request.tenant == tenant, Request.key_id == key_id, Request.started_at >= start, Request.started_at < end
        )
    cost, tokens = conn.execute(stmt).one()
    return Spend(float(cost or 0.0), int(tokens or 0))


def stored_request_ids(conn: Conn, request_ids: Sequence[str]) -> set[str]:
    """Which of these request ids are in the ledger already."""
    out: set[str] = set()
    for i in range(0, len(request_ids), 500):
        out.update(
            conn.execute(select(Request.request_id).where(Request.request_id.in_(request_ids[i : i + 500]))).scalars()
        )
    return out


# --- SLO evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class MinutePoint:
    minute: datetime
    requests: int
    by_status_class: dict[str, int] = field(default_factory=dict)  # {"2xx": 95, "5xx": 5}
    by_error_type: dict[str, int] = field(default_factory=dict)  # requests with an error_type
    metric_count: int | None = None  # requests that have a value for `metric`
    under_threshold: int | None = None  # ... and whose value is <= threshold


def minute_series(
    conn: Conn,
    start: datetime,
    end: datetime,
    *,
    alias: str | None = None,
    model_version: str | None = None,
    tenant: str | None = None,
    metric: str | None = None,
    threshold: float | None = None,
    metric_status_classes: Sequence[str] | None = None,
) -> list[MinutePoint]:
    """Per-minute counts for SLI evaluation, oldest first; minutes without requests are absent.

    Selectors (alias, model_version, tenant) left as None match everything; model_version
    "" selects requests never routed to a version. With `metric` ("latency", "ttft" or
    "tpot") and `threshold` (seconds), `under_threshold` counts requests with value <=
    threshold and `metric_count` those with a value at all; both can be limited to
    `metric_status_classes` (e.g. ["2xx"]). The threshold must be a histogram bucket bound
    of the writer (see ledger.buckets.with_thresholds); otherwise the count covers only
    values up to the largest bound below it.
    """
    if (metric is None) != (threshold is None):
        raise ValueError("metric and threshold go together")
    if metric is not None and metric not in _METRIC_COUNT:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(_METRIC_COUNT)}")
    sel = _selectors(R, alias=alias, model_version=model_version, tenant=tenant)
    metric_col = _METRIC_COUNT[metric] if metric else R.requests
    stmt = (
        select(R.minute, R.status_class, R.error_type, func.sum(R.requests), func.sum(metric_col))
        .where(*_minute_range(R, start, end), *sel)
        .group_by(R.minute, R.status_class, R.error_type)
    )
    acc: dict[datetime, dict[str, Any]] = {}
    for minute, sc, et, n, mc in conn.execute(stmt):
        p = acc.setdefault(minute, {"requests": 0, "sc": {}, "et": {}, "mc": 0})
        p["requests"] += int(n)
        p["sc"][sc] = p["sc"].get(sc, 0) + int(n)
        if et:
            p["et"][et] = p["et"].get(et, 0) + int(n)
        if metric_status_classes is None or sc in metric_status_classes:
            p["mc"] += int(mc)

    under: dict[datetime, int] = {}
    if metric is not None and threshold is not None:
        bconds = [
            *_minute_range(B, start, end),
            *_selectors(B, alias=alias, model_version=model_version, tenant=tenant),
            B.metric == metric,
            B.le <= threshold * (1 + _THRESHOLD_TOLERANCE),
        ]
        if metric_status_classes is not None:
            bconds.append(B.status_class.in_(list(metric_status_classes)))
        bstmt = select(B.minute, func.sum(B.count)).where(*bconds).group_by(B.minute)
        under = {m: int(c) for m, c in conn.execute(bstmt)}

    return [
        MinutePoint(
            minute=m,
            requests=p["requests"],
            by_status_class=p["sc"],
            by_error_type=p["et"],
            metric_count=p["mc"] if metric else None,
            under_threshold=under.get(m, 0) if metric else None,
        )
        for m, p in sorted(acc.items())
    ]


# --- canary analysis -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    request_id: str
    started_at: datetime
    status_code: int
    error: bool  # status_code >= 500: the server's fault (4xx are the client's)
    latency_s: float
    ttft_s: float | None
    tpot_s: float | None
    cost_usd: float
    completion_tokens: int
    output_tokens_per_s: float | None  # completion_tokens / latency_s; None without tokens


def canary_samples(
    conn: Conn,
    model_versions: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    alias: str | None = None,
    tenant: str | None = None,
    limit_per_version: int | None = None,
) -> dict[str, list[Sample]]:
    """Raw per-request samples for each model version in [start, end), oldest first. With
    `limit_per_version`, the most recent ones are kept. Cache hits are left out: a cached
    answer says nothing about how the version serves."""
    out: dict[str, list[Sample]] = {}
    for version in model_versions:
        stmt = (
            select(
                Request.request_id,
                Request.started_at,
                Request.status_code,
                Request.latency_s,
                Request.ttft_s,
                Request.tpot_s,
                Request.cost_usd,
                Request.completion_tokens,
            )
            .where(
                Request.model_version == version,
                Request.cache_hit.is_(False),
                Request.started_at >= start,
                Request.started_at < end,
                *_selectors(Request, alias=alias, model_version=None, tenant=tenant),
            )
            .order_by(Request.started_at.desc())
        )
        if limit_per_version is not None:
            stmt = stmt.limit(limit_per_version)
        rows = list(conn.execute(stmt))
        rows.reverse()
        out[version] = [
            Sample(
                request_id=rid,
                started_at=ts,
                status_code=code,
                error=code >= 500,
                latency_s=lat,
                ttft_s=ttft,
                tpot_s=tpot,
                cost_usd=cost,
                completion_tokens=ct,
                output_tokens_per_s=ct / lat if ct > 0 and lat > 0 else None,
            )
            for rid, ts, code, lat, ttft, tpot, cost, ct in rows
        ]
    return out


# --- single records and retention ----------------------------------------------------------


def get_record(conn: Conn, request_id: str) -> RequestRecord | None:
    """The stored record of one request, with its safety hits, or None."""
    cols = [getattr(Request, c) for c in RECORD_COLUMNS]
    row = conn.execute(select(*cols).where(Request.request_id == request_id)).first()
    if row is None:
        return None
    hits = conn.execute(
        select(
            SafetyHitRow.direction,
            SafetyHitRow.category,
            SafetyHitRow.scanner,
            SafetyHitRow.action,
            SafetyHitRow.score,
            SafetyHitRow.excerpt,
        )
        .where(SafetyHitRow.request_id == request_id)
        .order_by(SafetyHitRow.id)
    )
    return RequestRecord(**dict(zip(RECORD_COLUMNS, row, strict=True)), safety=[SafetyHit(*h) for h in hits])


def purge_raw_rows(conn: Conn, older_than: datetime) -> int:
    """Delete raw request rows (and their safety hits) that started before `older_than`;
    rollups are kept. Returns the number of requests deleted; the caller commits."""
    old = select(Request.request_id).where(Request.started_at < older_than)
    conn.execute(delete(SafetyHitRow).where(SafetyHitRow.request_id.in_(old)))
    result = cast(CursorResult[Any], conn.execute(delete(Request).where(Request.started_at < older_than)))
    return int(result.rowcount or 0)
