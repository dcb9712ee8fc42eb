"""Pure SLO evaluation over a per-minute series of good and total events.

Input: one entry per minute, `(minute, good, total)`, where `minute` is an epoch minute (int) or
a datetime, and the counts are the events in [minute, minute + 1). Missing minutes have no
traffic. What "good" and "total" mean depends on the SLI (see `slo.model`); for a cost SLO,
total is the allowed spend and good = total - spend (`CostSLI.allowed_spend`).

Windows end at `now` (exclusive) and cover whole minutes, as Prometheus' `rate(x[1h])` at time
`now` covers the counter samples from `now - 1h` to `now`. A window without traffic has no error
ratio and no burn rate (None, never NaN), and the period SLI is computed from the summed counts,
never by averaging per-window ratios.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from slo.burn import BurnAlertWindow, Severity
from slo.model import SLO, CostSLI

MinuteLike = int | datetime


def to_minute(m: MinuteLike) -> int:
    """Epoch minute of an int (returned as is) or a datetime (naive means UTC)."""
    if isinstance(m, datetime):
        ts = m.replace(tzinfo=timezone.utc) if m.tzinfo is None else m
        return math.floor(ts.timestamp() / 60)
    return int(m)


@dataclass(frozen=True, eq=False)
class MinuteSeries:
    """Dense per-minute good/total counts starting at epoch minute `start`."""

    start: int
    good: np.ndarray
    total: np.ndarray

    @property
    def end(self) -> int:
        """First minute after the series."""
        return self.start + len(self.total)

    @classmethod
    def from_points(cls, points: Iterable[tuple[MinuteLike, float, float]]) -> "MinuteSeries":
        """From (minute, good, total) tuples in any order; repeated minutes are summed."""
        rows = [(to_minute(m), float(g), float(t)) for m, g, t in points]
        if not rows:
            return cls(0, np.zeros(0), np.zeros(0))
        minutes = np.array([r[0] for r in rows], dtype=np.int64)
        return cls.from_arrays(minutes, [r[1] for r in rows], [r[2] for r in rows])

    @classmethod
    def from_arrays(
        cls,
        minutes: Sequence[int] | np.ndarray,
        good: Sequence[float] | np.ndarray,
        total: Sequence[float] | np.ndarray,
    ) -> "MinuteSeries":
        """From parallel arrays of epoch minutes, good and total counts."""
        m = np.asarray(minutes, dtype=np.int64)
        g = np.asarray(good, dtype=np.float64)
        t = np.asarray(total, dtype=np.float64)
        if not (m.shape == g.shape == t.shape):
            raise ValueError("minutes, good and total must have the same length")
        if not (np.isfinite(g).all() and np.isfinite(t).all()):
            raise ValueError("counts must be finite numbers")
        if len(m) == 0:
            return cls(0, np.zeros(0), np.zeros(0))
        start = int(m.min())
        n = int(m.max()) - start + 1
        dg, dt = np.zeros(n), np.zeros(n)
        np.add.at(dg, m - start, g)
        np.add.at(dt, m - start, t)
        return cls(start, dg, dt)

    @classmethod
    def from_bad_total(
        cls, start: int, bad: Sequence[float] | np.ndarray, total: Sequence[float] | np.ndarray
    ) -> "MinuteSeries":
        """From consecutive minutes of bad and total counts beginning at `start`."""
        t = np.asarray(total, dtype=np.float64)
        return cls(int(start), t - np.asarray(bad, dtype=np.float64), t)

    def sums(self, begin: int, end: int) -> tuple[float, float]:
        """(good, total) summed over minutes [begin, end)."""
        a = max(begin, self.start) - self.start
        b = min(end, self.end) - self.start
        if b <= a:
            return 0.0, 0.0
        return float(self.good[a:b].sum()), float(self.total[a:b].sum())


@dataclass(frozen=True)
class WindowStats:
    window: str
    minutes: int
    good: float
    total: float
    error_ratio: float | None
    burn_rate: float | None


@dataclass(frozen=True)
class RowState:
    long_window: str
    short_window: str
    factor: float
    threshold: float
    firing: bool


@dataclass(frozen=True)
class AlertState:
    severity: Severity
    enabled: bool
    firing: bool
    rows: tuple[RowState, ...]


@dataclass(frozen=True)
class Evaluation:
    slo_id: str
    now: int  # epoch minute; windows end here (exclusive)
    period_start: int
    period_minutes: int
    good: float
    total: float
    sli: float | None  # good / total over the period (None for cost SLOs or without traffic)
    error_ratio: float | None
    objective: float
    error_budget: float
    period_burn_rate: float | None
    budget_remaining: float | None  # 1 - period burn rate; below 0 when overspent
    current_burn_rate: float | None  # over 5m, like slo:current_burn_rate:ratio
    time_to_exhaustion_s: float | None  # None when not burning; 0 when exhausted
    windows: dict[str, WindowStats]
    page: AlertState
    ticket: AlertState
    no_data: bool  # no events for the no-data time (the ledger cannot tell a missing series apart)
    minutes_since_traffic: int | None
    cost_per_1k_usd: float | None = None
    no_traffic: bool = False  # SLONoTraffic fires: opted in, and no events for its time

    @property
    def status(self) -> str:
        if self.page.firing:
            return "page"
        if self.ticket.firing:
            return "ticket"
        return "no_data" if self.no_data else "ok"

    def burn_rate(self, window: str) -> float | None:
        return self.windows[window].burn_rate

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status
        return d


def _ratio(bad: float, total: float) -> float | None:
    return bad / total if total > 0 else None


def _burn(ratio: float | None, budget: float) -> float | None:
    if ratio is None:
        return None
    return ratio / budget if budget > 0 else (0.0 if ratio == 0 else math.inf)


def period_bounds(slo: SLO, now: int) -> tuple[int, int]:
    """(start minute, length in minutes) of the SLO period that ends at `now`."""
    if not slo.window.calendar:
        return now - slo.window.minutes, slo.window.minutes
    last = datetime.fromtimestamp((now - 1) * 60, tz=timezone.utc)
    first = last.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)
    return to_minute(first), (to_minute(nxt) - to_minute(first))


def _alert_state(
    severity: Severity,
    enabled: bool,
    rows: Iterable[BurnAlertWindow],
    ratios: dict[str, float | None],
    budget: float,
) -> AlertState:
    states = []
    for r in rows:
        if r.severity != severity:
            continue
        thr = r.threshold(budget)
        lr, sr = ratios[r.long_window], ratios[r.short_window]
        firing = enabled and lr is not None and sr is not None and lr > thr and sr > thr
        states.append(RowState(r.long_window, r.short_window, r.factor, thr, firing))
    return AlertState(severity, enabled, any(s.firing for s in states), tuple(states))


def evaluate(
    slo: SLO,
    series: MinuteSeries | Iterable[tuple[MinuteLike, float, float]],
    now: MinuteLike | None = None,
) -> Evaluation:
    """Evaluate `slo` at `now` (default: the minute after the series' last minute)."""
    s = series if isinstance(series, MinuteSeries) else MinuteSeries.from_points(series)
    at = to_minute(now) if now is not None else s.end
    sums = {name: s.sums(at - minutes, at) for name, minutes in slo.sli_windows().items()}
    p_start, _ = period_bounds(slo, at)
    _, no_data_t = s.sums(at - slo.alerting.no_data_after_minutes, at)
    idle_after = slo.alerting.no_traffic_after_minutes
    idle = idle_after is not None and s.sums(at - idle_after, at)[1] <= 0
    last = _last_traffic_minute(s, at)
    return evaluate_windows(
        slo,
        at,
        sums,
        s.sums(p_start, at),
        no_data=no_data_t <= 0,
        no_traffic=idle,
        minutes_since_traffic=None if last is None else at - 1 - last,
    )


Sums = tuple[float, float]  # (good, total)


def evaluate_windows(
    slo: SLO,
    at: int,
    windows: dict[str, Sums],
    period: Sums,
    *,
    no_data: bool,
    no_traffic: bool,
    minutes_since_traffic: int | None = None,
    ratios: dict[str, float | None] | None = None,
) -> Evaluation:
    """The evaluation from (good, total) per SLI window and over the period, however they were
    counted (the ledger, or Prometheus for SLIs on any metric). `ratios` (window name, and
    "period") overrides the error ratios where only those are known (a raw SLI)."""
    budget = slo.error_budget
    given = ratios or {}

    def ratio(key: str, g: float, t: float) -> float | None:
        return given[key] if key in given else _ratio(t - g, t)

    stats: dict[str, WindowStats] = {}
    for name, minutes in slo.sli_windows().items():
        g, t = windows[name]
        r = ratio(name, g, t)
        stats[name] = WindowStats(name, minutes, g, t, r, _burn(r, budget))
    by_window = {k: w.error_ratio for k, w in stats.items()}

    p_start, p_minutes = period_bounds(slo, at)
    g, t = period
    err = ratio("period", g, t)
    period_burn = _burn(err, budget)
    remaining = None if period_burn is None else 1.0 - period_burn
    current = stats["5m"].burn_rate
    if remaining is None:
        tte = None
    elif remaining <= 0:
        tte = 0.0
    elif not current:
        tte = None
    else:
        tte = remaining * p_minutes * 60.0 / current

    table = slo.alert_table()
    is_cost = isinstance(slo.sli, CostSLI)
    return Evaluation(
        slo_id=slo.id,
        now=at,
        period_start=p_start,
        period_minutes=p_minutes,
        good=g,
        total=t,
        sli=None if (err is None or is_cost) else 1.0 - err,
        error_ratio=err,
        objective=slo.objective,
        error_budget=budget,
        period_burn_rate=period_burn,
        budget_remaining=remaining,
        current_burn_rate=current,
        time_to_exhaustion_s=tte,
        windows=stats,
        page=_alert_state("page", slo.alerting.page, table, by_window, budget),
        ticket=_alert_state("ticket", slo.alerting.ticket, table, by_window, budget),
        no_data=no_data,
        minutes_since_traffic=minutes_since_traffic,
        cost_per_1k_usd=(
            err * slo.sli.budget_usd_per_1k_requests  # type: ignore[union-attr]
            if is_cost and err is not None
            else None
        ),
        no_traffic=no_traffic,
    )


def _last_traffic_minute(s: MinuteSeries, now: int) -> int | None:
    b = min(now, s.end) - s.start
    if b <= 0:
        return None
    idx = np.flatnonzero(s.total[:b] > 0)
    return None if len(idx) == 0 else s.start + int(idx[-1])


def evaluate_range(
    slo: SLO, series: MinuteSeries, start: MinuteLike, end: MinuteLike, step: int = 1
) -> list[Evaluation]:
    """Evaluations at every `step` minutes from `start` to `end` (inclusive)."""
    a, b = to_minute(start), to_minute(end)
    return [evaluate(slo, series, m) for m in range(a, b + 1, step)]
