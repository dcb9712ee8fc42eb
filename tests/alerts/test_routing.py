"""Issue 21 point 5: alert names, labels per severity, extra annotations and severity values
set per SLO (Sloth's alerting block), our defaults unchanged, and Alertmanager routes that
follow them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alerts.alertmanager import alertmanager_yaml, render_alertmanager
from alerts.build import build
from alerts.config import AlertsConfig
from alerts.rules import alert_group
from alerts.runbooks import render_runbooks
from slo.notify import alert_labels as notify_labels
from slo.spec import parse_specs
from tests.alerts._promtool import check_rules, test_rules

SPEC = """\
service: shop
slos:
  - name: checkout
    objective: 99.9
    sli: {availability: {}}
    selector: {tenant: acme}
    alerting:
      name: CheckoutHighErrorRate
      labels: {team: payments}
      annotations: {runbook: "https://wiki.example/checkout"}
      page_alert: {labels: {severity: critical, pager: payments-oncall}}
      ticket_alert: {labels: {severity: warning}, annotations: {channel: "#payments"}}
  - name: plain
    objective: 99
    sli: {availability: {}}
    selector: {tenant: beta}
"""
ROUTED, PLAIN = parse_specs(SPEC, "shop.yaml")


def _rules(slo) -> dict[tuple[str, str], dict]:  # type: ignore[no-untyped-def]
    return {(r["alert"], r["labels"]["severity"]): r for r in alert_group(slo, AlertsConfig())["rules"]}


def test_names_labels_and_annotations_follow_the_spec() -> None:
    rules = _rules(ROUTED)
    assert set(rules) == {
        ("CheckoutHighErrorRate", "critical"),
        ("CheckoutHighErrorRate", "warning"),
        ("SLOMetricAbsent", "warning"),
    }
    page = rules[("CheckoutHighErrorRate", "critical")]
    assert page["labels"]["sloth_severity"] == "page" and page["labels"]["pager"] == "payments-oncall"
    assert page["labels"]["team"] == "payments" and page["labels"]["tenant"] == "acme"
    assert page["annotations"]["runbook"] == "https://wiki.example/checkout"
    assert page["annotations"]["runbook_url"] == "runbooks/CheckoutHighErrorRate.md#shop-checkout"
    ticket = rules[("CheckoutHighErrorRate", "warning")]
    assert ticket["labels"]["sloth_severity"] == "ticket" and "pager" not in ticket["labels"]
    assert ticket["annotations"]["channel"] == "#payments" and "channel" not in page["annotations"]
    # an SLO without routing keeps our names and values
    assert set(_rules(PLAIN)) == {
        ("SLOErrorBudgetBurnPage", "page"),
        ("SLOErrorBudgetBurnTicket", "ticket"),
        ("SLOMetricAbsent", "ticket"),
    }


def test_runbooks_exist_for_renamed_alerts() -> None:
    books = render_runbooks([ROUTED, PLAIN])
    assert '<a id="shop-checkout"></a>' in books["CheckoutHighErrorRate.md"]
    assert "shop-checkout" not in books["SLOErrorBudgetBurnPage.md"]
    assert '<a id="shop-plain"></a>' in books["SLOErrorBudgetBurnPage.md"]


def test_the_notifier_labels_alerts_as_the_rules_do() -> None:
    for key in ("page", "ticket"):
        (rule,) = [r for r in alert_group(ROUTED, AlertsConfig())["rules"] if r["labels"].get("sloth_severity") == key]
        ours = notify_labels(ROUTED, key)  # type: ignore[arg-type]
        assert ours.pop("alertname") == rule["alert"] and ours.pop("slo") == "checkout"
        assert ours == rule["labels"]


def test_routed_alerts_pass_their_promtool_tests(promtool: str, tmp_path: Path) -> None:
    result = build([ROUTED, PLAIN], tmp_path)
    assert result.warnings == []
    check_rules(promtool, result.rules)
    text = (tmp_path / "tests" / "shop-checkout.yaml").read_text()
    assert "alertname: CheckoutHighErrorRate" in text and "severity: critical" in text
    test_rules(promtool, [p for p in result.tests if p.name != "operational.yaml"])


def test_alertmanager_routes_every_severity_value() -> None:
    am = render_alertmanager(AlertsConfig(), [ROUTED, PLAIN])
    routes = {r["receiver"]: r["matchers"] for r in am["route"]["routes"]}
    assert routes == {"page": ['severity=~"page|critical"'], "ticket": ['severity=~"ticket|warning"']}
    (inhibit,) = render_alertmanager(AlertsConfig(), [ROUTED])["inhibit_rules"]
    assert 'severity=~"page|critical"' in inhibit["source_matchers"]
    # without routed SLOs the file is what it always was
    assert render_alertmanager(AlertsConfig(), [PLAIN]) == render_alertmanager(AlertsConfig())


def test_a_severity_used_for_pages_and_tickets_is_refused() -> None:
    (clash,) = parse_specs(SPEC.split("  - name: plain")[0].replace("severity: warning", "severity: critical"))
    with pytest.raises(ValueError, match="critical"):
        render_alertmanager(AlertsConfig(), [clash])


def test_amtool_routes_the_spec_severities(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed (Debian package prometheus-alertmanager)")
    path = tmp_path / "alertmanager.yaml"
    path.write_text(alertmanager_yaml(AlertsConfig(), [ROUTED, PLAIN]))
    proc = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for severity, receiver in (("critical", "page"), ("page", "page"), ("warning", "ticket"), ("ticket", "ticket")):
        proc = subprocess.run(
            [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={path}",
                f"severity={severity}",
                "sloth_id=shop-checkout",
            ],
            capture_output=True,
            text=True,
        )
        assert proc.stdout.strip() == receiver, (severity, proc.stdout + proc.stderr)
