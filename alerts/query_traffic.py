"""Synthetic traffic for SLIs on any metric (events, raw), where their queries allow it.

Traffic cannot be made up for an arbitrary PromQL query, but most query SLIs are counters
summed over the window: Pyrra-style counter selectors, Sloth's `sum(rate(sel[{{.window}}]))`
(optionally `sum by (...)`), or a raw ratio of two such sums. `counter_form` recognizes those
shapes; `label_sets` picks label values that an error series and a good series need so that
the queries count them as such. The generated promtool scenarios (`alerts.promtool_tests`) then
run for these SLOs as for our own kinds. Any other query gets no scenarios (a warning).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from slo.model import SLI, EventsSLI, RawSLI
from slo.openslo import Matchers, parse_selector
from slo.specfields import FieldError

_SEL = r"([a-zA-Z_:][a-zA-Z0-9_:]*\s*(?:\{[^{}]*\})?)"
_SUM_RATE = re.compile(
    r"^\s*\(?\s*sum\s*(?:by\s*\(([^)]*)\)\s*)?\(\s*rate\s*\(\s*"
    + _SEL
    + r"\s*\[\s*\{\{\s*\.window\s*\}\}\s*\]\s*\)\s*\)\s*\)?\s*$"
)


@dataclass(frozen=True)
class Counter:
    """A counter a query sums: its name and label matchers."""

    name: str
    matchers: Matchers

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        return name == self.name and all(satisfies(labels.get(k, ""), op, v) for k, (op, v) in self.matchers.items())


@dataclass(frozen=True)
class CounterForm:
    """error / total as sums of two counters' rates, grouped by `group_by`."""

    error: Counter
    total: Counter
    group_by: tuple[str, ...] = ()


def satisfies(value: str, op: str, pattern: str) -> bool:
    """Whether a label value passes a PromQL matcher (regexes are anchored, as in Prometheus)."""
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    try:
        hit = re.fullmatch(pattern, value) is not None
    except re.error:
        return False
    return hit if op == "=~" else not hit


def _counter(selector: str) -> Counter | None:
    try:
        name, matchers = parse_selector(selector)
    except FieldError:
        return None
    return Counter(name, matchers)


def _sum_rate(query: str) -> tuple[Counter, tuple[str, ...]] | None:
    m = _SUM_RATE.match(query)
    if not m:
        return None
    counter = _counter(m.group(2))
    by = tuple(x.strip() for x in (m.group(1) or "").split(",") if x.strip())
    return (counter, by) if counter is not None else None


def counter_form(sli: SLI) -> CounterForm | None:
    """The counters an events or raw SLI sums, when its queries have one of the shapes above."""
    if isinstance(sli, EventsSLI) and not sli.templated:
        error, total = _counter(sli.error_query), _counter(sli.total_query)
        return CounterForm(error, total, sli.group_by) if error and total else None
    if isinstance(sli, EventsSLI):
        e, t = _sum_rate(sli.error_query), _sum_rate(sli.total_query)
    elif isinstance(sli, RawSLI):
        parts = sli.error_ratio_query.split("/")  # errors / total, each a sum of rates
        if len(parts) != 2:
            return None
        e, t = _sum_rate(parts[0]), _sum_rate(parts[1])
    else:
        return None
    if e is None or t is None or e[1] != t[1]:
        return None
    return CounterForm(e[0], t[0], e[1])


def _candidates(matchers: Sequence[tuple[str, str]]) -> list[str]:
    """Values worth trying for a label: the matchers' literals and regex alternatives made literal."""
    out = []
    for op, v in matchers:
        if op == "=":
            out.append(v)
        elif op == "=~":
            for alt in v.strip("()^$").split("|"):
                lit = re.sub(r"\[([^\]])[^\]]*\]", r"\1", alt.strip("()^$"))
                lit = re.sub(r"\\d", "0", lit)
                lit = re.sub(r"(?<!\\)\.[*+]?", "0", lit)
                out.append(re.sub(r"\\(.)", r"\1", lit.replace("?", "").replace("*", "").replace("+", "")))
    return [*out, "synthetic", "200", "ok", "0"]


def _value(need: Sequence[tuple[str, str]], avoid: Sequence[tuple[str, str]] = ()) -> str | None:
    """A value passing every matcher of `need` and failing at least one of `avoid` (when given)."""
    for cand in _candidates([*need, *avoid]):
        if all(satisfies(cand, op, v) for op, v in need) and (
            not avoid or not all(satisfies(cand, op, v) for op, v in avoid)
        ):
            return cand
    return None


def _labels(counters: list[Counter], group: dict[str, str]) -> dict[str, str] | None:
    """Labels passing every matcher of `counters` (a label no matcher needs set is left out)."""
    out = dict(group)
    names = {k for c in counters for k in c.matchers} | set(group)
    for k in sorted(names):
        need = [c.matchers[k] for c in counters if k in c.matchers]
        if k in out:
            if not all(satisfies(out[k], op, v) for op, v in need):
                return None
            continue
        if all(satisfies("", op, v) for op, v in need):
            continue
        value = _value(need)
        if value is None:
            return None
        out[k] = value
    return out


@dataclass(frozen=True)
class SeriesLabels:
    """Labels of the synthetic series of a counter form. One metric: `error` series count errors
    (and events), `good` ones only events. Two metrics: `error` series on the error counter,
    `total` ones on the total counter (every event)."""

    error: dict[str, str]
    good: dict[str, str] | None = None
    total: dict[str, str] | None = None


def label_sets(form: CounterForm) -> SeriesLabels | None:
    """Label values for the form's synthetic series, one group; None when no values satisfy
    the matchers (or every total event would be an error)."""
    group = {}
    for k in form.group_by:
        need = [c.matchers[k] for c in (form.error, form.total) if k in c.matchers]
        value = _value(need) if need else "g1"
        if value is None:
            return None
        group[k] = value
    if form.error.name != form.total.name:
        err, tot = _labels([form.error], group), _labels([form.total], group)
        return SeriesLabels(err, total=tot) if err is not None and tot is not None else None
    bad = _labels([form.error, form.total], group)
    if bad is None:
        return None
    for k, matcher in form.error.matchers.items():  # a label the good series differs on
        need = [form.total.matchers[k]] if k in form.total.matchers else []
        value = _value(need, [matcher])
        good = {**bad, k: value} if value else None
        if (
            good is not None
            and form.total.matches(form.total.name, good)
            and not form.error.matches(form.error.name, good)
        ):
            return SeriesLabels(bad, good=good)
    return None
