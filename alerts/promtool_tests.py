"""Generate `promtool test rules` files whose expectations come from the Python evaluator.

Per SLO four scenarios run against the rendered rules.yaml:

- outage: healthy traffic, then a full outage; the page must fire within the time the burn-rate
  table promises (computed from a continuous model, plus one minute for whole-minute counts);
- slow burn: an error ratio between the ticket and page thresholds; a ticket opens, no page;
- healthy: errors at a tenth of the budget; nothing fires for the SLO;
- traffic stops: the series stay but count nothing: SLOMetricAbsent never fires (an idle SLO
  opens no ticket); SLONoTraffic fires after its time exactly when the SLO opts in;
- series vanish: scraping stops; SLOMetricAbsent fires once the series has been missing for
  the no-data time (its `for:`), counted from the end of Prometheus' 5-minute lookback.

At every asserted time the expected alerts of *every* SLO in the rule file are taken from
`slo.evaluator` on the same synthetic traffic, so each file is also an agreement test between
the evaluator and the PromQL. The generator checks the scenario's claim against the evaluator
and raises `GenerationError` when it does not hold (a wrong table or a wrong rule, not a flake).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alerts import ops
from alerts.config import AlertsConfig
from alerts.promql import prom_duration
from alerts.rules import (
    absent_alert,
    alert_group,
    burn_alert,
    meta_group,
    no_traffic_alert,
    sli_group,
    sli_metric,
    slo_labels,
)
from alerts.synthetic import (
    Traffic,
    absent_minutes,
    add_sli_traffic,
    can_make_traffic,
    counter_scraped,
    groups,
    presence_lookback,
    sli_series,
)
from slo import conventions as c
from slo.burn import Severity, rows_for
from slo.evaluator import Evaluation, evaluate
from slo.model import SLO

REQUESTS_PER_MINUTE = 1000  # at least; more when the budget is small (see requests_per_minute)
MIN_HEALTHY_ERRORS_PER_MINUTE = 10
HEALTHY_SHARE = 0.1  # healthy traffic burns a tenth of the budget
PREFIX_MINUTES = 60  # healthy traffic before an outage or a slow burn (fills the 1h window)
EPSILON = 1e-9


class GenerationError(RuntimeError):
    """The evaluator contradicts what a scenario is built to show."""


@dataclass
class Scenario:
    name: str
    traffic: Traffic
    eval_times: list[int]
    exprs: list[tuple[int, str]]  # (minute, window) of SLI values to compare


# -- expectations -------------------------------------------------------------------------------


def _labels_str(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


Group = tuple[tuple[str, str], ...]  # a group's (label, value) pairs, sorted; () when ungrouped
# An SLO's evaluation: one, or one per group of a grouped SLO
SLOEvaluations = Evaluation | Mapping[Group, Evaluation]


def by_group(ev: SLOEvaluations) -> Mapping[Group, Evaluation]:
    return {(): ev} if isinstance(ev, Evaluation) else ev


def evaluate_groups(slo: SLO, traffic: Traffic, t: int) -> dict[Group, Evaluation]:
    """The evaluator on the traffic at `t`, one evaluation per group the SLO's rules sum."""
    out = {}
    for g in groups(slo, traffic):
        out[tuple(sorted(g.items()))] = evaluate(slo, sli_series(slo, traffic, g), now=t)
    return out


def _evaluations(slos: Sequence[SLO], traffic: Traffic, t: int) -> dict[str, dict[Group, Evaluation]]:
    return {s.id: evaluate_groups(s, traffic, t) for s in slos}


def _any_ambiguous(slos: Sequence[SLO], evs: Mapping[str, SLOEvaluations]) -> bool:
    return any(_ambiguous(s, ev) for s in slos for ev in by_group(evs[s.id]).values())


def _ambiguous(slo: SLO, ev: Evaluation) -> bool:
    """A window ratio so close to a threshold that float rounding could decide the alert."""
    for state in (ev.page, ev.ticket):
        for row in state.rows:
            for w in (row.long_window, row.short_window):
                r = ev.windows[w].error_ratio
                if r is not None and abs(r - row.threshold) <= EPSILON * max(1.0, row.threshold):
                    return True
    return False


