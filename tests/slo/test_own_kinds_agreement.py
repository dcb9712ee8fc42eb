"""Own SLI kinds that select their traffic (operation, excluded labels), count chosen 4xx error
types as errors, and group by labels: the ledger-backed evaluator and the rendered Prometheus
rules agree on the same records, group by group (issue 21 point 3, for our own kinds).

The records go to the ledger (`write_records`) and, minute by minute, through
`gateway.metrics.GatewayMetrics.observe`; the counters' per-minute increments are the
Prometheus input (as in test_safety_agreement).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from alerts.config import AlertsConfig
from alerts.promtool_tests import _ambiguous, approx_test, evaluate_groups, expected_alerts
from alerts.synthetic import Traffic
from gateway.metrics import GatewayMetrics
from ledger.record import RequestRecord
from ledger.testing import make_record
from slo.cache import SeriesCache
from slo.evaluator import Evaluation
from slo.model import counted_error_types
from slo.service import SLOService
from slo.source import Group, evaluate_ledger_groups
from slo.spec import parse_specs
from tests.alerts._promtool import require_promtool, run_agreement
from tests.slo._support import T0, assert_same_evaluation, counter_traffic, write

SLOS = parse_specs(
    """\
service: own
defaults: {window: 7d}
slos:
  - name: chat-429
    objective: 99
    sli: {availability: {bad_error_types: [rate_limited]}}
    selector: {tenant: acme, operation: chat}
  - name: by-tenant
    objective: 99.5
    sli: {availability: {}}
    selector: {exclude: {tenant: internal}, group_by: [tenant]}
  - name: ttft-by-version
    objective: 95
    sli: {latency: {metric: ttft, threshold: 0.5}}
    selector: {group_by: [model_version]}
