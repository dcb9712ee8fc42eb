from __future__ import annotations

from pathlib import Path

import pytest

from slo.model import (
    SLO,
    Alerting,
    AvailabilitySLI,
    CostSLI,
    LatencyMetric,
    LatencySLI,
    SafetySLI,
    Selector,
    TimeWindow,
)
from slo.spec import DEFAULTS_FILE, load_default_slos, load_specs, parse_specs
from slo.specfields import SpecError


def test_defaults_file_loads_the_demo_slos() -> None:
    slos = {s.name: s for s in load_default_slos()}
    assert set(slos) == {"availability", "latency-e2e", "latency-ttft", "latency-tpot", "safety-output", "cost"}
    assert slos["availability"].objective == 0.995 and slos["availability"].error_budget == 0.005
    assert slos["latency-ttft"].sli == LatencySLI(LatencyMetric.TTFT, 2.0)
    assert slos["latency-tpot"].sli == LatencySLI(LatencyMetric.TPOT, 0.25)
    assert slos["safety-output"].error_budget == 0.001  # no float noise from 1 - 0.999
    assert slos["cost"].sli == CostSLI(2.0) and slos["cost"].error_budget == 1.0
    assert slos["cost"].alerting.page is False
    assert all(s.window == TimeWindow(28) and s.service == "inferwatch" for s in slos.values())
    assert slos["latency-e2e"].source.file == str(DEFAULTS_FILE) and slos["latency-e2e"].source.line == 14


NATIVE = """\
version: inferwatch/v1
service: chat
defaults:
  window: 28d
  labels: {team: platform}
slos:
  - name: availability
    description: Valid requests answered without a 5xx.
    objective: 99.9
    sli: {availability: {}}
    selector: {model_alias: mistral, tenant: [beta, acme]}
    alerting: {no_data_after: 30m}
  - name: ttft
    description: First token fast.
    objective: 95
    window: 30d
    sli: {latency: {metric: ttft, threshold: 250ms}}
    selector: {model_alias: mistral}
  - name: ttft-threshold
    description: First token fast.
    objective: 95
    window: 30d
    sli: {latency: {metric: ttft, threshold: 0.25}}
    selector: {model_alias: mistral}
  - name: safety
    description: Clean outputs.
    objective: 99.5
    window: calendar-month
    sli: {safety_incidents: {direction: output}}
    alerting: {page: false}
"""

OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: availability
  labels: {team: platform}
  annotations: {inferwatch.io/no-data-after: 30m}
spec:
  service: chat
  description: Valid requests answered without a 5xx.
  budgetingMethod: Occurrences
  timeWindow: [{duration: 4w, isRolling: true}]
  indicator:
    metadata: {name: availability}
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec: {query: 'inferwatch_requests_total{status_class="5xx", model_alias="mistral", tenant=~"acme|beta"}'}
        total:
          metricSource:
            type: Prometheus
            spec: {query: 'inferwatch_requests_total{tenant=~"beta|acme", status_class!="4xx", model_alias="mistral"}'}
  objectives: [{target: 0.999}]
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: ttft-bucket}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {type: Prometheus, \
spec: {query: 'gen_ai_server_time_to_first_token_seconds_bucket{le="0.25", model_alias="mistral"}'}}}
    total: {metricSource: {type: Prometheus, \
spec: {query: 'gen_ai_server_time_to_first_token_seconds_count{model_alias="mistral"}'}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: ttft, labels: {team: platform}}
spec:
  service: chat
  description: First token fast.
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicatorRef: ttft-bucket
  objectives: [{targetPercent: 95}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: ttft-threshold, labels: {team: platform}}
spec:
  service: chat
  description: First token fast.
  budgetingMethod: Occurrences
  timeWindow: [{duration: 30d, isRolling: true}]
  indicator:
    spec:
      thresholdMetric: {metricSource: {type: Prometheus, \
spec: {query: 'gen_ai_server_time_to_first_token_seconds{model_alias="mistral"}'}}}
  objectives: [{op: lte, value: 0.25, target: 0.95}]
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: safety
  labels: {team: platform}
  annotations: {inferwatch.io/page: "false"}
spec:
  service: chat
  description: Clean outputs.
  budgetingMethod: Occurrences
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar: {startTime: "2024-01-01 00:00:00", timeZone: UTC}
  indicator:
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: prometheus, spec: {query: 'inferwatch_safety_incidents_total{direction="output"}'}}}
        total: {metricSource: {type: prometheus, spec: {query: inferwatch_requests_total}}}
  objectives: [{targetPercent: 99.5}]
