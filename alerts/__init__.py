"""Prometheus rules, Alertmanager routing, promtool tests and runbooks from SLO models.

Public API:
    build(specs, out_dir, config=None) -> BuildResult    (alerts.build)
    check(result) -> CheckResult                          (promtool check/test rules)
    render_rules(slos, config) -> RuleGroups              (alerts.rules)
    render_alertmanager(config, slos) / alertmanager_yaml(config, slos)
    AlertsConfig                                          (webhooks, runbook base, thresholds)
    alerts.cli.app                                        (typer: `build --specs ... --out DIR --check`)
"""

from alerts.alertmanager import alertmanager_yaml, render_alertmanager
from alerts.build import BuildResult, CheckResult, build, check
from alerts.config import AlertsConfig, OperationalConfig
from alerts.rules import render_rules

__all__ = [
    "AlertsConfig",
    "BuildResult",
    "CheckResult",
    "OperationalConfig",
    "alertmanager_yaml",
    "build",
    "check",
    "render_alertmanager",
    "render_rules",
]
