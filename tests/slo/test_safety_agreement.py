"""Safety-incident SLOs: the built-in evaluator over the ledger's rollups and the rendered
Prometheus rules over the gateway's counters agree on the same records.

The records go to the ledger (`write_records`) and, minute by minute, through
`gateway.metrics.GatewayMetrics.observe`; the counters' per-minute increments are the
Prometheus input. An incident is a request with a blocked or flagged hit in a direction
(redactions are not), once per request however many hits it has.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from alerts.config import AlertsConfig
from alerts.promtool_tests import _ambiguous, expected_alerts
from alerts.synthetic import Traffic, sli_series
from gateway.metrics import GatewayMetrics
from ledger.record import RequestRecord, SafetyHit
from ledger.testing import make_record
from slo.cache import SeriesCache
from slo.evaluator import Evaluation, evaluate
from slo.source import evaluate_ledger_many
from slo.spec import parse_specs
from tests.alerts._promtool import require_promtool, run_agreement
from tests.alerts._promtool import evaluation_checks
from tests.slo._support import T0, assert_same_evaluation, counter_traffic, write

SLOS = parse_specs(
    """\
service: safe
slos:
  - name: out
    objective: 99.5
    window: 7d
    sli: {safety_incidents: {direction: output}}
  - name: in-acme
    objective: 99
    window: 7d
    sli: {safety_incidents: {direction: input}}
    selector: {tenant: acme}
""",
    "safety.yaml",
)
MINUTES = 600  # long enough for whole hours to come from the hourly rollups
START = T0 + timedelta(minutes=17)  # not on an hour
COUNTERS = ("inferwatch_requests_total", "inferwatch_safety_incidents_total")
ACTIONS = ("block", "flag", "redact")


def _records() -> list[list[RequestRecord]]:
    rng = np.random.default_rng(11)
    out: list[list[RequestRecord]] = []
    n = 0
    for m in range(MINUTES):
        burst = 120 <= m < 150  # an incident spike in the outputs
        minute = []
        for tenant in ("acme", "beta"):
            for _ in range(int(rng.integers(0 if 300 <= m < 320 else 3, 12))):  # a quiet spell
                hits = []
                input_burst = tenant == "acme" and 400 <= m < 430  # pages the 7 d input SLO (14.4x over 14m)
                for direction, p in (("output", 0.3 if burst else 0.003), ("input", 0.3 if input_burst else 0.02)):
                    for _ in range(int(rng.random() < p) + int(rng.random() < p / 2)):
                        hits.append(SafetyHit(direction, "pii", "regex", ACTIONS[int(rng.integers(0, 3))]))
                status = int(rng.choice([200, 200, 200, 503, 429]))
                n += 1
                minute.append(
                    make_record(
                        request_id=f"s{n}",
                        started_at=START + timedelta(minutes=m, seconds=int(rng.integers(0, 60))),
                        tenant=tenant,
                        status_code=status,
                        error_type={200: None, 503: "upstream_error", 429: "rate_limited"}[status],
                        ttft_s=0.2 if status == 200 else None,
                        tpot_s=0.02 if status == 200 else None,
                        cost_usd=0.0,
                        safety=hits,
                    )
                )
        out.append(minute)
    return out


def _traffic(minutes: list[list[RequestRecord]]) -> Traffic:
    """The gateway's counters after each minute, as per-minute increments."""
    return counter_traffic(minutes, GatewayMetrics(), COUNTERS)


def _ledger_evals(engine: Engine, times: list[int], **kw: object) -> dict[int, dict[str, Evaluation]]:
    out = {}
    with engine.connect() as conn:
        for t in times:
            evs = evaluate_ledger_many(conn, SLOS, START + timedelta(minutes=t), **kw)  # type: ignore[arg-type]
            out[t] = {s.id: evs[s] for s in SLOS}
    return out


TIMES = list(range(10, MINUTES + 1, 10))


def test_ledger_evaluation_matches_the_counters(ledger_engine: Engine) -> None:
    minutes = _records()
    write(ledger_engine, [r for recs in minutes for r in recs], SLOS)
    tr = _traffic(minutes)
    series = {s.id: sli_series(s, tr) for s in SLOS}
    incidents = sum(
        1 for recs in minutes for r in recs if any(h.direction == "output" and h.action != "redact" for h in r.safety)
    )
    redacted_only = sum(
        1
        for recs in minutes
        for r in recs
        if r.safety
        and all(h.action == "redact" for h in r.safety if h.direction == "output")
        and any(h.direction == "output" for h in r.safety)
    )
    assert incidents > 0 and redacted_only > 0  # the traffic has both
    fresh = _ledger_evals(ledger_engine, TIMES)
    minutes_only = _ledger_evals(ledger_engine, TIMES, hourly=False)
    cache = SeriesCache()
    cached = _ledger_evals(ledger_engine, TIMES, cache=cache)
    seen = set()
    for t in TIMES:
        for s in SLOS:
            want = evaluate(s, series[s.id], now=t)
            for got in (fresh[t][s.id], minutes_only[t][s.id], cached[t][s.id]):
                assert_same_evaluation(got, want)
            seen.add((s.name, want.status))
    out = fresh[MINUTES]["safe-out"]
    assert out.total == sum(len(recs) for recs in minutes) and out.total - out.good == incidents
    assert {("out", "page"), ("out", "ok"), ("in-acme", "page")} <= seen, seen


def test_promtool_agrees_with_the_ledger_evaluation(sqlite_engine: Engine, tmp_path: Path) -> None:
    promtool = require_promtool()
    minutes = _records()
    write(sqlite_engine, [r for recs in minutes for r in recs], SLOS)
    tr = _traffic(minutes)
    config = AlertsConfig()
    evals = _ledger_evals(sqlite_engine, TIMES)
    expr_tests, alert_tests = [], []
    for t in TIMES:
        evs = evals[t]
        assert not any(_ambiguous(s, evs[s.id]) for s in SLOS), t
        for s in SLOS:
            expr_tests += evaluation_checks(s, evs[s.id], t)
        for alertname, exp in expected_alerts(SLOS, evs, config, tr, t).items():
            alert_tests.append({"eval_time": f"{t}m", "alertname": alertname, "exp_alerts": exp})
    run_agreement(promtool, tmp_path, "safety agreement", SLOS, config, tr.input_series(), expr_tests, alert_tests)
