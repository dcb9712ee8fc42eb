"""PromQL for SLIs: the error ratio of an SLO over a window, and its traffic selectors.

Every ratio is guarded against zero traffic: the denominator is filtered with `> 0`, so a
window without traffic yields no sample (never NaN), and a missing error series counts as 0.
"""

from __future__ import annotations

import re

from slo.burn import duration_name
from slo.metrics_catalog import COST_USD_TOTAL, REQUESTS_TOTAL, SAFETY_INCIDENTS_TOTAL
from slo.model import SLO, AvailabilitySLI, CostSLI, EventsSLI, LatencySLI, RawSLI, SafetySLI, Selector
from slo.thresholds import le_matcher


prom_duration = duration_name  # minutes as Prometheus prints a duration: 1440 -> "1d"


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_escape(value: str) -> str:
    """Escape RE2 metacharacters only (Python's re.escape also escapes '-', which is noise)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", value)


def _values_matcher(label: str, values: tuple[str, ...], negate: bool = False) -> str:
    if len(values) == 1:
        return f"{label}{'!=' if negate else '='}{quote(values[0])}"
    return f"{label}{'!~' if negate else '=~'}{quote('|'.join(regex_escape(v) for v in values))}"


def selector_matchers(sel: Selector) -> list[str]:
    """`label="v"` or `label=~"a|b"` for each constrained selector label, `!=` / `!~` for each
    excluded one."""
    return [_values_matcher(k, v) for k, v in sel.items()] + [_values_matcher(k, v, True) for k, v in sel.exclude]


def series(name: str, *matchers: str) -> str:
    body = ", ".join(m for m in matchers if m)
    return f"{name}{{{body}}}" if body else name


def _by(slo: SLO) -> str:
    return f" by ({', '.join(slo.selector.group_by)})" if slo.selector.group_by else ""


def _sum(slo: SLO, fn: str, selectors: list[str], window: str) -> str:
    """`sum(fn(s[w]))` over one selector, `sum(fn(a[w]) or fn(b[w]))` over several (disjoint
    series of one metric), grouped by the SLO's `group_by`."""
    inner = " or ".join(f"{fn}({s}[{window}])" for s in selectors)
    return f"sum{_by(slo)}({inner})"


def _sum_rate(slo: SLO, sel: str | list[str], window: str) -> str:
    return _sum(slo, "rate", [sel] if isinstance(sel, str) else sel, window)


def _ratio(slo: SLO, bad: str, total: str) -> str:
    """bad / (total > 0); a missing bad series counts as none (per group when grouped)."""
    zero = f"0 * {total}" if slo.selector.group_by else "vector(0)"
    return f"(\n  {bad}\n  or {zero}\n)\n/\n({total} > 0)"


def availability_series(slo: SLO, sli: AvailabilitySLI) -> tuple[list[str], list[str]]:
    """(bad, valid) selectors of inferwatch_requests_total: 5xx over every request but 4xx, with
    the 4xx of `bad_error_types` in both."""
    sel = selector_matchers(slo.selector)
    bad = [series(REQUESTS_TOTAL.name, 'status_class="5xx"', *sel)]
    valid = [series(REQUESTS_TOTAL.name, 'status_class!="4xx"', *sel)]
    if sli.bad_error_types:
        counted = series(
            REQUESTS_TOTAL.name, 'status_class="4xx"', _values_matcher("error_type", sli.bad_error_types), *sel
        )
        bad.append(counted)
        valid.append(counted)
    return bad, valid


def error_ratio_expr(slo: SLO, window: str) -> str:
    """The SLO's error ratio over `window` (a Prometheus duration such as "1h")."""
    sel = selector_matchers(slo.selector)
    sli = slo.sli
    if isinstance(sli, (EventsSLI, RawSLI)):
        return sli.error_ratio(window)
    if isinstance(sli, AvailabilitySLI):
        bad, valid = availability_series(slo, sli)
        return _ratio(slo, _sum_rate(slo, bad, window), _sum_rate(slo, valid, window))
    if isinstance(sli, LatencySLI):
        hist = sli.metric.prom_metric
        count = series(f"{hist}_count", *sel)
        bucket = series(f"{hist}_bucket", le_matcher(sli.threshold_s), *sel)
        return (
            f"(\n  {_sum_rate(slo, count, window)}\n  -\n  {_sum_rate(slo, bucket, window)}\n)\n/\n"
            f"({_sum_rate(slo, count, window)} > 0)"
        )
    if isinstance(sli, SafetySLI):
        bad_s = series(SAFETY_INCIDENTS_TOTAL.name, f"direction={quote(sli.direction)}", *sel)
        total = series(REQUESTS_TOTAL.name, *sel)
        return _ratio(slo, _sum_rate(slo, bad_s, window), _sum_rate(slo, total, window))
    if isinstance(sli, CostSLI):
        spend = series(COST_USD_TOTAL.name, *sel)
        total = series(REQUESTS_TOTAL.name, *sel)
        # allowed spend = requests x budget per 1k / 1000
        zero = f"0 * {_sum_rate(slo, total, window)}" if slo.selector.group_by else "vector(0)"
        return (
            f"(\n  {_sum_rate(slo, spend, window)}\n  or {zero}\n)\n/\n"
            f"(({_sum_rate(slo, total, window)} > 0) * {sli.budget_usd_per_1k_requests!r} / 1000)"
        )
    raise TypeError(f"unknown SLI {sli!r}")


def traffic_series(slo: SLO) -> tuple[str, list[str]]:
    """(series that must exist, counters that must grow) for the SLO to have data."""
    sel = selector_matchers(slo.selector)
    sli = slo.sli
    if isinstance(sli, LatencySLI):
        hist = sli.metric.prom_metric
        # The threshold bucket itself must exist: this catches an `le` the exporter lacks.
        return series(f"{hist}_bucket", le_matcher(sli.threshold_s), *sel), [series(f"{hist}_count", *sel)]
    if isinstance(sli, AvailabilitySLI):
        _, valid = availability_series(slo, sli)
        return valid[0], valid
    total = series(REQUESTS_TOTAL.name, *sel)
    return total, [total]


def absent_expr(slo: SLO) -> str:
    """1 while the series the SLI reads is missing (`sum` drops the matchers' labels). For a
    query SLI: while its total (raw: its ratio) over 5m has no sample at all."""
    sli = slo.sli
    if isinstance(sli, EventsSLI):
        return f"sum(absent({sli.rate(sli.total_query, '5m')}))"
    if isinstance(sli, RawSLI):
        return f"sum(absent({sli.error_ratio('5m')}))"
    present, _ = traffic_series(slo)
    return f"sum(absent({present}))"


def no_traffic_expr(slo: SLO, minutes: int) -> str:
    """Fires when the SLI's counter exists but did not grow for `minutes` (the evaluator's rule)."""
    w = prom_duration(minutes)
    if isinstance(slo.sli, EventsSLI):
        return f"{slo.sli.rate(slo.sli.total_query, w)} == 0"
    if isinstance(slo.sli, RawSLI):
        raise ValueError(f"{slo.id}: a raw SLI has no event count, so no no-traffic alert")
    _, counters = traffic_series(slo)
    return f"{_sum(slo, 'increase', counters, w)} == 0"
