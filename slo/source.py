"""The evaluator's input read from the ledger's minute rollups (read-only).

Each SLI kind has the same meaning as in the Prometheus rules (`alerts.promql`):

- availability: bad = 5xx, valid = every request but 4xx;
- latency: successful (2xx) requests with a value at or under the threshold, over those with a
  value at all (the histograms observe successful requests only);
- cost: spend over the allowed spend (requests x budget per 1k / 1000), all requests;
- safety incidents: not computable. The rollups count requests with any safety hit
  (`safety_flagged`) or any block (`safety_blocked`) without the hit's direction, while the SLI
  counts requests with a blocked or flagged text in one direction. `UnsupportedSource` says so.

One query over the rollups and one over the buckets serve every SLO at once (reading 30 days
of rows is the cost, not the SLOs). They aggregate per minute in SQL and return epoch minutes,
so 30 days of rollups never become Python datetimes or per-minute objects.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ledger.models import RequestRollupBucketMinute as B
from ledger.models import RequestRollupMinute as R
from ledger.queries import Conn, MinutePoint
from ledger.rollups import minute_of
from slo.evaluator import Evaluation, MinuteSeries, evaluate, period_bounds, to_minute
from slo.model import SLO, AvailabilitySLI, CostSLI, LatencyMetric, LatencySLI, SafetySLI, Selector

if TYPE_CHECKING:
    from slo.cache import SeriesCache

_THRESHOLD_TOLERANCE = 1e-9  # as ledger.queries: a threshold equal to a bound matches despite float noise
_COUNT_COLUMN = {LatencyMetric.E2E: R.requests, LatencyMetric.TTFT: R.ttft_count, LatencyMetric.TPOT: R.tpot_count}


class UnsupportedSource(NotImplementedError):
    """The ledger does not expose the counts this SLI needs."""


SAFETY_UNSUPPORTED = (
    "the ledger's minute rollups count requests with any safety hit (safety_flagged) or any block "
    "(safety_blocked) without the hit's direction, so the share of requests with a blocked or "
    "flagged {direction} cannot be computed from them; it needs per-direction incident counts in "
    "request_rollups_minute (the Prometheus rule uses inferwatch_safety_incidents_total)"
)


def unsupported_reason(slo: SLO) -> str | None:
    """Why `slo` cannot be evaluated from the rollups, or None when it can."""
    if isinstance(slo.sli, SafetySLI):
        return SAFETY_UNSUPPORTED.format(direction=slo.sli.direction)
    return None


class epoch_minute(FunctionElement[Any]):
    """Minutes since the epoch of a UTC timestamp column, as an integer."""

    inherit_cache = True
    name = "epoch_minute"


@compiles(epoch_minute)
def _epoch_minute_sqlite(element: epoch_minute, compiler: Any, **kw: Any) -> str:
    # stored as naive UTC text (ledger.models.UTCDateTime)
    return f"(CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER) / 60)"


@compiles(epoch_minute, "postgresql")
def _epoch_minute_postgresql(element: epoch_minute, compiler: Any, **kw: Any) -> str:
    return f"(CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS BIGINT) / 60)"


def _scope(model: Any, sel: Selector) -> list[Any]:
    conds = []
    for column, values in (("alias", sel.model_alias), ("model_version", sel.model_version), ("tenant", sel.tenant)):
        if values:
            conds.append(getattr(model, column).in_(list(values)))
    return conds


def _range(model: Any, start: datetime, end: datetime) -> list[Any]:
    return [model.minute >= minute_of(start), model.minute < end]


def _sum_if(conds: list[Any], value: Any) -> Any:
    return func.sum(case((and_(*conds), value), else_=0)) if conds else func.sum(value)


def _rows(conn: Conn, stmt: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(epoch minutes, values as a (rows, width) float array) of a per-minute statement."""
    rows = conn.execute(stmt).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width))
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1:]