""",
    "own.yaml",
)
MINUTES = 480
START = T0 + timedelta(minutes=17)  # not on an hour
COUNTERS = (
    "inferwatch_requests_total",
    "gen_ai_server_time_to_first_token_seconds_bucket",
    "gen_ai_server_time_to_first_token_seconds_count",
)
TIMES = list(range(20, MINUTES + 1, 20))


def _records() -> list[list[RequestRecord]]:
    """acme's chat gets 429s at 100-130 (only chat-429 counts them), acme's embeddings 503s at
    200-230 (by-tenant's acme group, not chat-429), beta an outage at 300-330, version v2 slow
    first tokens at 400-430; the internal tenant fails half its requests throughout (excluded)."""
    rng = np.random.default_rng(5)
    out: list[list[RequestRecord]] = []
    n = 0
    for m in range(MINUTES):
        minute = []
        for tenant, operation in (("acme", "chat"), ("acme", "embeddings"), ("beta", "chat"), ("internal", "chat")):
            for _ in range(int(rng.integers(4, 12))):
                version = "v2" if rng.random() < 0.5 else "v1"
                status = 200
                if tenant == "acme" and operation == "chat" and 100 <= m < 130 and rng.random() < 0.5:
                    status = 429
                elif tenant == "acme" and operation == "embeddings" and 200 <= m < 230 and rng.random() < 0.5:
                    status = 503
                elif tenant == "beta" and 300 <= m < 330:
                    status = 503
                elif tenant == "internal" and rng.random() < 0.5:
                    status = 503
                elif rng.random() < 0.003:
                    status = 503
                slow = version == "v2" and 400 <= m < 430
                n += 1
                minute.append(
                    make_record(
                        request_id=f"o{n}",
                        started_at=START + timedelta(minutes=m, seconds=int(rng.integers(0, 60))),
                        tenant=tenant,
                        operation=operation,
                        model_version=version,
                        status_code=status,
                        error_type={200: None, 503: "upstream_error", 429: "rate_limited"}[status],
                        ttft_s=(0.8 if slow else 0.2) if status == 200 else None,
                        tpot_s=0.02 if status == 200 else None,
                        cost_usd=0.0,
                    )
                )
        out.append(minute)
    return out


def _traffic(minutes: list[list[RequestRecord]]) -> Traffic:
    """The gateway's counters after each minute, as per-minute increments."""
    return counter_traffic(minutes, GatewayMetrics(zero_error_types=counted_error_types(SLOS)), COUNTERS)


def _ledger_evals(engine: Engine, **kw: object) -> dict[int, dict[str, dict[Group, Evaluation]]]:
    out = {}
    with engine.connect() as conn:
        for t in TIMES:
            evs = evaluate_ledger_groups(conn, SLOS, START + timedelta(minutes=t), **kw)
            out[t] = {s.id: evs[s] for s in SLOS}
    return out


def test_first_sight_of_a_scope_starts_counted_4xx_series_at_zero() -> None:
    """Prometheus cannot see the first increment of a series it never saw at 0."""
    metrics = GatewayMetrics(zero_error_types=counted_error_types(SLOS))
    metrics.observe(make_record(tenant="acme", status_code=200))
    samples = {
        (s.labels["status_class"], s.labels["error_type"]): s.value
        for f in metrics.registry.collect()
        for s in f.samples
        if s.name == "inferwatch_requests_total"
    }
    assert samples == {("2xx", ""): 1.0, ("5xx", ""): 0.0, ("4xx", "rate_limited"): 0.0}


def test_ledger_evaluation_matches_the_counters_group_by_group(ledger_engine: Engine) -> None:
    minutes = _records()
    write(ledger_engine, [r for recs in minutes for r in recs], SLOS)
    tr = _traffic(minutes)
    fresh = _ledger_evals(ledger_engine)
    cached = _ledger_evals(ledger_engine, cache=SeriesCache())
    minutes_only = _ledger_evals(ledger_engine, hourly=False)
    seen = set()
    for t in TIMES:
        for s in SLOS:
            want = evaluate_groups(s, tr, t)
            for got in (fresh[t][s.id], cached[t][s.id], minutes_only[t][s.id]):
                assert set(got) == set(want), (t, s.name)
                for g in want:
                    assert_same_evaluation(got[g], want[g])
            seen |= {(s.name, dict(g).get("tenant") or dict(g).get("model_version"), e.status) for g, e in want.items()}
    assert {g for s in SLOS for g in fresh[MINUTES][s.id]} == {
        (),
        (("tenant", "acme"),),
        (("tenant", "beta"),),
        (("model_version", "v1"),),
        (("model_version", "v2"),),
    }  # no group for the excluded tenant
    assert {
        ("chat-429", None, "page"),
        ("by-tenant", "acme", "page"),
        ("by-tenant", "beta", "page"),
        ("ttft-by-version", "v2", "page"),
    } <= seen, seen
    # what each SLO must not see: the 429s in by-tenant, the embeddings' 503s in chat-429, v1
    # never slow
    pages = {(name, g) for name, g, status in seen if status == "page"}
    assert ("ttft-by-version", "v1") not in pages
    at = {t: fresh[t] for t in (120, 220)}
    assert at[120]["own-chat-429"][()].page.firing
    assert not at[120]["own-by-tenant"][(("tenant", "acme"),)].page.firing
    assert at[220]["own-by-tenant"][(("tenant", "acme"),)].page.firing
    assert not at[220]["own-chat-429"][()].page.firing


def test_the_service_reports_a_grouped_slo_by_its_worst_group(sqlite_engine: Engine) -> None:
    minutes = _records()
    write(sqlite_engine, [r for recs in minutes for r in recs], SLOS)
    service = SLOService(sqlite_engine, SLOS, cache=False)
    st = {s.slo.name: s for s in service.evaluate_all(START + timedelta(minutes=320))}
    assert st["by-tenant"].evaluation is not None and st["by-tenant"].evaluation.page.firing
    assert st["by-tenant"].reason == "worst of 2 groups: tenant=beta"
    assert st["chat-429"].reason is None


def test_promtool_agrees_with_the_ledger_evaluation(sqlite_engine: Engine, tmp_path: Path) -> None:
    promtool = require_promtool()
    minutes = _records()
    write(sqlite_engine, [r for recs in minutes for r in recs], SLOS)
    tr = _traffic(minutes)
    config = AlertsConfig()
    evals = _ledger_evals(sqlite_engine)
    expr_tests, alert_tests = [], []
    for t in TIMES:
        evs = evals[t]
        assert not any(_ambiguous(s, e) for s in SLOS for e in evs[s.id].values()), t
        for s in SLOS:
            for g, e in evs[s.id].items():
                expr_tests += [approx_test(s, w, t, e, g) for w in ("5m", "1h", "6h")]
        for alertname, exp in expected_alerts(SLOS, evs, config, tr, t).items():
            alert_tests.append({"eval_time": f"{t}m", "alertname": alertname, "exp_alerts": exp})
    assert any(
        e["exp_labels"].get("tenant") == "beta" for a in alert_tests for e in a["exp_alerts"]
    )  # a page that carries its group's label
    run_agreement(promtool, tmp_path, "own kinds agreement", SLOS, config, tr.input_series(), expr_tests, alert_tests)
