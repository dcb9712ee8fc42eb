"""Synthetic traffic that both Prometheus (as promtool input series) and the evaluator read.

A `Traffic` is a set of counter series with per-minute increments. `input_series` writes them
as cumulative promtool series (sample k at minute k holds the increments of minutes < k), and
`sli_series` sums the increments an SLO selects, the way its PromQL does, into the evaluator's
per-minute (good, total) input.

Counters start at a large offset (above the series' growth): Prometheus extrapolates `rate()` at a
series' start towards zero differently for a small and a large counter, which would skew ratios in
the first minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from slo.evaluator import MinuteSeries
from slo.metrics_catalog import COST_USD_TOTAL, REQUESTS_TOTAL, SAFETY_INCIDENTS_TOTAL
from alerts.query_traffic import Counter, CounterForm, counter_form, label_sets
from slo.model import PROMETHEUS_SLIS, SLO, AvailabilitySLI, CostSLI, LatencySLI, SafetySLI
from slo.thresholds import le_spellings

LabelPredicate = Callable[[dict[str, str]], bool]

COUNTER_OFFSET = 1_000_000
LOOKBACK_MINUTES = 5  # Prometheus' lookback: a series without newer samples stays visible this long


@dataclass
class CounterSeries:
    name: str
    labels: dict[str, str]
    increments: np.ndarray  # per minute

    def selector(self) -> str:
        body = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{body}}}" if body else self.name


@dataclass
class Traffic:
    """`scrape_until`: the last minute with samples (the series disappear after it); None =
    sampled to the end."""

    minutes: int
    series: list[CounterSeries] = field(default_factory=list)
    scrape_until: int | None = None

    def add(self, name: str, labels: dict[str, str], increments: np.ndarray) -> None:
        inc = np.asarray(increments, dtype=np.float64)
        if len(inc) != self.minutes:
            raise ValueError(f"{name}: {len(inc)} increments for {self.minutes} minutes")
        self.series.append(CounterSeries(name, dict(labels), inc))

    def input_series(self) -> list[dict[str, str]]:
        """promtool `input_series`, one sample per minute from 0 to `minutes` inclusive."""
        out = []
        last = self.minutes if self.scrape_until is None else self.scrape_until
        for s in self.series:
            cum = counter_offset(s.increments) + np.concatenate([[0.0], np.cumsum(s.increments)])
            out.append({"series": s.selector(), "values": encode_values(cum[: last + 1])})
        return out

    def visible(self, name: str, pred: LabelPredicate, t: int, lookback: int = LOOKBACK_MINUTES) -> bool:
        """Whether a series `name` matching `pred` has a sample Prometheus sees at minute `t`
        (within `lookback` minutes of its last scrape)."""
        last = self.minutes if self.scrape_until is None else self.scrape_until
        return t <= last + lookback and any(s.name == name and pred(s.labels) for s in self.series)

    def scraped_at(self, t: int) -> bool:
        return self.scrape_until is None or t <= self.scrape_until

    def sum_where(self, name: str, pred: LabelPredicate) -> np.ndarray:
        acc = np.zeros(self.minutes)
        for s in self.series:
            if s.name == name and pred(s.labels):
                acc = acc + s.increments
        return acc


def counter_offset(increments: np.ndarray) -> float:
    """COUNTER_OFFSET, or a power of ten above the series' whole growth when that is larger:
    Prometheus stops extrapolating a rate where the counter would reach zero, and an offset
    small beside the growth (ten million requests a minute) would do so on one side of a ratio."""
    offset = COUNTER_OFFSET
    while offset < float(np.sum(increments)):
        offset *= 10
    return float(offset)


def encode_values(values: np.ndarray) -> str:
    """promtool's expanding notation: runs of equal integer steps become `a+bxn`.

    Only integer steps are compressed, because promtool expands by repeated addition and that
    is exact only for integers; other values are written one by one with `repr`.
    """
    vals = [float(v) for v in values]
    out, i, n = [], 0, len(vals)
    while i < n:
        j = i
        step: float | None = None  # the integer step of a run starting at i
        if vals[i].is_integer():
            step = vals[i + 1] - vals[i] if i + 1 < n else None
            while (
                step is not None
                and step.is_integer()
                and j + 1 < n
                and vals[j + 1] - vals[j] == step
                and vals[j + 1].is_integer()
            ):
                j += 1
        if step is not None and j - i >= 2:
            out.append(f"{_fmt(vals[i])}{'+' if step >= 0 else '-'}{_fmt(abs(step))}x{j - i}")
        else:
            j = i
            out.append(_fmt(vals[i]))
        i = j + 1
    return " ".join(out)


def _fmt(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def spread(requests: np.ndarray, ratio: np.ndarray | float) -> np.ndarray:
    """Integer per-minute counts whose running total is floor(running requests x ratio)."""
    req = np.asarray(requests, dtype=np.int64)
    r = np.broadcast_to(np.asarray(ratio, dtype=np.float64), req.shape)
    cum = 0
    out = np.zeros(len(req), dtype=np.int64)
    acc = Fraction(0)
    for k in range(len(req)):
        acc += Fraction(int(req[k])) * Fraction(r[k]).limit_denominator(10**9)
        target = int(acc)  # floor, exactly
        out[k] = target - cum
        cum = target
    return out.astype(np.float64)


def scope_labels(slo: SLO) -> dict[str, str]:
    """Labels of synthetic series that the SLO's selector matches (an excluded value is swapped
    for another)."""
    base = {"tenant": "demo", "model_alias": "demo-chat", "model_version": "v1", "operation": "chat"}
    for label, values in slo.selector.items():
        base[label] = values[0]
    for label, values in slo.selector.exclude:
        while base[label] in values:
            base[label] += "-2"
    return base


def _availability_preds(slo: SLO, sli: AvailabilitySLI) -> tuple[LabelPredicate, LabelPredicate]:
    """(bad, valid) over inferwatch_requests_total labels, as `alerts.promql.availability_series`."""
    sel, types = slo.selector.matches, set(sli.bad_error_types)

    def counted(lab: dict[str, str]) -> bool:
        return lab.get("status_class") == "4xx" and lab.get("error_type", "") in types

    return (
        lambda lab: sel(lab) and (lab.get("status_class") == "5xx" or counted(lab)),
        lambda lab: sel(lab) and (lab.get("status_class") != "4xx" or counted(lab)),
    )


def _form(slo: SLO) -> CounterForm:
    form = counter_form(slo.sli)
    if form is None:
        raise TypeError(f"{slo.id}: no synthetic traffic for its queries (not sums of counter rates)")
    return form


def _group_by(slo: SLO) -> tuple[str, ...]:
    return _form(slo).group_by if isinstance(slo.sli, PROMETHEUS_SLIS) else slo.selector.group_by


def groups(slo: SLO, traffic: Traffic) -> list[dict[str, str]]:
    """The groups of a grouped SLO in the traffic: each combination of its grouping labels
    among the series its total counts ([{}] when ungrouped)."""
    by = _group_by(slo)
    if not by:
        return [{}]
    name, pred = _present_series(slo)
    seen = {tuple(s.labels.get(k, "") for k in by) for s in traffic.series if s.name == name and pred(s.labels)}
    return [dict(zip(by, g, strict=True)) for g in sorted(seen)] or [{}]


def add_sli_traffic(
    traffic: Traffic, slo: SLO, requests: np.ndarray, error_ratio: np.ndarray | float, *, le_spelling: str | None = None
) -> None:
    """Add the series an SLO reads, with `requests` per minute at `error_ratio` (for cost: spend
    as a multiple of the budget). 4xx requests and other-direction incidents are added as noise
    that a correct SLI ignores."""
    labels = scope_labels(slo)
    req = np.asarray(requests, dtype=np.float64)
    sli = slo.sli
    if isinstance(sli, AvailabilitySLI):
        bad = spread(req, error_ratio)
        # with counted 4xx error types, half the errors are of the first (a 429), half 5xx
        counted = np.floor(bad / 2) if sli.bad_error_types else np.zeros(len(req))
        traffic.add(REQUESTS_TOTAL.name, {**labels, "status_class": "2xx"}, req - bad)
        traffic.add(
            REQUESTS_TOTAL.name, {**labels, "status_class": "5xx", "error_type": "upstream_error"}, bad - counted
        )
        if sli.bad_error_types:
            traffic.add(
                REQUESTS_TOTAL.name, {**labels, "status_class": "4xx", "error_type": sli.bad_error_types[0]}, counted
            )
        noise = next(t for t in ("rate_limited", "invalid_request") if t not in sli.bad_error_types)
        traffic.add(REQUESTS_TOTAL.name, {**labels, "status_class": "4xx", "error_type": noise}, np.ceil(req / 10))
    elif isinstance(sli, LatencySLI):
        slow = spread(req, error_ratio)
        hist = sli.metric.prom_metric
        le = le_spelling or le_spellings(sli.threshold_s)[-1]  # the Python client's spelling
        traffic.add(f"{hist}_bucket", {**labels, "le": le}, req - slow)
        traffic.add(f"{hist}_bucket", {**labels, "le": "+Inf"}, req)
        traffic.add(f"{hist}_count", labels, req)
        traffic.add(REQUESTS_TOTAL.name, {**labels, "status_class": "2xx"}, req)
    elif isinstance(sli, SafetySLI):
        bad = spread(req, error_ratio)
        other = "input" if sli.direction == "output" else "output"
        traffic.add(REQUESTS_TOTAL.name, {**labels, "status_class": "2xx"}, req)
        traffic.add(
            SAFETY_INCIDENTS_TOTAL.name,
            {k: v for k, v in labels.items() if k != "operation"} | {"direction": sli.direction},
            bad,
        )
        traffic.add(
            SAFETY_INCIDENTS_TOTAL.name,
            {k: v for k, v in labels.items() if k != "operation"} | {"direction": other},
            np.ceil(req / 4),
        )
    elif isinstance(sli, CostSLI):
        # spend = requests x ratio x budget per request; dyadic budgets keep it exact
        spend = req * np.asarray(error_ratio, dtype=np.float64) * sli.budget_usd_per_1k_requests / 1000.0
        traffic.add(REQUESTS_TOTAL.name, {**labels, "status_class": "2xx"}, req)
        traffic.add(COST_USD_TOTAL.name, {k: v for k, v in labels.items() if k != "operation"}, spend)
    elif isinstance(sli, PROMETHEUS_SLIS):
        form, bad = _form(slo), spread(req, error_ratio)
        sets = label_sets(form)
        if sets is None:
            raise TypeError(f"{slo.id}: no label values satisfy its queries' matchers")
        traffic.add(form.error.name, sets.error, bad)
        if sets.good is not None:
            traffic.add(form.total.name, sets.good, req - bad)
        if sets.total is not None:
            traffic.add(form.total.name, sets.total, req)
    else:
        raise TypeError(f"unknown SLI {sli!r}")


def can_make_traffic(slo: SLO) -> bool:
    """Whether `add_sli_traffic` can make up traffic for the SLO (always, but for queries of
    other shapes than sums of counter rates)."""
    if not isinstance(slo.sli, PROMETHEUS_SLIS):
        return True
    form = counter_form(slo.sli)
    return form is not None and label_sets(form) is not None


def _present_series(slo: SLO) -> tuple[str, Any]:
    """(name, label predicate) of the series whose absence is "no data" (`alerts.promql.traffic_series`)."""
    sel = slo.selector.matches
    sli = slo.sli
    if isinstance(sli, LatencySLI):
        spellings = set(le_spellings(sli.threshold_s))
        return f"{sli.metric.prom_metric}_bucket", lambda lab: sel(lab) and lab.get("le") in spellings
    if isinstance(sli, AvailabilitySLI):
        return REQUESTS_TOTAL.name, lambda lab: sel(lab) and lab.get("status_class") != "4xx"
    if isinstance(sli, PROMETHEUS_SLIS):
        total = _form(slo).total
        return total.name, lambda lab: total.matches(total.name, lab)
    return REQUESTS_TOTAL.name, sel


def presence_lookback(slo: SLO) -> int:
    """How long after its last scrape the SLO's no-data expression still sees its series: an
    instant selector for Prometheus' lookback; for a query SLI, `rate(x[5m])`, as long as the 5m
    range holds two samples (one minute less)."""
    return LOOKBACK_MINUTES - 1 if isinstance(slo.sli, PROMETHEUS_SLIS) else LOOKBACK_MINUTES


def absent_minutes(slo: SLO, traffic: Traffic, t: int) -> int:
    """For how many minutes up to `t` the SLO's series has been invisible (0 when visible): how
    long `absent()` has been 1, as its alert's `for:` counts (rules are evaluated from minute 0)."""
    name, pred = _present_series(slo)
    run = 0
    for m in range(t, -1, -1):
        if traffic.visible(name, pred, m, presence_lookback(slo)):
            break
        run += 1
    return max(run - 1, 0) if run else 0