"""


def test_native_and_openslo_give_the_same_model() -> None:
    native = parse_specs(NATIVE, "native.yaml")
    openslo = parse_specs(OPENSLO, "openslo.yaml")
    assert [s.name for s in native] == [s.name for s in openslo]
    assert native == openslo
    avail = native[0]
    assert avail == SLO(
        service="chat",
        name="availability",
        sli=AvailabilitySLI(),
        objective=0.999,
        window=TimeWindow(28),
        selector=Selector(model_alias=("mistral",), tenant=("acme", "beta")),
        alerting=Alerting(no_data_after_minutes=30),
        description="Valid requests answered without a 5xx.",
        labels=(("team", "platform"),),
    )
    assert native[1].sli == LatencySLI(LatencyMetric.TTFT, 0.25) == native[2].sli
    assert native[3].sli == SafetySLI("output") and native[3].window == TimeWindow(30, calendar=True)
    assert native[3].alerting.page is False
    # the source location differs and is kept out of equality
    assert (native[0].source.file, openslo[0].source.file) == ("native.yaml", "openslo.yaml")
    assert openslo[0].source.format == "openslo/v1"


def test_openslo_multiple_objectives_become_one_slo_each() -> None:
    text = OPENSLO.split("---\n")[3].replace(
        "objectives: [{op: lte, value: 0.25, target: 0.95}]",
        "objectives:\n    - {displayName: Fast, op: lte, value: 0.25, target: 0.95}\n"
        "    - {displayName: Slow tail, op: lte, value: 2.5, target: 0.99}",
    )
    slos = parse_specs(text, "multi.yaml")
    assert [(s.name, s.sli.threshold_s, s.objective) for s in slos] == [
        ("ttft-threshold-fast", 0.25, 0.95),
        ("ttft-threshold-slow-tail", 2.5, 0.99),
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("slos:\n  - name: a\n    objective: 100\n    sli: {availability: {}}\n", 3, "below 100 %"),
        (
            "slos:\n  - name: a\n    objective: 99\n    sli:\n"
            "      availability: {}\n      cost: {budget_usd_per_1k_requests: 1}\n",
            4,
            "exactly one of",
        ),
        ("slos:\n  - name: a\n    objective: 99\n    sli:\n      latency: {metric: ttfb, threshold: 2}\n", 5, "'ttft'"),
        ("slos:\n  - name: a\n    objective: 99\n    windw: 28d\n    sli: {availability: }\n", 4, "windw"),
        ("slos:\n  - name: a\n    objective: 99\n    window: 2d\n    sli: {availability: }\n", 4, "between 7d and 90d"),
        (
            "slos:\n  - name: a\n    objective: 99\n    sli:\n"
            "      latency:\n        metric: ttft\n        threshold: -1\n",
            7,
            "positive",
        ),
        ("slos:\n  - name: a\n    sli: {availability: }\n", 2, "objective"),
        (
            "slos:\n  - name: a\n    objective: 99\n    sli: {cost: {budget_usd_per_1k_requests: 1}}\n",
            3,
            "no objective",
        ),
        ("slos:\n  - name: Bad Name\n    objective: 99\n    sli: {availability: }\n", 2, "lowercase"),
        (
            "slos:\n  - name: a\n    objective: 99\n    labels: {sloth_id: x}\n    sli: {availability: }\n",
            4,
            "reserved",
        ),
        ("slos:\n  - name: a\n    objective: 99\n    objective: 98\n    sli: {availability: }\n", 4, "duplicate key"),
        ("slos: [\n", 2, "invalid YAML"),
        (
            "slos:\n  - name: a\n    objective: 99\n    sli: {latency: {metric: ttft, threshold: 2}}\n"
            "    selector: {operation: chat}\n",
            5,
            "a latency SLI's series carry only model_alias, model_version, tenant",
        ),
        (
            "slos:\n  - name: a\n    window: 7d\n    sli: {cost: {budget_usd_per_1k_requests: 1}}\n"
            "    selector: {group_by: [operation]}\n",
            5,
            "selector label operation",
        ),
        (
            "slos:\n  - name: a\n    objective: 99\n    sli: {availability: }\n    selector: {group_by: [zone]}\n",
            5,
            "group_by label 'zone' must be one of",
        ),
        (
            "slos:\n  - name: a\n    objective: 99\n    sli: {availability: {bad_error_types: [Rate-Limited]}}\n",
            4,
            "error type 'Rate-Limited'",
        ),
        (
            "slos:\n  - name: a\n    objective: 99\n    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n"
            "    selector: {tenant: acme}\n",
            5,
            "raw SLIs select with their queries",
        ),
        ("foo: 1\n", 1, "not an SLO spec"),
    ],
)
def test_native_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_specs(text, "specs/bad.yaml")
    assert e.value.file == "specs/bad.yaml"
    assert e.value.line == line, str(e.value)
    assert fragment in str(e.value)
    assert str(e.value).startswith(f"specs/bad.yaml:{line}: ")


def test_openslo_query_errors_point_at_the_query_line() -> None:
    bad = OPENSLO.split("---\n")[0].replace('model_alias="mistral", tenant', 'zone="eu", tenant')
    with pytest.raises(SpecError) as e:
        parse_specs(bad, "o.yaml")
    assert e.value.line == 20 and "'zone' is not supported" in str(e.value)

    mismatch = OPENSLO.split("---\n")[0].replace('tenant=~"beta|acme", ', "")
    with pytest.raises(SpecError) as e:
        parse_specs(mismatch, "o.yaml")
    assert "same traffic" in str(e.value) and e.value.line == 15  # ratioMetric

    wrong_status = OPENSLO.split("---\n")[0].replace('status_class!="4xx"', 'status_class="2xx"')
    with pytest.raises(SpecError) as e:
        parse_specs(wrong_status, "o.yaml")
    assert e.value.line == 24 and "every request but 4xx" in str(e.value)

    not_lte = OPENSLO.split("---\n")[3].replace("op: lte", "op: gte")
    with pytest.raises(SpecError) as e:
        parse_specs(not_lte, "o.yaml")
    assert e.value.line == 12 and "op: lte" in str(e.value)

    missing = OPENSLO.split("---\n")[2].replace("indicatorRef: ttft-bucket", "indicatorRef: nope")
    with pytest.raises(SpecError) as e:
        parse_specs(missing, "o.yaml")
    assert e.value.line == 9 and "'nope'" in str(e.value)

    timeslices = OPENSLO.split("---\n")[2].replace("Occurrences", "Timeslices")
    with pytest.raises(SpecError) as e:
        parse_specs(timeslices, "o.yaml")
    assert e.value.line == 7 and "budgetingMethod" in str(e.value)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("slos:\n  - name: x\n    objective: 99\n    sli: {availability: }\n")
    b.write_text(
        "slos:\n  - name: y\n    objective: 99\n    sli: {availability: }\n"
        "  - name: x\n    objective: 90\n    sli: {availability: }\n"
    )
    with pytest.raises(SpecError) as e:
        load_specs([a, b])
    assert e.value.file == str(b) and e.value.line == 5
    assert f"first defined at {a}:2" in str(e.value)
    assert len(load_specs([a])) == 1


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        load_specs([tmp_path / "nope.yaml"])
    assert "cannot read spec" in str(e.value) and e.value.file.endswith("nope.yaml")


def test_own_kinds_select_exclude_group_and_count_error_types() -> None:
    from alerts.promql import error_ratio_expr, no_traffic_expr
    from slo.model import AvailabilitySLI, Selector

    (slo,) = parse_specs(
        """\