def alert_names(slos: Sequence[SLO]) -> list[str]:
    """Every alert name the SLOs' rules use, defaults first."""
    names = [c.PAGE_ALERT, c.TICKET_ALERT, c.ABSENT_ALERT, c.NO_TRAFFIC_ALERT]
    for s in slos:
        names += [s.alerting.alert(k).name for k in ("page", "ticket", "absent", "no_traffic")]
    return list(dict.fromkeys(names))


def expected_alerts(
    slos: Sequence[SLO], evs: Mapping[str, SLOEvaluations], config: AlertsConfig, traffic: Traffic, t: int
) -> dict[str, list[dict[str, Any]]]:
    """alertname -> exp_alerts at minute `t`, for every SLO (and each group of a grouped one).
    Burn rates and no traffic come from the evaluator; a missing series (which the evaluator
    cannot see) from the traffic."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in alert_names(slos)}

    def add(rule: dict[str, Any], group: Group = ()) -> None:
        out[rule["alert"]].append(
            {"exp_labels": {**rule["labels"], **dict(group)}, "exp_annotations": rule["annotations"]}
        )

    for s in slos:
        for group, ev in by_group(evs[s.id]).items():
            severities: tuple[Severity, ...] = ("page", "ticket")
            for sev, state in zip(severities, (ev.page, ev.ticket), strict=True):
                if state.enabled and state.firing:
                    add(burn_alert(s, sev, config), group)
            if ev.no_traffic and counter_scraped(s, traffic, t, dict(group)):
                add(no_traffic_alert(s, config), group)
        if absent_minutes(s, traffic, t) >= s.alerting.no_data_after_minutes:
            add(absent_alert(s, config))  # sum(absent(...)): one alert, whatever the groups
    return out


def approx_test(slo: SLO, window: str, t: int, ev: Evaluation, group: Group = ()) -> dict[str, Any]:
    """promql_expr_test: the recorded SLI (of `group`) equals the evaluator's (within 1e-9), or is absent."""
    f = _labels_str({**c.id_labels(slo.service, slo.name), **dict(group)})
    ratio = ev.windows[window].error_ratio if window in ev.windows else ev.error_ratio
    expr = (
        f"abs({sli_metric(window)}{f} - {ratio!r}) < bool {EPSILON}"
        if ratio is not None
        else f"{sli_metric(window)}{f}"
    )
    labels = {**slo_labels(slo), **dict(group), c.LABEL_WINDOW: window}
    samples = [] if ratio is None else [{"labels": _labels_str(labels), "value": 1}]
    return {"expr": expr, "eval_time": f"{t}m", "exp_samples": samples}


def build_test(name: str, slos: Sequence[SLO], scenario: Scenario, config: AlertsConfig) -> dict[str, Any]:
    alert_tests, expr_tests = [], []
    for t in scenario.eval_times:
        evs = _evaluations(slos, scenario.traffic, t)
        for alertname, exp in expected_alerts(slos, evs, config, scenario.traffic, t).items():
            alert_tests.append({"eval_time": f"{t}m", "alertname": alertname, "exp_alerts": exp})
    slo = next(s for s in slos if s.id == name)
    for t, window in scenario.exprs:
        for group, ev in evaluate_groups(slo, scenario.traffic, t).items():
            expr_tests.append(approx_test(slo, window, t, ev, group))
    return {
        "name": f"{name}: {scenario.name}",
        "interval": "1m",
        "input_series": scenario.traffic.input_series(),
        "alert_rule_test": alert_tests,
        "promql_expr_test": expr_tests,
    }


# -- scenarios ----------------------------------------------------------------------------------


def _thresholds(slo: SLO, severity: str) -> list[float]:
    rows = rows_for(slo.alert_table(), severity)  # type: ignore[arg-type]
    return [r.threshold(slo.error_budget) for r in rows]


