"""The evaluator's input read from the ledger's rollups (read-only).

Each SLI kind has the same meaning as in the Prometheus rules (`alerts.promql`):

- availability: bad = 5xx, valid = every request but 4xx;
- latency: requests with a value at or under the threshold, over those with a value at all;
  end-to-end latency counts successful (2xx) requests only (as its histogram observes them),
  TTFT and TPOT every request that has one, a stream that broke after its first token included;
- cost: spend over the allowed spend (requests x budget per 1k / 1000), all requests;
- safety incidents: bad = requests with a blocked or flagged hit in the SLI's direction
  (`safety_incidents_input` / `safety_incidents_output`, what
  `inferwatch_safety_incidents_total{direction}` counts), total = all requests. Minutes
  written before migration 0005 have no incidents recorded.

The same statements serve every SLO at once (reading the rows is the cost, not the SLOs). They
aggregate per minute in SQL and return epoch minutes, so 30 days of rollups never become Python
datetimes or per-minute objects.

Minutes or hours: the windows up to 6 h read the minute rollups; the rest of the period (the
1 d and 3 d windows, the period SLI) reads the hourly rollups (`request_rollups_hour`, 60x
fewer rows), each hour's sums placed at the hour's first minute of the dense series. Results
stay exact: every hour that holds the start of a window (or of the period) is read from the
minutes, and so is everything from the hour 6 h before the evaluation on (the current partial
hour included). `hour_spans` plans this; `horizon` keeps it exact for later evaluations too
(what `slo.cache.SeriesCache` needs). Only `minutes_since_traffic` is to the hour beyond 6 h.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ledger.models import RequestRollupBucketHour as BH
from ledger.models import RequestRollupBucketMinute as B
from ledger.models import RequestRollupHour as RH
from ledger.models import RequestRollupMinute as R
from ledger.queries import Conn, MinutePoint
from ledger.rollups import minute_of
from slo.evaluator import Evaluation, MinuteSeries, evaluate, period_bounds, to_minute
from slo.model import SLO, AvailabilitySLI, CostSLI, LatencyMetric, LatencySLI, SafetySLI, Selector

_THRESHOLD_TOLERANCE = 1e-9  # as ledger.queries: a threshold equal to a bound matches despite float noise
_COUNT_COLUMN = {LatencyMetric.E2E: "requests", LatencyMetric.TTFT: "ttft_count", LatencyMetric.TPOT: "tpot_count"}
_INCIDENT_COLUMN = {"input": "safety_incidents_input", "output": "safety_incidents_output"}
SHORT_WINDOW_MINUTES = 360  # windows up to this long always read minutes
Span = tuple[int, int]  # [begin, end) epoch minutes


class SeriesReads(Protocol):
    """What an evaluation needs of a cache (`slo.cache.SeriesCache` is one): dense series over
    [start, end) epoch minutes per SLO. Named here so this module need not import the cache."""

    def series_many(self, conn: Conn, wants: Mapping[SLO, tuple[int, int]]) -> dict[SLO, MinuteSeries]: ...


class UnsupportedSource(NotImplementedError):
    """The ledger does not expose the counts this SLI needs."""


def unsupported_reason(slo: SLO) -> str | None:
    """Why `slo` cannot be evaluated from the rollups, or None when it can."""
    if not isinstance(slo.sli, (AvailabilitySLI, LatencySLI, CostSLI, SafetySLI)):
        return f"{slo.kind.value} SLIs query Prometheus, not the ledger; set slo.prometheus_url to evaluate them"
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


_COLUMNS = {"model_alias": "alias", "model_version": "model_version", "tenant": "tenant", "operation": "operation"}


def _column(model: Any, label: str) -> Any:
    return getattr(model, _COLUMNS[label])


def _scope(model: Any, sel: Selector) -> list[Any]:
    """The selector as conditions: `in` each label's values, `not in` each excluded label's."""
    conds = [_column(model, k).in_(list(v)) for k, v in sel.items()]
    conds += [_column(model, k).notin_(list(v)) for k, v in sel.exclude]
    return conds


def _availability(rm: Any, sli: AvailabilitySLI) -> tuple[Any, Any]:
    """(bad, valid) conditions, as `alerts.promql.availability_series`."""
    bad, valid = rm.status_class == "5xx", rm.status_class != "4xx"
    if sli.bad_error_types:
        counted = and_(rm.status_class == "4xx", rm.error_type.in_(list(sli.bad_error_types)))
        bad, valid = or_(bad, counted), or_(valid, counted)
    return bad, valid


def _sum_if(conds: list[Any], value: Any) -> Any:
    return func.sum(case((and_(*conds), value), else_=0)) if conds else func.sum(value)


def _rows(conn: Conn, stmt: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(epoch minutes, values as a (rows, width) float array) of a per-minute statement."""
    rows = conn.execute(stmt).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, width))
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1:]