slos:
  - name: a
    objective: 99
    sli: {availability: {bad_error_types: [rate_limited, budget_exceeded]}}
    selector: {operation: [chat, text_completion], exclude: {tenant: [internal, canary]}, group_by: [tenant]}
    alerting: {no_traffic_after: 1h}
""",
        "a.yaml",
    )
    assert slo.sli == AvailabilitySLI(("budget_exceeded", "rate_limited"))
    assert slo.selector == Selector(
        operation=("chat", "text_completion"), exclude=(("tenant", ("canary", "internal")),), group_by=("tenant",)
    )
    sel = 'operation=~"chat|text_completion", tenant!~"canary|internal"'
    counted = f'inferwatch_requests_total{{status_class="4xx", error_type=~"budget_exceeded|rate_limited", {sel}}}'
    assert error_ratio_expr(slo, "5m") == (
        "(\n"
        f'  sum by (tenant)(rate(inferwatch_requests_total{{status_class="5xx", {sel}}}[5m]) or rate({counted}[5m]))\n'
        f'  or 0 * sum by (tenant)(rate(inferwatch_requests_total{{status_class!="4xx", {sel}}}[5m]) '
        f"or rate({counted}[5m]))\n)\n/\n"
        f'(sum by (tenant)(rate(inferwatch_requests_total{{status_class!="4xx", {sel}}}[5m]) '
        f"or rate({counted}[5m])) > 0)"
    )
    assert no_traffic_expr(slo, 60) == (
        f'sum by (tenant)(increase(inferwatch_requests_total{{status_class!="4xx", {sel}}}[1h]) '
        f"or increase({counted}[1h])) == 0"
    )
    assert slo.selector.matches({"tenant": "acme", "operation": "chat"})
    assert not slo.selector.matches({"tenant": "internal", "operation": "chat"})
    assert slo.for_group({"tenant": "acme"}).selector == Selector(
        tenant=("acme",), operation=("chat", "text_completion"), exclude=(("tenant", ("canary", "internal")),)
    )