def crossing_minutes(long_w: int, short_w: int, prefix: float, before: float, after: float, thr: float) -> float:
    """Minutes after a step from error ratio `before` to `after` (with `prefix` minutes of
    history at constant traffic, math.inf for full windows) until both windows exceed `thr`,
    in a continuous model."""

    def ratio(tau: float, w: int) -> float:
        old = max(0.0, min(w - tau, prefix))
        new = min(tau, w)
        return (before * old + after * new) / (old + new)

    for step in range(1, 100 * (3 * 1440) + 1):
        tau = step / 100
        if ratio(tau, long_w) > thr and ratio(tau, short_w) > thr:
            return tau
    return math.inf


def page_within(slo: SLO, before: float, after: float, prefix: float) -> float:
    rows = rows_for(slo.alert_table(), "page")
    return min(
        crossing_minutes(r.long_minutes, r.short_minutes, prefix, before, after, r.threshold(slo.error_budget))
        for r in rows
    )


def ticket_within(slo: SLO, before: float, after: float, prefix: float) -> float:
    rows = rows_for(slo.alert_table(), "ticket")
    return min(
        crossing_minutes(r.long_minutes, r.short_minutes, prefix, before, after, r.threshold(slo.error_budget))
        for r in rows
    )


def _ratios(slo: SLO, nudge: float = 1.0) -> tuple[float, float, float]:
    """(healthy, slow burn, outage) error ratios for the SLO's thresholds. `nudge` moves the
    healthy and slow-burn ratios a little, for when another SLO of the file has a threshold
    exactly at them (a 90 % SLO's healthy 1 % is a 99 % SLO's ticket threshold)."""
    b = slo.error_budget
    healthy = HEALTHY_SHARE * b * nudge
    ticket_min, page_min = min(_thresholds(slo, "ticket")), min(_thresholds(slo, "page"))
    slow = ticket_min + (page_min - ticket_min) * 0.5 * nudge
    outage = 1.0 if slo.bounded else 2 * max(_thresholds(slo, "page"))
    return healthy, slow, outage


def requests_per_minute(slo: SLO) -> int:
    """Traffic large enough that healthy minutes hold whole errors: at 99.999 % a tenth of the
    budget is one error in ten million requests, and rounding counts to integers at a thousand
    requests a minute would move every ratio across its threshold."""
    healthy = HEALTHY_SHARE * slo.error_budget
    rpm = REQUESTS_PER_MINUTE
    while rpm * healthy < MIN_HEALTHY_ERRORS_PER_MINUTE:
        rpm *= 10
    return rpm


def _step_traffic(slo: SLO, minutes: int, prefix: int, before: float, after: float) -> Traffic:
    tr = Traffic(minutes)
    ratio = np.where(np.arange(minutes) < prefix, before, after)
    add_sli_traffic(tr, slo, np.full(minutes, requests_per_minute(slo)), ratio)
    return tr


def _unambiguous(slos: Sequence[SLO], tr: Traffic, t: int, limit: int) -> int:
    for cand in range(t, min(limit, t + 5) + 1):
        if not _any_ambiguous(slos, _evaluations(slos, tr, cand)):
            return cand
    raise GenerationError(f"every time from {t}m is within float rounding of a threshold")


def _require_unambiguous(slos: Sequence[SLO], tr: Traffic, times: Sequence[int]) -> list[int]:
    """`times`, unless an SLO's window ratio sits on a threshold at one of them (then the next
    nudge is tried). Traffic that stops freezes every window's ratio: at 90 d a 95 % SLO's
    healthy 0.5 % errors stayed exactly on a 99.5 % SLO's 1x ticket threshold for hours, and
    float rounding in rate() decided the alert."""
    for t in times:
        if _any_ambiguous(slos, _evaluations(slos, tr, t)):
            raise GenerationError(f"at {t}m a window ratio is within float rounding of a threshold")
    return list(times)


