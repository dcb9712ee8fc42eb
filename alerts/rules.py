"""Render Prometheus rule groups from SLO models (Sloth's names, Pyrra's latency SLIs).

Per SLO, three groups as Sloth writes them: `sloth-slo-sli-recordings-<id>` (error ratio over
5m ... 3d and the period), `sloth-slo-meta-recordings-<id>` (objective, budget, burn rates,
budget remaining, info) and `sloth-slo-alerts-<id>` (multiwindow multi-burn-rate page and
ticket, and SLOMetricAbsent). One more group holds the operational alerts.

Differences from Sloth, on purpose: the period SLI is computed from counts over the whole
period (not an average of 5m ratios, which under-weights busy minutes and keeps NaN for 30 days),
every ratio is guarded against zero traffic, and the alert drops `sloth_window` so an alert keeps
one identity whichever window pair fires. A calendar-month SLO is rendered as rolling 30d.
"""
from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from alerts import ops
from alerts.config import AlertsConfig
from alerts.promql import error_ratio_expr, no_data_expr, prom_duration, quote
from slo.burn import BurnAlertWindow, Severity, rows_for
from slo.model import SLO

PAGE_ALERT = "SLOErrorBudgetBurnPage"
TICKET_ALERT = "SLOErrorBudgetBurnTicket"
ABSENT_ALERT = "SLOMetricAbsent"
BURN_ALERTS: dict[Severity, str] = {"page": PAGE_ALERT, "ticket": TICKET_ALERT}
SLI_METRIC = "slo:sli_error:ratio_rate{}"


def _version() -> str:
    try:
        return importlib.metadata.version("inferwatch")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


INFERWATCH_VERSION = _version()


def sli_metric(window: str) -> str:
    return SLI_METRIC.format(window)


def period_window(slo: SLO) -> str:
    """Prometheus duration of the SLO period (28d -> "4w"; calendar month -> "30d")."""
    return prom_duration(slo.window.minutes)


def id_labels(slo: SLO) -> dict[str, str]:
    return {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}


def slo_labels(slo: SLO) -> dict[str, str]:
    """Labels every rule of the SLO carries: Sloth ids, pinned selector values, extra labels."""
    return {**id_labels(slo), **slo.selector.single_values(), **slo.labels_dict}


def id_filter(slo: SLO) -> str:
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in id_labels(slo).items()) + "}"


def _num(x: float) -> str:
    """A float as the shortest text that parses back to the same float (6.0 -> "6")."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


@dataclass(frozen=True)
class RuleGroups:
    """The rendered rule file as data; `to_yaml()` writes it."""

    groups: list[dict[str, Any]]

    def to_yaml(self) -> str:
        return dump_yaml({"groups": self.groups})

    def names(self) -> list[str]:
        return [g["name"] for g in self.groups]


def sli_group(slo: SLO) -> dict[str, Any]:
    windows = [*slo.sli_windows(), period_window(slo)]
    rules = [
        {"record": sli_metric(w), "expr": error_ratio_expr(slo, w),
         "labels": {**slo_labels(slo), "sloth_window": w}}
        for w in windows
    ]
    return {"name": f"sloth-slo-sli-recordings-{slo.id}", "rules": rules}


def meta_group(slo: SLO) -> dict[str, Any]:
    labels = slo_labels(slo)
    f = id_filter(slo)
    on = "on(sloth_id, sloth_slo, sloth_service) group_left"

    def burn(window: str) -> str:
        return f"{sli_metric(window)}{f}\n/ {on}\nslo:error_budget:ratio{f}"

    info = {**labels, "sloth_version": f"inferwatch-{INFERWATCH_VERSION}", "sloth_mode": "cli-gen-prom",
            "sloth_spec": slo.source.format if slo.source else "inferwatch/v1",
            "sloth_objective": _num(slo.objective_percent)}
    return {"name": f"sloth-slo-meta-recordings-{slo.id}", "rules": [
        {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({_num(slo.error_budget)})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({slo.window.days})", "labels": labels},
        {"record": "slo:current_burn_rate:ratio", "expr": burn("5m"), "labels": labels},
        {"record": "slo:period_burn_rate:ratio", "expr": burn(period_window(slo)), "labels": labels},
        {"record": "slo:period_error_budget_remaining:ratio",
         "expr": f"1 - slo:period_burn_rate:ratio{f}", "labels": labels},
        {"record": "sloth_slo_info", "expr": "vector(1)", "labels": info},
    ]}


def burn_alert_expr(slo: SLO, rows: Iterable[BurnAlertWindow]) -> str:
    """Sloth's multiwindow multi-burn-rate expression, without the window label."""
    f = id_filter(slo)
    budget = _num(slo.error_budget)
    pairs = []
    for r in rows:
        thr = f"({_num(r.factor)} * {budget})"
        pairs.append(
            f"  (\n    ({sli_metric(r.short_window)}{f} > {thr})\n    and ignoring (sloth_window)\n"
            f"    ({sli_metric(r.long_window)}{f} > {thr})\n  )")
    return "max without (sloth_window) (\n" + "\n  or ignoring (sloth_window)\n".join(pairs) + "\n)"


