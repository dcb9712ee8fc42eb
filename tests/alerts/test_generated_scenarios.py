"""`alerts build` writes promtool scenarios for SLOs beyond the defaults, and they pass: own kinds
that select, exclude, group and count 4xx error types (issue 21 point 3 for our own kinds)."""

from __future__ import annotations

from pathlib import Path

from alerts.build import build
from slo.spec import parse_specs
from tests.alerts._promtool import check_rules, test_rules

OWN = parse_specs(
    """\
service: own
defaults: {window: 28d}
slos:
  - name: chat-429
    objective: 99.9
    sli: {availability: {bad_error_types: [rate_limited, budget_exceeded]}}
    selector: {tenant: acme, operation: chat}
    alerting: {no_traffic_after: 30m}
  - name: by-tenant
    objective: 99.5
    sli: {availability: {}}
    selector: {exclude: {tenant: [demo, internal]}, group_by: [tenant, operation]}
  - name: ttft-by-version
    objective: 95
    window: 7d
    sli: {latency: {metric: ttft, threshold: 0.5}}
    selector: {group_by: [model_version]}
    alerting: {no_traffic_after: 20m}
""",
    "own.yaml",
)


def test_generated_tests_of_own_kinds_pass(promtool: str, tmp_path: Path) -> None:
    result = build(OWN, tmp_path)
    assert sorted(p.name for p in result.tests) == sorted([f"{s.id}.yaml" for s in OWN] + ["operational.yaml"])
    assert not any("left out" in w for w in result.warnings), result.warnings
    check_rules(promtool, result.rules)
    test_rules(promtool, result.tests)
    grouped = (tmp_path / "tests" / "own-by-tenant.yaml").read_text()
    assert "tenant: demo-2" in grouped and "tenant: demo\n" not in grouped  # the synthetic tenant is not excluded
    assert 'error_type="budget_exceeded"' in (tmp_path / "tests" / "own-chat-429.yaml").read_text()