def outage(slo: SLO, slos: Sequence[SLO], nudge: float = 1.0) -> Scenario:
    healthy, _, bad = _ratios(slo, nudge)
    # The table's promise holds with a long healthy history (full windows); the 60 minutes of
    # history here only make the long windows fill faster, so the page comes no later.
    within = page_within(slo, healthy, bad, math.inf)
    bound = PREFIX_MINUTES + math.ceil(within) + 1
    minutes = bound + 5
    tr = _step_traffic(slo, minutes, PREFIX_MINUTES, healthy, bad)
    series = sli_series(slo, tr)
    if slo.alerting.page and not evaluate(slo, series, now=bound).page.firing:
        raise GenerationError(f"{slo.id}: a full outage does not page within {within:.1f} minutes")
    if not slo.alerting.page and any(evaluate(slo, series, now=t).page.firing for t in range(1, minutes + 1)):
        raise GenerationError(f"{slo.id}: paging is disabled but the evaluator pages")
    times = [_unambiguous(slos, tr, t, minutes) for t in (PREFIX_MINUTES - 1, bound, minutes)]
    claim = (
        f"pages within {math.ceil(within) + 1}m (burn-rate table bound)"
        if slo.alerting.page
        else "does not page (paging disabled)"
    )
    return Scenario(f"outage from {PREFIX_MINUTES}m {claim}", tr, times, [(bound, "5m"), (bound, "1h")])


def slow_burn(slo: SLO, slos: Sequence[SLO], nudge: float = 1.0) -> Scenario:
    healthy, slow, _ = _ratios(slo, nudge)
    within = ticket_within(slo, healthy, slow, PREFIX_MINUTES)
    bound = PREFIX_MINUTES + math.ceil(within) + 1
    minutes = bound + 15
    tr = _step_traffic(slo, minutes, PREFIX_MINUTES, healthy, slow)
    series = sli_series(slo, tr)
    if not evaluate(slo, series, now=bound).ticket.firing and slo.alerting.ticket:
        raise GenerationError(f"{slo.id}: a slow burn at {slow:.4g} does not open a ticket in {within:.0f}m")
    if any(evaluate(slo, series, now=t).page.firing for t in range(1, minutes + 1)):
        raise GenerationError(f"{slo.id}: a slow burn at {slow:.4g} pages")
    times = [_unambiguous(slos, tr, t, minutes) for t in (PREFIX_MINUTES + 10, bound, minutes)]
    return Scenario(
        f"slow burn at error ratio {slow:.4g} opens a ticket within "
        f"{math.ceil(within) + 1}m (after {PREFIX_MINUTES}m of history) and never pages",
        tr,
        times,
        [(bound, "2h"), (bound, "1d"), (bound, "3d"), (bound, prom_duration(slo.window.minutes))],
    )


def healthy_traffic(slo: SLO, slos: Sequence[SLO], nudge: float = 1.0) -> Scenario:
    healthy, _, _ = _ratios(slo, nudge)
    minutes = 90
    tr = _step_traffic(slo, minutes, minutes, healthy, healthy)
    series = sli_series(slo, tr)
    for t in range(1, minutes + 1):
        ev = evaluate(slo, series, now=t)
        if ev.page.firing or ev.ticket.firing or ev.no_traffic:
            raise GenerationError(f"{slo.id}: healthy traffic alerts at {t}m ({ev.status})")
    times = [_unambiguous(slos, tr, t, minutes) for t in (20, 60, minutes)]
    return Scenario("healthy traffic fires nothing", tr, times, [(minutes, "30m"), (minutes, "6h")])


def traffic_stops(slo: SLO, slos: Sequence[SLO], nudge: float = 1.0) -> Scenario:
    healthy, _, _ = _ratios(slo, nudge)
    idle = slo.alerting.no_traffic_after_minutes
    active, n = 30, idle if idle is not None else slo.alerting.no_data_after_minutes
    minutes = active + n + 6
    tr = Traffic(minutes)
    req = np.where(np.arange(minutes) < active, requests_per_minute(slo), 0)
    add_sli_traffic(tr, slo, req, healthy)
    series = sli_series(slo, tr)
    fires = [evaluate(slo, series, now=t).no_traffic for t in (active + n - 1, active + n)]
    if fires != ([False, True] if idle is not None else [False, False]):
        raise GenerationError(
            f"{slo.id}: no traffic does not {'start exactly' if idle else 'stay silent'} {n}m after traffic stops"
        )
    claim = (
        f"fires {slo.alerting.alert('no_traffic').name} after {prom_duration(n)}"
        if idle is not None
        else "fires nothing (no-traffic alert not enabled)"
    )
    return Scenario(
        f"traffic stops: series stay, {claim}, never {slo.alerting.alert('absent').name}",
        tr,
        _require_unambiguous(slos, tr, [active + n - 1, active + n, minutes]),
        [],
    )


