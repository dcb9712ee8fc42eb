"""Render Prometheus rule groups from SLO models (Sloth's names, Pyrra's latency SLIs).

Per SLO, three groups as Sloth writes them: `sloth-slo-sli-recordings-<id>` (error ratio over
5m ... 3d and the period), `sloth-slo-meta-recordings-<id>` (objective, budget, burn rates,
budget remaining, info) and `sloth-slo-alerts-<id>` (multiwindow multi-burn-rate page and
ticket, SLOMetricAbsent when the SLI's series is missing, and the opt-in SLONoTraffic when it
counts no events). One more group holds the operational alerts. Every public name comes from
`slo.conventions`; an SLO's `alerting` may rename its burn-rate alerts, change the severity
values and add labels and annotations (Sloth's `page_alert` / `ticket_alert`).

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
from alerts.promql import absent_expr, error_ratio_expr, no_traffic_expr, prom_duration, quote
from slo import conventions as c
from slo.burn import BurnAlertWindow, Severity, rows_for
from slo.model import SLO, AlertKey


def _version() -> str:
    try:
        return importlib.metadata.version("inferwatch")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


INFERWATCH_VERSION = _version()


sli_metric = c.sli_error_ratio


def period_window(slo: SLO) -> str:
    """Prometheus duration of the SLO period (28d -> "4w"; calendar month -> "30d")."""
    return prom_duration(slo.window.minutes)


def id_labels(slo: SLO) -> dict[str, str]:
    return c.id_labels(slo.service, slo.name)


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
        {"record": sli_metric(w), "expr": error_ratio_expr(slo, w), "labels": {**slo_labels(slo), c.LABEL_WINDOW: w}}
        for w in windows
    ]
    return {"name": c.SLI_GROUP_PREFIX + slo.id, "rules": rules}


def meta_group(slo: SLO) -> dict[str, Any]:
    labels = slo_labels(slo)
    f = id_filter(slo)
    on = f"on({c.LABEL_ID}, {c.LABEL_SLO}, {c.LABEL_SERVICE}) group_left"

    def burn(window: str) -> str:
        return f"{sli_metric(window)}{f}\n/ {on}\n{c.ERROR_BUDGET_RATIO}{f}"

    info = {
        **labels,
        c.LABEL_VERSION: f"inferwatch-{INFERWATCH_VERSION}",
        c.LABEL_MODE: "cli-gen-prom",
        c.LABEL_SPEC: slo.source.format if slo.source else "inferwatch/v1",
        c.LABEL_OBJECTIVE: _num(slo.objective_percent),
    }
    return {
        "name": c.META_GROUP_PREFIX + slo.id,
        "rules": [
            {"record": c.OBJECTIVE_RATIO, "expr": f"vector({_num(slo.objective)})", "labels": labels},
            {"record": c.ERROR_BUDGET_RATIO, "expr": f"vector({_num(slo.error_budget)})", "labels": labels},
            {"record": c.TIME_PERIOD_DAYS, "expr": f"vector({slo.window.days})", "labels": labels},
            {"record": c.CURRENT_BURN_RATE_RATIO, "expr": burn("5m"), "labels": labels},
            {"record": c.PERIOD_BURN_RATE_RATIO, "expr": burn(period_window(slo)), "labels": labels},
            {
                "record": c.PERIOD_ERROR_BUDGET_REMAINING_RATIO,
                "expr": f"1 - {c.PERIOD_BURN_RATE_RATIO}{f}",
                "labels": labels,
            },
            {"record": c.SLO_INFO, "expr": "vector(1)", "labels": info},
        ],
    }


def burn_alert_expr(slo: SLO, rows: Iterable[BurnAlertWindow]) -> str:
    """Sloth's multiwindow multi-burn-rate expression, without the window label."""
    f = id_filter(slo)
    budget = _num(slo.error_budget)
    pairs = []
    for r in rows:
        thr = f"({_num(r.factor)} * {budget})"
        pairs.append(
            f"  (\n    ({sli_metric(r.short_window)}{f} > {thr})\n    and ignoring ({c.LABEL_WINDOW})\n"
            f"    ({sli_metric(r.long_window)}{f} > {thr})\n  )"
        )
    return f"max without ({c.LABEL_WINDOW}) (\n" + f"\n  or ignoring ({c.LABEL_WINDOW})\n".join(pairs) + "\n)"


