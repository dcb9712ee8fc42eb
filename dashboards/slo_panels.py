"""Panels generated from SLO models: a new SLO in the specs gets its panels here.

Queries read Sloth's recording rules (`alerts` renders them) and fall back, with `or on()`,
to the `slo_*` gauges of the built-in evaluator, so the panels show data whether or not the
rules are loaded into Prometheus.
"""

from __future__ import annotations

import re

from dashboards.model import GREEN, ORANGE, RED, YELLOW, Panel, Query, Step
from slo import conventions as c
from slo.burn import WINDOWS, rows_for
from slo.model import SLO, CostSLI, LatencyMetric, LatencySLI


def _key(slo: SLO) -> str:
    return re.sub(r"[^a-z0-9]+", "_", slo.id.lower()).strip("_")


def _rule(name: str, slo: SLO) -> str:
    return f'{name}{{{c.LABEL_ID}="{slo.id}"}}'


def _gauge(name: str, slo: SLO, window: str | None = None) -> str:
    extra = f', window="{window}"' if window else ""
    return f'{name}{{slo="{slo.name}", service="{slo.service}"{extra}}}'


def _objective(slo: SLO) -> str:
    if isinstance(slo.sli, CostSLI):
        return f"budget {slo.sli.budget_usd_per_1k_requests:g} USD per 1k requests"
    return f"objective {slo.objective_percent:g}%"


def compliance_panel(slo: SLO) -> Panel:
    period = slo.window.describe()
    if isinstance(slo.sli, CostSLI):
        expr = (
            f"{_rule(c.PERIOD_BURN_RATE_RATIO, slo)}\nor on() (1 - {_gauge('slo_error_budget_remaining_ratio', slo)})"
        )
        return Panel(
            f"{_key(slo)}_compliance",
            f"{slo.name}: spend vs budget ({period})",
            f"Spend over the {period} as a share of what the {_objective(slo)} allows. Above 100% the "
            "budget is overspent: check the cost panels for the tenant or model that grew.",
            "stat",
            (Query(expr, slo.name, instant=True),),
            unit="percentunit",
            steps=(Step(GREEN), Step(YELLOW, 0.8), Step(RED, 1.0)),
            width=4,
            height=5,
            core=True,
        )
    expr = (
        f"(1 - {_rule(c.PERIOD_BURN_RATE_RATIO, slo)} * {slo.error_budget!r})\nor on() {_gauge('slo_sli_ratio', slo)}"
    )
    return Panel(
        f"{_key(slo)}_compliance",
        f"{slo.name}: SLI ({period})",
        f"{slo.description or slo.sli.describe()} Share of good events over the {period}; red below the "
        f"{_objective(slo)}. When red, the SLO is missed for this period: see the on-call burn-rate panel.",
        "stat",
        (Query(expr, slo.name, instant=True),),
        unit="percentunit",
        steps=(Step(RED), Step(GREEN, slo.objective)),
        width=4,
        height=5,
        core=True,
    )


def budget_panel(slo: SLO) -> Panel:
    expr = (
        f"{_rule(c.PERIOD_ERROR_BUDGET_REMAINING_RATIO, slo)}\n"
        f"or on() {_gauge('slo_error_budget_remaining_ratio', slo)}"
    )
    return Panel(
        f"{_key(slo)}_budget",
        f"{slo.name}: error budget left",
        f"Share of the {slo.window.describe()} error budget of {slo.id} ({_objective(slo)}) still unspent. "
        "Below 25% freeze risky rollouts; below 0 the SLO is missed for the period.",
        "stat",
        (Query(expr, slo.name, instant=True),),
        unit="percentunit",
        steps=(Step(RED), Step(ORANGE, 0.0), Step(YELLOW, 0.25), Step(GREEN, 0.5)),
        width=4,
        height=5,
        core=True,
    )


def burn_rate_panel(slo: SLO) -> Panel:
    rows = slo.alert_table()
    page = list(rows_for(rows, "page")) if slo.alerting.page else []
    ticket = list(rows_for(rows, "ticket")) if slo.alerting.ticket else []
    steps = [Step(GREEN)]
    if ticket:
        steps.append(Step(ORANGE, min(r.factor for r in ticket)))
    if page:
        steps.append(Step(RED, min(r.factor for r in page)))
    queries = tuple(
        Query(
            f"{_rule(c.sli_error_ratio(w), slo)} / {slo.error_budget!r}\nor on() {_gauge('slo_burn_rate', slo, w)}", w
        )
        for w in WINDOWS
    )
    table = (
        "; ".join(
            f"{r.severity} when {r.long_window} and {r.short_window} both exceed {r.factor:g}x"
            for r in (*page, *ticket)
        )
        or "no burn-rate alerts are enabled"
    )
    return Panel(
        f"{_key(slo)}_burn",
        f"{slo.name}: burn rate",
        f"Error-budget burn rate of {slo.id} ({_objective(slo)}) over each window; 1 spends exactly the "
        f"budget in one period. Alerts: {table}. Lines: orange = lowest ticket factor, red = lowest page "
        "factor. A short window above a line with its long window below means a spike that is fading.",
        "timeseries",
        queries,
        unit="x",
        steps=tuple(steps),
        threshold_lines=True,
        min=0,
        width=8,
        core=True,
    )


def latency_thresholds(slos: list[SLO], metric: LatencyMetric) -> list[tuple[float, float]]:
    """(threshold seconds, objective) of every latency SLO on `metric`."""
    return sorted(
        (s.sli.threshold_s, s.objective) for s in slos if isinstance(s.sli, LatencySLI) and s.sli.metric is metric
    )