def series_vanish(slo: SLO, slos: Sequence[SLO], nudge: float = 1.0) -> Scenario:
    healthy, _, _ = _ratios(slo, nudge)
    active, n = 30, slo.alerting.no_data_after_minutes
    lookback = presence_lookback(slo)
    fire = active + lookback + 1 + n  # absent() from lookback + 1 on, then `for:`
    tr = Traffic(fire + 3, scrape_until=active)
    # nothing counted after the last scrape, so the evaluator sees what Prometheus sees
    add_sli_traffic(tr, slo, np.where(np.arange(fire + 3) < active, requests_per_minute(slo), 0), healthy)
    if absent_minutes(slo, tr, fire - 1) >= n or absent_minutes(slo, tr, fire) < n:
        raise GenerationError(f"{slo.id}: the absent model does not fire at {fire}m")
    return Scenario(
        f"series vanish at {active}m: {slo.alerting.alert('absent').name} fires at {fire}m "
        f"(lookback {lookback}m, then for: {prom_duration(n)})",
        tr,
        _require_unambiguous(slos, tr, [active, fire - 1, fire]),
        [],
    )


SCENARIOS = (outage, slow_burn, healthy_traffic, traffic_stops, series_vanish)
NUDGES = (1.0, 0.9, 1.1, 0.8, 1.2, 0.7)


def make_scenario(make: Callable[..., Scenario], slo: SLO, slos: Sequence[SLO], warnings: list[str]) -> Scenario | None:
    """The scenario, made with the first nudge that works; None (and a warning) when none does,
    so that a scenario that cannot be made never stops a build."""
    last: GenerationError | None = None
    for nudge in NUDGES:
        try:
            return make(slo, slos, nudge)
        except GenerationError as e:
            last = e
    warnings.append(f"{slo.id}: promtool scenario {make.__name__!r} left out: {last}")
    return None


def slo_test_file(
    slo: SLO, slos: Sequence[SLO], config: AlertsConfig, rules_file: str, warnings: list[str] | None = None
) -> dict[str, Any]:
    """A promtool test file for one SLO (expectations cover every SLO of the rule file)."""
    order = [g["name"] for s in slos for g in (sli_group(s), meta_group(s), alert_group(s, config))]
    notes = warnings if warnings is not None else []
    made = [make_scenario(make, slo, slos, notes) for make in SCENARIOS]
    return {
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "group_eval_order": [*order, ops.GROUP],
        "tests": [build_test(slo.id, slos, sc, config) for sc in made if sc is not None],
    }


# -- operational alerts -------------------------------------------------------------------------