def counter_scraped(slo: SLO, traffic: Traffic, t: int, group: dict[str, str] | None = None) -> bool:
    """Whether the SLO's counter (of `group`) exists and is still sampled at `t` (so
    `increase()` has a value)."""
    if isinstance(slo.sli, LatencySLI):
        name, pred = f"{slo.sli.metric.prom_metric}_count", slo.selector.matches
    else:
        name, pred = _present_series(slo)
    g = group or {}
    return traffic.scraped_at(t) and traffic.visible(
        name, lambda lab: pred(lab) and all(lab.get(k, "") == v for k, v in g.items()), t
    )


def sli_series(slo: SLO, traffic: Traffic, group: dict[str, str] | None = None) -> MinuteSeries:
    """The evaluator's per-minute (good, total) for `slo` (its `group` only, when given), read
    from the traffic like PromQL."""
    g = group or {}
    if g and not isinstance(slo.sli, PROMETHEUS_SLIS):
        slo = slo.for_group(g)
    sel = slo.selector.matches
    sli = slo.sli
    if isinstance(sli, AvailabilitySLI):
        is_bad, is_valid = _availability_preds(slo, sli)
        bad = traffic.sum_where(REQUESTS_TOTAL.name, is_bad)
        total = traffic.sum_where(REQUESTS_TOTAL.name, is_valid)
    elif isinstance(sli, LatencySLI):
        hist = sli.metric.prom_metric
        spellings = set(le_spellings(sli.threshold_s))
        good = traffic.sum_where(f"{hist}_bucket", lambda lab: sel(lab) and lab.get("le") in spellings)
        total = traffic.sum_where(f"{hist}_count", sel)
        bad = total - good
    elif isinstance(sli, SafetySLI):
        bad = traffic.sum_where(
            SAFETY_INCIDENTS_TOTAL.name, lambda lab: sel(lab) and lab.get("direction") == sli.direction
        )
        total = traffic.sum_where(REQUESTS_TOTAL.name, sel)
    elif isinstance(sli, CostSLI):
        bad = traffic.sum_where(COST_USD_TOTAL.name, sel)
        total = sli.allowed_spend(traffic.sum_where(REQUESTS_TOTAL.name, sel))
    elif isinstance(sli, PROMETHEUS_SLIS):
        form = _form(slo)

        def counted(c: Counter) -> LabelPredicate:
            return lambda lab: c.matches(c.name, lab) and all(lab.get(k, "") == v for k, v in g.items())

        bad = traffic.sum_where(form.error.name, counted(form.error))
        total = traffic.sum_where(form.total.name, counted(form.total))
    else:
        raise TypeError(f"unknown SLI {sli!r}")
    return MinuteSeries.from_bad_total(0, bad, total)