def ledger_series_many(conn: Conn, slos: Iterable[SLO], start: datetime, end: datetime) -> dict[SLO, MinuteSeries]:
    """Every SLO's per-minute (good, total) over [start, end), in one pass over the rollups
    and one over the buckets (reading 30 days of them is what costs; the SLOs are cheap)."""
    items = list(dict.fromkeys(slos))
    for slo in items:
        if unsupported_reason(slo) or not isinstance(slo.sli, (AvailabilitySLI, LatencySLI, CostSLI)):
            raise UnsupportedSource(f"{slo.id}: {unsupported_reason(slo) or f'no ledger source for {slo.kind} SLIs'}")
    if not items:
        return {}
    cols: list[Any] = []  # aggregates over the rollups
    bcols: list[Any] = []  # aggregates over the buckets
    where: dict[SLO, tuple[int, ...]] = {}  # the SLO's columns: rollup indices, then bucket ones
    for slo in items:
        sli, scope = slo.sli, _scope(R, slo.selector)
        n = len(cols)
        if isinstance(sli, AvailabilitySLI):
            cols += [_sum_if([*scope, R.status_class == "5xx"], R.requests),
                     _sum_if([*scope, R.status_class != "4xx"], R.requests)]
            where[slo] = (n, n + 1)
        elif isinstance(sli, LatencySLI):
            cols.append(_sum_if([*scope, R.status_class == "2xx"], _COUNT_COLUMN[sli.metric]))
            bcols.append(_sum_if([*_scope(B, slo.selector), B.metric == sli.metric.ledger_metric,
                                  B.le <= sli.threshold_s * (1 + _THRESHOLD_TOLERANCE)], B.count))
            where[slo] = (n, len(bcols) - 1)
        else:
            cols += [_sum_if(scope, R.requests), _sum_if(scope, R.cost_usd)]
            where[slo] = (n, n + 1)
    m, v = _rows(conn, select(epoch_minute(R.minute), *cols).where(*_range(R, start, end)).group_by(R.minute),
                 len(cols))
    bm, bv = np.zeros(0, dtype=np.int64), np.zeros((0, 0))
    if bcols:
        bstmt = (select(epoch_minute(B.minute), *bcols)
                 .where(*_range(B, start, end), B.status_class == "2xx").group_by(B.minute))
        bm, bv = _rows(conn, bstmt, len(bcols))
    out: dict[SLO, MinuteSeries] = {}
    for slo in items:
        i, j = where[slo]
        sli = slo.sli
        if isinstance(sli, AvailabilitySLI):
            out[slo] = MinuteSeries.from_arrays(m, v[:, j] - v[:, i], v[:, j])
        elif isinstance(sli, LatencySLI):
            # good comes from the buckets, total from the rollups: their minutes may differ
            out[slo] = MinuteSeries.from_arrays(np.concatenate([m, bm]), np.concatenate([np.zeros(len(m)), bv[:, j]]),
                                                np.concatenate([v[:, i], np.zeros(len(bm))]))
        else:
            allowed = v[:, i] * sli.budget_usd_per_1k_requests / 1000.0  # type: ignore[union-attr]
            out[slo] = MinuteSeries.from_arrays(m, allowed - v[:, j], allowed)
    return out


def ledger_series(conn: Conn, slo: SLO, start: datetime, end: datetime) -> MinuteSeries:
    """The SLO's per-minute (good, total) over [start, end) from the rollups."""
    return ledger_series_many(conn, [slo], start, end)[slo]


def points_to_series(slo: SLO, points: Iterable[MinutePoint]) -> MinuteSeries:
    """(minute, good, total) per `ledger.queries.minute_series` point, for an availability or
    latency SLO (the same mapping as `ledger_series`)."""
    rows = []
    for p in points:
        if isinstance(slo.sli, AvailabilitySLI):
            valid = p.requests - p.by_status_class.get("4xx", 0)
            rows.append((p.minute, valid - p.by_status_class.get("5xx", 0), valid))
        elif isinstance(slo.sli, LatencySLI):
            if p.metric_count is None or p.under_threshold is None:
                raise ValueError("latency points need metric_count and under_threshold")
            rows.append((p.minute, p.under_threshold, p.metric_count))
        else:
            raise UnsupportedSource(f"{slo.id}: {slo.kind} SLIs cannot be read from minute_series")
    return MinuteSeries.from_points(rows)


def fetch_bounds(slo: SLO, at: int) -> tuple[int, int]:
    """[start, end) epoch minutes an evaluation at minute `at` reads: the period, and at least
    the longest burn-rate window (3 days)."""
    start_minute, _ = period_bounds(slo, at)
    return min(start_minute, at - 3 * 1440), at


def as_datetime(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=timezone.utc)


def evaluate_ledger(conn: Conn, slo: SLO, now: datetime, *, cache: SeriesCache | None = None) -> Evaluation:
    """Evaluate `slo` at `now` (windows end at the start of now's minute) from the ledger."""
    return evaluate_ledger_many(conn, [slo], now, cache=cache)[slo]


def evaluate_ledger_many(conn: Conn, slos: Iterable[SLO], now: datetime, *,
                         cache: SeriesCache | None = None) -> dict[SLO, Evaluation]:
    """Evaluate every SLO at `now` with one read of the rollups. `cache` (a
    `slo.cache.SeriesCache`) re-reads only the recent minutes of SLOs evaluated before."""
    at = to_minute(now)
    wants = {slo: fetch_bounds(slo, at) for slo in slos}
    if cache is not None:
        series = cache.series_many(conn, wants)
    elif wants:
        start = min(s for s, _ in wants.values())
        series = ledger_series_many(conn, wants, as_datetime(start), as_datetime(at))
    else:
        series = {}
    return {slo: evaluate(slo, series[slo], now=at) for slo in wants}