def _describe_rows(rows: Iterable[BurnAlertWindow], budget: float) -> str:
    return "; ".join(
        f"{r.factor:g}x over {r.long_window} and {r.short_window} (error ratio > {r.threshold(budget):.4g})"
        for r in rows
    )


def alert_labels(slo: SLO, key: AlertKey) -> dict[str, str]:
    """The labels of one alert of the SLO: its rule labels, the user's, the severity."""
    alert = slo.alerting.alert(key)
    labels = {**slo_labels(slo), **alert.labels, c.SEVERITY_LABEL: alert.severity}
    if key in ("page", "ticket"):
        labels[c.LABEL_SEVERITY] = key
    return labels


def _annotations(slo: SLO, key: AlertKey, config: AlertsConfig, ours: dict[str, str]) -> dict[str, str]:
    alert = slo.alerting.alert(key)
    return {**ours, "slo": slo.id, "runbook_url": config.runbook_url(alert.name, slo.id), **alert.annotations}


def burn_alert(slo: SLO, severity: Severity, config: AlertsConfig) -> dict[str, Any]:
    rows = rows_for(slo.alert_table(), severity)
    period = slo.window.describe()
    what = (
        "pages: the budget is burning fast enough to be gone within days"
        if severity == "page"
        else "opens a ticket: the budget is burning faster than it can last"
    )
    target = (
        f"budget {slo.sli.budget_usd_per_1k_requests:g} USD per 1k requests"  # type: ignore[union-attr]
        if not slo.bounded
        else f"objective {_num(slo.objective_percent)}% over {period}"
    )
    return {
        "alert": slo.alerting.alert(severity).name,
        "expr": burn_alert_expr(slo, rows),
        # The SLO labels are inherited from the expression anyway; setting them keeps the rules of
        # different SLOs distinct for `promtool check rules`.
        "labels": alert_labels(slo, severity),
        "annotations": _annotations(
            slo,
            severity,
            config,
            {
                "summary": f"{slo.id}: error budget burn rate too high ({severity})",
                "title": f"({severity}) {slo.service} {slo.name} SLO error budget burn rate is too fast.",
                "description": (
                    f"SLO {slo.id} ({slo.sli.describe()}, {target}) {what}. "
                    f"Fires on {_describe_rows(rows, slo.error_budget)}."
                ),
            },
        ),
    }


def absent_alert(slo: SLO, config: AlertsConfig) -> dict[str, Any]:
    """No data: the series the SLI reads (a latency SLI's threshold bucket included) is missing.
    `for:` is the no-data time; Prometheus sees a series that stops being scraped for 5 more
    minutes (its lookback) unless it was marked stale."""
    n = prom_duration(slo.alerting.no_data_after_minutes)
    return {
        "alert": slo.alerting.alert("absent").name,
        "expr": absent_expr(slo),
        "for": n,
        "labels": alert_labels(slo, "absent"),
        "annotations": _annotations(
            slo,
            "absent",
            config,
            {
                "summary": f"{slo.id}: SLI series missing for {n}",
                "description": (
                    f"SLO {slo.id} has had no SLI series (its metric, or a latency bucket, is not "
                    f"exported or not scraped) for {n}; its SLI and burn-rate alerts cannot fire."
                ),
            },
        ),
    }


def no_traffic_alert(slo: SLO, config: AlertsConfig) -> dict[str, Any]:
    """Opt-in: the SLI's series exist but counted no event for the no-traffic time."""
    minutes = slo.alerting.no_traffic_after_minutes
    assert minutes is not None
    n = prom_duration(minutes)
    return {
        "alert": slo.alerting.alert("no_traffic").name,
        "expr": no_traffic_expr(slo, minutes),
        "labels": alert_labels(slo, "no_traffic"),
        "annotations": _annotations(
            slo,
            "no_traffic",
            config,
            {
                "summary": f"{slo.id}: no traffic for {n}",
                "description": f"SLO {slo.id} has counted no events for {n}; its burn-rate alerts cannot fire.",
            },
        ),
    }


def alert_group(slo: SLO, config: AlertsConfig) -> dict[str, Any]:
    rules = [burn_alert(slo, sev, config) for sev in ("page", "ticket") if getattr(slo.alerting, sev)]
    rules.append(absent_alert(slo, config))
    if slo.alerting.no_traffic_after_minutes is not None:
        rules.append(no_traffic_alert(slo, config))
    return {"name": c.ALERT_GROUP_PREFIX + slo.id, "rules": rules}


def render_rules(slos: Iterable[SLO], config: AlertsConfig | None = None, *, operational: bool = True) -> RuleGroups:
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
