"""The same synthetic traffic, evaluated by promtool (rendered rules) and by slo.evaluator,
must give the same SLIs, burn rates, budget remaining and alerts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alerts.config import AlertsConfig
from alerts.promtool_tests import _ambiguous, expected_alerts
from alerts.synthetic import Traffic, sli_series
from slo.evaluator import evaluate
from slo.spec import parse_specs
from tests.alerts._promtool import evaluation_checks, run_agreement

SLOS = parse_specs(
    """\
service: agree
slos:
  - name: avail-acme
    objective: 99.5
    window: 28d
    sli: {availability: {}}
    selector: {tenant: acme}
  - name: ttft
    objective: 95
    window: 30d
    sli: {latency: {metric: ttft, threshold: 0.5}}
  - name: safety
    objective: 99.9
    window: 7d
    sli: {safety_incidents: {direction: output}}
  - name: cost
    window: 28d
    sli: {cost: {budget_usd_per_1k_requests: 0.5}}
  - name: avail-90d
    objective: 99.9
    window: 90d
    sli: {availability: {}}
    selector: {tenant: acme}
""",
    "agreement.yaml",
)
MINUTES = 420
GAP = range(200, 230)  # no request at all


def _phase(ratios: dict[range, float], default: float) -> np.ndarray:
    out = np.full(MINUTES, default)
    for r, v in ratios.items():
        out[r.start : r.stop] = v
    return out


def _traffic() -> Traffic:
    rng = np.random.default_rng(7)
    req = rng.integers(50, 400, MINUTES).astype(float)
    req[GAP.start : GAP.stop] = 0
    beta = rng.integers(0, 100, MINUTES).astype(float)
    beta[GAP.start : GAP.stop] = 0
    # acme: healthy, a 30-minute outage (pages), then a slow burn (tickets)
    err = _phase({range(100, 130): 0.3, range(230, MINUTES): 0.02}, 0.002)
    bad = np.floor(req * err + rng.random(MINUTES))
    slow = np.floor(req * _phase({range(20, 90): 0.8}, 0.03))
    incidents = np.floor(req * _phase({range(300, 330): 0.05}, 0.0005) + rng.random(MINUTES))
    spend = req * _phase({range(150, 180): 40.0}, 0.75) * 0.5 / 1000  # multiples of the budget

    tr = Traffic(MINUTES)
    acme = {"tenant": "acme", "model_alias": "chat", "model_version": "v1", "operation": "chat"}
    other = {**acme, "tenant": "beta"}
    tr.add("inferwatch_requests_total", {**acme, "status_class": "2xx"}, req - bad)
    tr.add("inferwatch_requests_total", {**acme, "status_class": "5xx", "error_type": "timeout"}, bad)
    tr.add(
        "inferwatch_requests_total", {**acme, "status_class": "4xx", "error_type": "rate_limited"}, np.floor(req / 3)
    )
    # beta fails half its requests; the acme SLO must not see it, the others must
    tr.add("inferwatch_requests_total", {**other, "status_class": "2xx"}, beta - np.floor(beta / 2))
    tr.add(
        "inferwatch_requests_total",
        {**other, "status_class": "5xx", "error_type": "upstream_error"},
        np.floor(beta / 2),
    )
    ok = req - bad  # only successful requests are observed in latency histograms
    tr.add("gen_ai_server_time_to_first_token_seconds_bucket", {**acme, "le": "0.5"}, ok - np.minimum(slow, ok))
    tr.add("gen_ai_server_time_to_first_token_seconds_bucket", {**acme, "le": "+Inf"}, ok)
    tr.add("gen_ai_server_time_to_first_token_seconds_count", acme, ok)
    scope = {k: v for k, v in acme.items() if k != "operation"}
    tr.add("inferwatch_safety_incidents_total", {**scope, "direction": "output"}, incidents)
    tr.add("inferwatch_safety_incidents_total", {**scope, "direction": "input"}, np.floor(req / 5))
    tr.add("inferwatch_cost_usd_total", scope, spend)
    return tr


def test_promtool_and_evaluator_agree(promtool: str, tmp_path: Path) -> None:
    tr = _traffic()
    config = AlertsConfig()
    series = {s.id: sli_series(s, tr) for s in SLOS}
    times = list(range(10, MINUTES + 1, 10))
    expr_tests, alert_tests, seen = [], [], set()
    for t in times:
        evs = {s.id: evaluate(s, series[s.id], now=t) for s in SLOS}
        assert not any(_ambiguous(s, evs[s.id]) for s in SLOS), t
        for s in SLOS:
            expr_tests += evaluation_checks(s, evs[s.id], t)
            seen.add((s.name, evs[s.id].status))
            if evs[s.id].windows["5m"].error_ratio is None:
                seen.add((s.name, "empty-5m"))
            if evs[s.id].no_data:
                seen.add((s.name, "no_data"))
        for alertname, exp in expected_alerts(SLOS, evs, config, tr, t).items():
            alert_tests.append({"eval_time": f"{t}m", "alertname": alertname, "exp_alerts": exp})
    # The traffic exercises every state the comparison is meant to cover.
    assert {
        ("avail-acme", "page"),
        ("avail-acme", "ticket"),
        ("avail-acme", "ok"),
        ("avail-acme", "no_data"),
        ("ttft", "page"),
        ("safety", "page"),
        ("cost", "ticket"),
        ("cost", "empty-5m"),
        ("avail-90d", "page"),
        ("avail-90d", "ticket"),
    } <= seen, seen
    # 7 d and 90 d SLOs alert on their own, period-scaled windows (14m/5m ... and 3h/15m ...)
    assert {"14m", "16h48m"} <= set(evaluate(SLOS[2], series[SLOS[2].id], now=60).windows)
    assert {"3h", "15m", "18h", "9d"} <= set(evaluate(SLOS[4], series[SLOS[4].id], now=60).windows)
    # The acme SLO ignores beta's failures and the 4xx; a tenant-blind SLI would page all along.
    assert evaluate(SLOS[0], series[SLOS[0].id], now=60).status == "ok"

    run_agreement(promtool, tmp_path, "evaluator agreement", SLOS, config, tr.input_series(), expr_tests, alert_tests)
