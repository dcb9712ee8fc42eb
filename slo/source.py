"""The evaluator's input read from the ledger's minute rollups (read-only).

Availability and latency SLOs come from `ledger.queries.minute_series`, with the same meaning
as the Prometheus rules: availability counts 5xx over every request but 4xx; latency counts
successful (2xx) requests with a value at or under the threshold, like the histograms, which
observe successful requests only. Safety and cost SLOs need per-direction incident counts and
per-minute spend, which `minute_series` does not return yet: they raise `UnsupportedSource`.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timezone

from ledger.queries import Conn, MinutePoint, minute_series
from slo.evaluator import Evaluation, MinuteSeries, evaluate, period_bounds, to_minute
from slo.model import SLO, AvailabilitySLI, LatencySLI


class UnsupportedSource(NotImplementedError):
    """The ledger does not expose the counts this SLI needs."""


def points_to_series(slo: SLO, points: Iterable[MinutePoint]) -> MinuteSeries:
    """(minute, good, total) per ledger minute for an availability or latency SLO."""
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


def ledger_series(conn: Conn, slo: SLO, start: datetime, end: datetime) -> MinuteSeries:
    """The SLO's per-minute series over [start, end) from the ledger."""
    if not isinstance(slo.sli, (AvailabilitySLI, LatencySLI)):
        raise UnsupportedSource(
            f"{slo.id}: the ledger has no per-minute {slo.kind} counts in ledger.queries.minute_series")
    kw = {}
    if isinstance(slo.sli, LatencySLI):
        kw = {"metric": slo.sli.metric.ledger_metric, "threshold": slo.sli.threshold_s,
              "metric_status_classes": ["2xx"]}
    sel = slo.selector
    points: list[MinutePoint] = []
    # minute_series takes one value per selector; lists are disjoint, so their sums add up.
    for alias, version, tenant in itertools.product(sel.model_alias or (None,), sel.model_version or (None,),
                                                    sel.tenant or (None,)):
        points += minute_series(conn, start, end, alias=alias, model_version=version, tenant=tenant, **kw)
    return points_to_series(slo, points)


def evaluate_ledger(conn: Conn, slo: SLO, now: datetime) -> Evaluation:
    """Evaluate `slo` at `now` (windows end at the start of now's minute) from the ledger."""
    at = to_minute(now)
    start_minute, _ = period_bounds(slo, at)
    start = datetime.fromtimestamp(min(start_minute, at - 3 * 1440) * 60, tz=timezone.utc)
    end = datetime.fromtimestamp(at * 60, tz=timezone.utc)
    return evaluate(slo, ledger_series(conn, slo, start, end), now=at)
