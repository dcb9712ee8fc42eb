"""Issue 21 point 7: "no data" (the SLI's series is missing, SLOMetricAbsent with a `for:`) is
apart from "no traffic" (the series exist but count nothing, SLONoTraffic, opt-in per SLO)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alerts.build import build
from alerts.config import AlertsConfig
from alerts.rules import alert_group, render_rules
from alerts.synthetic import Traffic, add_sli_traffic, sli_series
from slo.evaluator import evaluate
from slo.spec import parse_specs
from tests.alerts._promtool import check_rules, test_rules, write_test

SPEC = """\
service: nd
slos:
  - name: idle
    objective: 99
    sli: {availability: {}}
  - name: watched
    objective: 99
    sli: {latency: {metric: ttft, threshold: 2}}
    alerting: {no_data_after: 10m, no_traffic_after: 20m}
"""
IDLE, WATCHED = parse_specs(SPEC, "nd.yaml")


def _alerts(slo) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {r["alert"]: r for r in alert_group(slo, AlertsConfig())["rules"]}


def test_absent_alert_waits_for_its_for_and_no_traffic_is_opt_in() -> None:
    idle, watched = _alerts(IDLE), _alerts(WATCHED)
    assert "SLONoTraffic" not in idle
    assert idle["SLOMetricAbsent"]["for"] == "15m" and watched["SLOMetricAbsent"]["for"] == "10m"
    absent = idle["SLOMetricAbsent"]["expr"]
    assert absent.startswith("sum(absent(") and "increase" not in absent
    # a latency SLI is absent when its threshold bucket is: a wrong `le` is no data
    assert 'le=~"2|2[.]0"' in watched["SLOMetricAbsent"]["expr"]
    assert watched["SLONoTraffic"]["expr"] == (
        "sum(increase(gen_ai_server_time_to_first_token_seconds_count[20m])) == 0"
    )
    assert watched["SLONoTraffic"]["labels"]["severity"] == "ticket"


def test_the_evaluator_reports_no_traffic_only_when_opted_in() -> None:
    tr = Traffic(60)
    for s in (IDLE, WATCHED):
        add_sli_traffic(tr, s, np.where(np.arange(60) < 30, 100, 0), 0.001)
    for s, fires_at in ((IDLE, None), (WATCHED, 50)):
        series = sli_series(s, tr)
        states = [evaluate(s, series, now=t).no_traffic for t in range(31, 60)]
        assert states == [fires_at is not None and t >= fires_at for t in range(31, 60)], s.id
        assert evaluate(s, series, now=59).no_data  # the status still says there is nothing to judge


def test_idle_and_vanished_series_in_promtool(promtool: str, tmp_path: Path) -> None:
    """The generated scenarios: traffic stops (an idle SLO fires nothing, the opted-in one
    SLONoTraffic after 20m), and series vanish (SLOMetricAbsent after lookback and `for:`)."""
    result = build([IDLE, WATCHED], tmp_path)
    assert result.warnings == []
    check_rules(promtool, result.rules)
    texts = {p.name: p.read_text() for p in result.tests}
    assert "traffic stops: series stay, fires nothing" in texts["nd-idle.yaml"]
    assert "traffic stops: series stay, fires SLONoTraffic after 20m" in texts["nd-watched.yaml"]
    assert "SLOMetricAbsent fires at 46m" in texts["nd-watched.yaml"]  # 30 + 5 lookback + 1 + 10
    test_rules(promtool, [p for p in result.tests if p.name != "operational.yaml"])


def test_a_flat_counter_is_not_absent_in_promtool(promtool: str, tmp_path: Path) -> None:
    """The bug: 15 idle minutes opened SLOMetricAbsent. Now only a missing series does."""
    tr = Traffic(80)
    add_sli_traffic(tr, IDLE, np.where(np.arange(80) < 10, 100, 0), 0.0)
    rules = render_rules([IDLE], operational=False).to_yaml()
    test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": tr.input_series(),
                "alert_rule_test": [{"eval_time": "70m", "alertname": "SLOMetricAbsent", "exp_alerts": []}],
            }
        ]
    }
    # ... and the same rule fires once the series is missing: from 10 + 5 + 1 on, for: 15m
    gone = Traffic(80, scrape_until=10)
    add_sli_traffic(gone, IDLE, np.full(80, 100), 0.0)
    test["tests"].append(
        {
            "interval": "1m",
            "input_series": gone.input_series(),
            "alert_rule_test": [
                {
                    "eval_time": "31m",
                    "alertname": "SLOMetricAbsent",
                    "exp_alerts": [
                        {
                            "exp_labels": _alerts(IDLE)["SLOMetricAbsent"]["labels"],
                            "exp_annotations": _alerts(IDLE)["SLOMetricAbsent"]["annotations"],
                        }
                    ],
                }
            ],
        }
    )
    test_rules(promtool, [write_test(tmp_path, "flat", rules, test)])


def test_no_traffic_is_read_from_openslo_and_refused_for_raw_slis() -> None:
    import pytest

    from slo.spec import SpecError

    (o,) = parse_specs(
        """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: a, annotations: {inferwatch.io/no-traffic-after: 2h, inferwatch.io/no-data-after: 5m}}
spec:
  service: nd
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  indicator: {spec: {ratioMetric: {counter: true,
    bad: {metricSource: {type: Prometheus, spec: {query: 'inferwatch_requests_total{status_class="5xx"}'}}},
    total: {metricSource: {type: Prometheus, spec: {query: 'inferwatch_requests_total{status_class!="4xx"}'}}}}}}
  objectives: [{target: 0.99}]
""",
        "o.yaml",
    )
    assert (o.alerting.no_traffic_after_minutes, o.alerting.no_data_after_minutes) == (120, 5)
    with pytest.raises(SpecError, match="raw SLI counts no events"):
        parse_specs(
            "slos:\n  - name: r\n    objective: 99\n    alerting: {no_traffic_after: 1h}\n"
            "    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n"
        )