# --- which hours come from the hourly rollups -------------------------------------------------


def floor_hour(minute: int) -> int:
    return minute - minute % 60


def ceil_hour(minute: int) -> int:
    return -floor_hour(-minute)


def window_starts(slo: SLO, at: int) -> set[int]:
    """The first minutes of every sum an evaluation of `slo` at `at` takes."""
    starts = {at - m for m in slo.sli_windows().values()}
    starts.add(period_bounds(slo, at)[0])
    starts.add(at - slo.alerting.no_data_after_minutes)
    if slo.alerting.no_traffic_after_minutes is not None:
        starts.add(at - slo.alerting.no_traffic_after_minutes)
    return starts


def hour_spans(slos: Iterable[SLO], begin: int, at: int, horizon: int = 0) -> list[Span]:
    """Hour-aligned spans within [begin, at) to read from the hourly rollups so that every
    evaluation at a minute in [at, at + horizon] is exact: no span holds a window's first
    minute, and none reaches into the last `SHORT_WINDOW_MINUTES` before `at`."""
    lo, hi = ceil_hour(begin), floor_hour(at - SHORT_WINDOW_MINUTES)
    if hi <= lo:
        return []
    exact: list[Span] = []  # minute-resolved, hour-aligned
    for slo in slos:
        for s in window_starts(slo, at):
            if s < hi:
                exact.append((floor_hour(s), ceil_hour(s + horizon + 1)))
    spans: list[Span] = []
    cur = lo
    for a, b in sorted(exact):
        if a > cur:
            spans.append((cur, min(a, hi)))
        cur = max(cur, b)
        if cur >= hi:
            break
    if cur < hi:
        spans.append((cur, hi))
    return [(a, b) for a, b in spans if b > a]


def as_datetime(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=timezone.utc)


def _in_spans(column: Any, spans: list[Span]) -> Any:
    return or_(*(and_(column >= as_datetime(a), column < as_datetime(b)) for a, b in spans))


# --- the read ----------------------------------------------------------------------------------


def _columns(items: list[SLO], rm: Any, bm: Any) -> tuple[list[Any], list[Any], dict[SLO, tuple[int, int]]]:
    """Aggregates over the rollups (`rm`) and the buckets (`bm`) of every SLO, and which of
    them each SLO reads (rollup index, then rollup or bucket index)."""
    cols: list[Any] = []
    bcols: list[Any] = []
    where: dict[SLO, tuple[int, int]] = {}
    for slo in items:
        sli, scope = slo.sli, _scope(rm, slo.selector)
        n = len(cols)
        if isinstance(sli, AvailabilitySLI):
            bad, valid = _availability(rm, sli)
            cols += [_sum_if([*scope, bad], rm.requests), _sum_if([*scope, valid], rm.requests)]
            where[slo] = (n, n + 1)
        elif isinstance(sli, LatencySLI):
            counted = [rm.status_class == "2xx"] if sli.metric is LatencyMetric.E2E else []
            bcounted = [bm.status_class == "2xx"] if sli.metric is LatencyMetric.E2E else []
            cols.append(_sum_if([*scope, *counted], getattr(rm, _COUNT_COLUMN[sli.metric])))
            bcols.append(
                _sum_if(
                    [
                        *_scope(bm, slo.selector),
                        *bcounted,
                        bm.metric == sli.metric.ledger_metric,
                        bm.le <= sli.threshold_s * (1 + _THRESHOLD_TOLERANCE),
                    ],
                    bm.count,
                )
            )
            where[slo] = (n, len(bcols) - 1)
        elif isinstance(sli, SafetySLI):
            cols += [_sum_if(scope, getattr(rm, _INCIDENT_COLUMN[sli.direction])), _sum_if(scope, rm.requests)]
            where[slo] = (n, n + 1)
        else:
            cols += [_sum_if(scope, rm.requests), _sum_if(scope, rm.cost_usd)]
            where[slo] = (n, n + 1)
    return cols, bcols, where