def _ann(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    """The rule's annotations with `{{ $labels.x }}` expanded for `labels`."""
    out = {}
    for k, v in rule["annotations"].items():
        for name, value in labels.items():
            v = v.replace("{{ $labels." + name + " }}", value)
        out[k] = v
    return out


def operational_test_file(config: AlertsConfig, rules_file: str) -> dict[str, Any]:
    """promtool tests for the operational alerts, from their thresholds in `config`."""
    o = config.operational
    by_name: dict[str, dict[str, Any]] = {}
    for rule in ops.operational_group(config)["rules"]:
        by_name.setdefault(rule["alert"], rule)  # the cost alert: its all-tenants rule comes first

    def exp(name: str, labels: dict[str, str]) -> dict[str, Any]:
        rule = by_name[name]
        return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": _ann(rule, labels)}

    def minutes(d: str) -> int:
        return {"m": 1, "h": 60}[d[-1]] * int(d[:-1])

    up = {"upstream": "http://worker-1:8000", "model_version": "v1"}
    healthy_l = {"model_alias": "demo-chat", "model_version": "v1", "upstream": "http://worker-1:8000"}
    gpu = {"gpu": "0", "instance": "worker-1:9400"}
    mm = {"model_alias": "demo-chat", "upstream": "http://worker-1:8000"}
    wd, nh, gf, vf = (
        minutes(o.worker_down_for),
        minutes(o.no_healthy_upstream_for),
        minutes(o.gpu_memory_for),
        minutes(o.version_mismatch_for),
    )
    spike_w = minutes(o.safety_spike_window)
    total_gib = 80 * 2**30
    hot = int(total_gib * (o.gpu_memory_ratio + (1 - o.gpu_memory_ratio) / 2))
    tests: list[dict[str, Any]] = [
        {
            "name": "worker down and no healthy upstream",
            "interval": "1m",
            "input_series": [
                {"series": _labels_str(up).join(["inferwatch_worker_up", ""]), "values": f"1x10 0x{wd + 5}"},
                {"series": "inferwatch_upstream_healthy" + _labels_str(healthy_l), "values": f"1x10 0x{wd + 5}"},
            ],
            "alert_rule_test": [
                {"eval_time": f"{10 + wd - 1}m", "alertname": ops.WORKER_DOWN, "exp_alerts": []},
                {
                    "eval_time": f"{10 + wd + 1}m",
                    "alertname": ops.WORKER_DOWN,
                    "exp_alerts": [exp(ops.WORKER_DOWN, up)],
                },
                {"eval_time": "9m", "alertname": ops.NO_HEALTHY_UPSTREAM, "exp_alerts": []},
                {
                    "eval_time": f"{10 + nh + 1}m",
                    "alertname": ops.NO_HEALTHY_UPSTREAM,
                    "exp_alerts": [exp(ops.NO_HEALTHY_UPSTREAM, {"model_alias": "demo-chat"})],
                },
            ],
        },
        {
            "name": "GPU memory pressure and version mismatch",
            "interval": "1m",
            "input_series": [
                {
                    "series": "inferwatch_worker_gpu_memory_used_bytes" + _labels_str(gpu),
                    "values": f"{total_gib // 2}x10 {hot}x{gf + 5}",
                },
                {
                    "series": "inferwatch_worker_gpu_memory_total_bytes" + _labels_str(gpu),
                    "values": f"{total_gib}x{gf + 15}",
                },
                {"series": "inferwatch_model_version_mismatch" + _labels_str(mm), "values": f"0x10 1x{vf + 5}"},
            ],
            "alert_rule_test": [
                {"eval_time": f"{10 + gf - 1}m", "alertname": ops.GPU_MEMORY_PRESSURE, "exp_alerts": []},
                {
                    "eval_time": f"{10 + gf + 1}m",
                    "alertname": ops.GPU_MEMORY_PRESSURE,
                    "exp_alerts": [exp(ops.GPU_MEMORY_PRESSURE, gpu)],
                },
                {
                    "eval_time": f"{10 + vf + 1}m",
                    "alertname": ops.VERSION_MISMATCH,
                    "exp_alerts": [exp(ops.VERSION_MISMATCH, mm)],
                },
            ],
        },
    ]
    # The spool's disk fills at minute 10 while the database is down: the dropped count climbs.
    inst = {"instance": "gateway-0:8000", "job": "inferwatch-gateway"}
    tests.append(
        {
            "name": "ledger records dropped",
            "interval": "1m",
            "input_series": [
                {"series": ops.LEDGER_DROPPED_RECORDS + _labels_str(inst), "values": "0x10 12 40 40x20"},
            ],
            "alert_rule_test": [
                {"eval_time": "9m", "alertname": ops.LEDGER_RECORDS_DROPPED, "exp_alerts": []},
                {
                    "eval_time": "12m",
                    "alertname": ops.LEDGER_RECORDS_DROPPED,
                    "exp_alerts": [exp(ops.LEDGER_RECORDS_DROPPED, inst)],
                },
                {
                    "eval_time": f"{12 + minutes(o.ledger_dropped_window) + 2}m",
                    "alertname": ops.LEDGER_RECORDS_DROPPED,
                    "exp_alerts": [],
                },
            ],
        }
    )
    # Safety spike: 100 requests a minute; incidents jump from 1 % to 20 % at minute 30.
    scope = {"model_alias": "demo-chat", "model_version": "v1", "tenant": "demo"}
    per_min = np.where(np.arange(60) < 30, 1, 20)
    inc = Traffic(60)
    inc.add("inferwatch_requests_total", {**scope, "operation": "chat", "status_class": "2xx"}, np.full(60, 100))
    inc.add("inferwatch_safety_incidents_total", {**scope, "direction": "output"}, per_min)
    spike_labels = {"model_alias": "demo-chat", "model_version": "v1"}
    tests.append(
        {
            "name": "safety incident spike",
            "interval": "1m",
            "input_series": inc.input_series(),
            "alert_rule_test": [
                {"eval_time": "29m", "alertname": ops.SAFETY_SPIKE, "exp_alerts": []},
                {
                    "eval_time": f"{30 + spike_w}m",
                    "alertname": ops.SAFETY_SPIKE,
                    "exp_alerts": [exp(ops.SAFETY_SPIKE, spike_labels)],
                },
            ],
        }
    )
    if o.daily_cost_budget_usd is not None:
        # Spend at 48x the daily budget: the last day's spend crosses the budget after 30 minutes.
        per_minute = o.daily_cost_budget_usd * 48 / 1440
        cost = Traffic(45)
        # a tenant no per-tenant budget names, so only the all-tenants rule can fire
        cost.add("inferwatch_cost_usd_total", {**scope, "tenant": "synthetic-test"}, np.full(45, per_minute))
        cost_rule = by_name[ops.COST_OVER_BUDGET]
        tests.append(
            {
                "name": "daily cost over budget",
                "interval": "1m",
                "input_series": cost.input_series(),
                "alert_rule_test": [
                    {"eval_time": "25m", "alertname": ops.COST_OVER_BUDGET, "exp_alerts": []},
                    {
                        "eval_time": "42m",
                        "alertname": ops.COST_OVER_BUDGET,
                        "exp_alerts": [
                            {"exp_labels": cost_rule["labels"], "exp_annotations": cost_rule["annotations"]}
                        ],
                    },
                ],
            }
        )
    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}


