"""OpenSLO v1 alert routing: AlertPolicies and the SLO's inferwatch.io annotations shape the
burn-rate alerts as Sloth's page_alert / ticket_alert do (issue 21 point 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerts.build import build
from slo.model import AlertShape
from slo.spec import SpecError, parse_specs
from tests.alerts._promtool import check_rules, require_promtool, test_rules

SPEC = """\
- apiVersion: openslo/v1
  kind: AlertPolicy
  metadata:
    name: fast-burn
    labels: {team: payments}
    annotations: {runbook: "https://wiki.example/checkout", inferwatch.io/alert-name: CheckoutBudgetBurn}
  spec:
    alertWhenBreaching: true
    conditions:
      - kind: AlertCondition
        metadata: {name: fast}
        spec: {severity: critical, condition: {kind: burnrate, op: gt, threshold: 14, lookbackWindow: 1h}}
- apiVersion: openslo/v1
  kind: SLO
  metadata:
    name: availability
    annotations: {inferwatch.io/ticket-severity: warning, inferwatch.io/ticket-alert-name: CheckoutBudgetSlow}
  spec:
    service: checkout
    budgetingMethod: Occurrences
    timeWindow: [{duration: 28d, isRolling: true}]
    indicator:
      spec:
        ratioMetric:
          counter: true
          bad: {metricSource: {type: Prometheus, spec: {query: 'inferwatch_requests_total{status_class="5xx"}'}}}
          total: {metricSource: {type: Prometheus, spec: {query: 'inferwatch_requests_total{status_class!="4xx"}'}}}
    objectives: [{target: 0.995}]
    alertPolicies:
      - alertPolicyRef: fast-burn
"""


def test_policies_and_annotations_shape_the_alerts() -> None:
    (slo,) = parse_specs(SPEC, "checkout.yaml")
    a = slo.alerting
    assert a.page_alert == AlertShape(
        "CheckoutBudgetBurn",
        (("severity", "critical"), ("team", "payments")),
        (("runbook", "https://wiki.example/checkout"),),
    )
    assert a.ticket_alert == AlertShape("CheckoutBudgetSlow", (("severity", "warning"),))
    assert a.page and a.ticket
    off = parse_specs(SPEC.replace("alertWhenBreaching: true", "alertWhenBreaching: false"), "c.yaml")[0]
    assert not off.alerting.page and off.alerting.ticket


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("severity: critical", "severity: sev2"), "cannot tell whether it shapes the page or the ticket alert"),
        (("alertPolicyRef: fast-burn", "alertPolicyRef: nope"), "alertPolicyRef 'nope'"),
        (("runbook:", "docs/runbook:"), "annotation name 'docs/runbook' is not a valid Prometheus label name"),
        (("- kind: AlertCondition", "- conditionRef: fast\n      - kind: AlertCondition"), "exactly one condition"),
    ],
)
def test_what_openslo_cannot_express_is_refused_clearly(change: tuple[str, str], says: str) -> None:
    text = SPEC.replace(*change)
    with pytest.raises(SpecError, match=says) as e:
        parse_specs(text, "checkout.yaml")
    entry = next(i for i, line in enumerate(text.splitlines(), 1) if "- alertPolicyRef" in line)
    assert e.value.line == entry  # the alertPolicies entry


def test_the_routing_reaches_rules_tests_and_alertmanager(tmp_path: Path) -> None:
    promtool = require_promtool()
    result = build(parse_specs(SPEC, "checkout.yaml"), tmp_path)
    rules = yaml.safe_load(result.rules.read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["CheckoutBudgetBurn"]["labels"]["severity"] == "critical"
    assert alerts["CheckoutBudgetBurn"]["annotations"]["runbook"] == "https://wiki.example/checkout"
    assert alerts["CheckoutBudgetSlow"]["labels"]["severity"] == "warning"
    assert alerts["SLOMetricAbsent"]["labels"]["severity"] == "warning"  # a ticket
    am = result.alertmanager.read_text()
    assert "critical" in am and "warning" in am
    check_rules(promtool, result.rules)
    test_rules(promtool, result.tests)