def ledger_series_many(
    conn: Conn, slos: Iterable[SLO], start: datetime, end: datetime, *, hours: list[Span] | None = None
) -> dict[SLO, MinuteSeries]:
    """Every SLO's per-minute (good, total) over [start, end): for all SLOs at once, one
    statement over the rollups and one over the buckets per range of minutes. `hours`
    (hour-aligned epoch-minute spans, see `hour_spans`) are read from the hourly rollups
    instead (one more pair of statements), each hour's sums at its first minute."""
    items = list(dict.fromkeys(slos))
    for slo in items:
        reason = unsupported_reason(slo)
        if reason:
            raise UnsupportedSource(f"{slo.id}: {reason}")
    if not items:
        return {}
    hours = [(a, b) for a, b in (hours or []) if b > a]
    for a, b in hours:
        if a % 60 or b % 60:
            raise ValueError(f"hour span [{a}, {b}) is not hour-aligned")

    # The minutes between the hour spans, each range read by its own statement: a range the
    # primary key (minute first) serves. A NOT over the spans would scan every minute of the
    # period, and SQLite plans an OR of ranges no better.
    gaps: list[tuple[datetime, datetime]] = []
    cur = minute_of(start)
    for a, b in sorted(hours):
        if as_datetime(a) > cur:
            gaps.append((cur, as_datetime(a)))
        cur = max(cur, as_datetime(b))
    if cur < end or not gaps:
        gaps.append((cur, end))  # (an empty range still gives every SLO its empty series)
    parts = [
        _read_part(conn, items, R, B, "minute", lambda model, a=a, b=b: [model.minute >= a, model.minute < b])
        for a, b in gaps
    ]
    if hours:
        parts.append(_read_part(conn, items, RH, BH, "hour", lambda model: [_in_spans(model.hour, hours)]))
    out: dict[SLO, MinuteSeries] = {}
    for slo in items:
        ms, gs, ts = [], [], []
        for m, v, bm, bv, where in parts:
            i, j = where[slo]
            sli = slo.sli
            if isinstance(sli, (AvailabilitySLI, SafetySLI)):  # i: bad, j: valid
                ms.append(m)
                gs.append(v[:, j] - v[:, i])
                ts.append(v[:, j])
            elif isinstance(sli, LatencySLI):
                # good comes from the buckets, total from the rollups: their minutes may differ
                ms += [m, bm]
                gs += [np.zeros(len(m)), bv[:, j]]
                ts += [v[:, i], np.zeros(len(bm))]
            else:
                allowed = v[:, i] * sli.budget_usd_per_1k_requests / 1000.0  # type: ignore[union-attr]
                ms.append(m)
                gs.append(allowed - v[:, j])
                ts.append(allowed)
        out[slo] = MinuteSeries.from_arrays(np.concatenate(ms), np.concatenate(gs), np.concatenate(ts))
    return out


def _read_part(conn: Conn, items: list[SLO], rm: Any, bm: Any, time_col: str, conds_of: Any) -> tuple[Any, ...]:
    cols, bcols, where = _columns(items, rm, bm)
    t = getattr(rm, time_col)
    m, v = _rows(conn, select(epoch_minute(t), *cols).where(*conds_of(rm)).group_by(t), len(cols))
    bmin, bv = np.zeros(0, dtype=np.int64), np.zeros((0, len(bcols)))
    if bcols:
        bt = getattr(bm, time_col)
        bstmt = select(epoch_minute(bt), *bcols).where(*conds_of(bm)).group_by(bt)
        bmin, bv = _rows(conn, bstmt, len(bcols))
    return m, v, bmin, bv, where