def _describe_rows(rows: Iterable[BurnAlertWindow], budget: float) -> str:
    return "; ".join(
        f"{r.factor:g}x over {r.long_window} and {r.short_window} (error ratio > {r.threshold(budget):.4g})"
        for r in rows)


def burn_alert(slo: SLO, severity: Severity, config: AlertsConfig) -> dict[str, Any]:
    rows = rows_for(slo.alert_table(), severity)
    name = BURN_ALERTS[severity]
    period = slo.window.describe()
    what = ("pages: the budget is burning fast enough to be gone within days"
            if severity == "page" else "opens a ticket: the budget is burning faster than it can last")
    target = (f"budget {slo.sli.budget_usd_per_1k_requests:g} USD per 1k requests"  # type: ignore[union-attr]
              if not slo.bounded else f"objective {_num(slo.objective_percent)}% over {period}")
    return {
        "alert": name,
        "expr": burn_alert_expr(slo, rows),
        # The SLO labels are inherited from the expression anyway; setting them keeps the rules of
        # different SLOs distinct for `promtool check rules`.
        "labels": {**slo_labels(slo), "severity": severity, "sloth_severity": severity},
        "annotations": {
            "summary": f"{slo.id}: error budget burn rate too high ({severity})",
            "title": f"({severity}) {slo.service} {slo.name} SLO error budget burn rate is too fast.",
            "description": (f"SLO {slo.id} ({slo.sli.describe()}, {target}) {what}. "
                            f"Fires on {_describe_rows(rows, slo.error_budget)}."),
            "slo": slo.id,
            "runbook_url": config.runbook_url(name, slo.id),
        },
    }


def absent_alert(slo: SLO, config: AlertsConfig) -> dict[str, Any]:
    minutes = slo.alerting.no_data_after_minutes
    return {
        "alert": ABSENT_ALERT,
        "expr": no_data_expr(slo),
        "labels": {**slo_labels(slo), "severity": "ticket"},
        "annotations": {
            "summary": f"{slo.id}: no SLI data for {prom_duration(minutes)}",
            "description": (f"SLO {slo.id} has seen no traffic (or its series, such as a latency "
                            f"bucket, is missing) for {prom_duration(minutes)}; its SLI and burn-rate "
                            "alerts cannot fire."),
            "slo": slo.id,
            "runbook_url": config.runbook_url(ABSENT_ALERT, slo.id),
        },
    }


def alert_group(slo: SLO, config: AlertsConfig) -> dict[str, Any]:
    rules = [burn_alert(slo, sev, config) for sev in ("page", "ticket")
             if getattr(slo.alerting, sev)]
    rules.append(absent_alert(slo, config))
    return {"name": f"sloth-slo-alerts-{slo.id}", "rules": rules}


def render_rules(slos: Iterable[SLO], config: AlertsConfig | None = None, *,
                 operational: bool = True) -> RuleGroups:
    """All rule groups for `slos`, plus the operational group unless disabled."""
    cfg = config or AlertsConfig()
    groups: list[dict[str, Any]] = []
    for slo in slos:
        groups += [sli_group(slo), meta_group(slo), alert_group(slo, cfg)]
    if operational:
        groups.append(ops.operational_group(cfg))
    return RuleGroups(groups)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any) -> str:
    """YAML with multi-line strings as literal blocks and keys in insertion order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