SYNTHETIC_RULES = "synthetic-rules.yaml"


def write_tests(
    slos: Sequence[SLO],
    tests_dir: Path,
    config: AlertsConfig,
    rules_file: str = "../rules.yaml",
    warnings: list[str] | None = None,
) -> list[Path]:
    """Write one test file per SLO plus operational.yaml; returns their paths. Scenarios that
    could not be made are left out and described in `warnings`.

    SLIs on any metric (events, raw) get scenarios when their queries sum counter rates
    (`alerts.query_traffic`); for other queries traffic cannot be made up. The other SLOs' tests
    then run against `SYNTHETIC_RULES` beside them, the same rules without those SLOs, whose
    alerts would otherwise share the alert names."""
    from alerts.rules import dump_yaml, render_rules

    tests_dir.mkdir(parents=True, exist_ok=True)
    testable = [s for s in slos if can_make_traffic(s)]
    notes = warnings if warnings is not None else []
    if len(testable) < len(slos):
        (tests_dir / SYNTHETIC_RULES).write_text(render_rules(testable, config).to_yaml(), encoding="utf-8")
        rules_file = SYNTHETIC_RULES
        notes += [
            f"{s.id}: no generated promtool tests: its {s.kind.value} queries are not sums of counter "
            "rates (sum(rate(x[{{.window}}])), a raw ratio of two, or counter selectors); "
            "test them with your own series"
            for s in slos
            if s not in testable
        ]
    paths = []
    for slo in testable:
        p = tests_dir / f"{slo.id}.yaml"
        p.write_text(dump_yaml(slo_test_file(slo, testable, config, rules_file, notes)), encoding="utf-8")
        paths.append(p)
    p = tests_dir / "operational.yaml"
    p.write_text(dump_yaml(operational_test_file(config, rules_file)), encoding="utf-8")
    paths.append(p)
    return paths