def ledger_series(conn: Conn, slo: SLO, start: datetime, end: datetime) -> MinuteSeries:
    """The SLO's per-minute (good, total) over [start, end) from the minute rollups."""
    return ledger_series_many(conn, [slo], start, end)[slo]


def points_to_series(slo: SLO, points: Iterable[MinutePoint]) -> MinuteSeries:
    """(minute, good, total) per `ledger.queries.minute_series` point, for an availability or
    latency SLO (the same mapping as `ledger_series`)."""
    rows = []
    for p in points:
        if isinstance(slo.sli, AvailabilitySLI):
            if slo.sli.bad_error_types:
                raise UnsupportedSource(f"{slo.id}: minute_series points have no error types")
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


def evaluate_ledger(
    conn: Conn, slo: SLO, now: datetime, *, cache: SeriesReads | None = None, hourly: bool = True
) -> Evaluation:
    """Evaluate `slo` at `now` (windows end at the start of now's minute) from the ledger."""
    return evaluate_ledger_many(conn, [slo], now, cache=cache, hourly=hourly)[slo]


Group = tuple[tuple[str, str], ...]  # a group's (label, value) pairs, sorted; () when ungrouped


def group_values(conn: Conn, slo: SLO, start: int, end: int) -> list[dict[str, str]]:
    """The groups of a grouped own-kind SLO: each distinct combination of its `group_by` labels
    in its traffic of [start, end) epoch minutes (read from the hourly rollups, hour-aligned)."""
    by = slo.selector.group_by
    stmt = (
        select(*(_column(RH, k) for k in by))
        .where(RH.hour >= as_datetime(floor_hour(start)), RH.hour < as_datetime(end), *_scope(RH, slo.selector))
        .distinct()
    )
    return [dict(zip(by, row, strict=True)) for row in conn.execute(stmt)]


def evaluate_ledger_groups(
    conn: Conn, slos: Iterable[SLO], now: datetime, *, cache: SeriesReads | None = None, hourly: bool = True
) -> dict[SLO, dict[Group, Evaluation]]:
    """Evaluate every SLO at `now`, one evaluation per group of a grouped SLO (`{(): ...}` for
    the others, and for a grouped SLO without traffic). Each group is the SLO with its grouping
    labels pinned (`SLO.for_group`), so it reads what its grouped rules sum."""
    at = to_minute(now)
    units: dict[SLO, dict[Group, SLO]] = {}
    for slo in slos:
        groups = group_values(conn, slo, fetch_bounds(slo, at)[0], at) if slo.selector.group_by else []
        units[slo] = {tuple(sorted(g.items())): slo.for_group(g) for g in groups} or {(): slo}
    evs = evaluate_ledger_many(conn, [u for d in units.values() for u in d.values()], now, cache=cache, hourly=hourly)
    return {slo: {g: evs[u] for g, u in d.items()} for slo, d in units.items()}


def evaluate_ledger_many(
    conn: Conn, slos: Iterable[SLO], now: datetime, *, cache: SeriesReads | None = None, hourly: bool = True
) -> dict[SLO, Evaluation]:
    """Evaluate every SLO at `now` with one read of the rollups. `cache` (a
    `slo.cache.SeriesCache`) re-reads only the recent minutes of SLOs evaluated before.
    `hourly=False` reads minutes only (the same results, slower; a cache decides itself)."""
    at = to_minute(now)
    wants = {slo: fetch_bounds(slo, at) for slo in slos}
    if cache is not None:
        series = cache.series_many(conn, wants)
    elif wants:
        start = min(s for s, _ in wants.values())
        hours = hour_spans(wants, start, at) if hourly else None
        series = ledger_series_many(conn, wants, as_datetime(start), as_datetime(at), hours=hours)
    else:
        series = {}
    return {slo: evaluate(slo, series[slo], now=at) for slo in wants}
