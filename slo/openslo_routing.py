"""Alert routing read from OpenSLO v1: the SLO's `inferwatch.io/` annotations and its AlertPolicies.

OpenSLO has no alert names or Prometheus labels of its own; what it can say maps so:

- an `AlertPolicy` (inline in `spec.alertPolicies`, or `alertPolicyRef` to one in the file)
  shapes the page or the ticket alert: the one its annotation `inferwatch.io/alert` names, else
  the one its condition's `severity` says (page/critical: page; ticket/warning: ticket). Its
  condition's `severity` becomes the `severity` label's value, its `metadata.labels` alert
  labels, its other `metadata.annotations` alert annotations (a runbook, say), its annotation
  `inferwatch.io/alert-name` the alert's name; `alertWhenBreaching: false` turns the alert off.
- the SLO's annotations `inferwatch.io/alert-name`, `page-alert-name`, `ticket-alert-name`,
  `page-severity` and `ticket-severity` do the same without a policy.

Not expressible, so refused or left alone: a condition's own burn rate, lookback and
`alertAfter` (inferwatch renders its burn-rate table), `alertWhenNoData` and `alertWhenResolved`
(no-data alerts are `inferwatch.io/no-data-after` / `no-traffic-after`), `notificationTargets`
(route on the labels in Alertmanager), and `conditionRef` (write the condition inline).
Sloth's OpenSLO v1alpha reader disables both alerts; inferwatch keeps its defaults.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from slo import conventions as c
from slo.model import Alerting, AlertShape
from slo.specfields import FieldError, check_alert_labels, check_alert_name

PREFIX = "inferwatch.io/"
SLO_ANNOTATIONS = ("alert-name", "page-alert-name", "ticket-alert-name", "page-severity", "ticket-severity")
_SEVERITIES: dict[str, Literal["page", "ticket"]] = {
    "page": "page",
    "critical": "page",
    "ticket": "ticket",
    "warning": "ticket",
}


def _shape(alerting: Alerting, key: Literal["page", "ticket"]) -> AlertShape:
    return alerting.page_alert if key == "page" else alerting.ticket_alert


def _with(
    alerting: Alerting, key: Literal["page", "ticket"], shape: AlertShape, enabled: bool | None = None
) -> Alerting:
    on = getattr(alerting, key) if enabled is None else enabled
    if key == "page":
        return replace(alerting, page_alert=shape, page=on)
    return replace(alerting, ticket_alert=shape, ticket=on)


def _severity(shape: AlertShape, value: str) -> AlertShape:
    labels = {**dict(shape.labels), **dict(check_alert_labels({c.SEVERITY_LABEL: value}))}
    return replace(shape, labels=tuple(sorted(labels.items())))


def from_annotations(alerting: Alerting, annotations: dict[str, Any]) -> Alerting:
    """The SLO's routing annotations (prefix stripped) on top of `alerting`."""
    out = alerting
    if "alert-name" in annotations:
        out = replace(out, name=check_alert_name(annotations["alert-name"]))
    keys: tuple[Literal["page", "ticket"], ...] = ("page", "ticket")
    for key in keys:
        shape = _shape(out, key)
        if f"{key}-alert-name" in annotations:
            shape = replace(shape, name=check_alert_name(annotations[f"{key}-alert-name"]))
        if f"{key}-severity" in annotations:
            shape = _severity(shape, str(annotations[f"{key}-severity"]))
        out = _with(out, key, shape)
    return out


def _policy(entry: Any, policies: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise FieldError("an alertPolicies entry must be an AlertPolicy or {alertPolicyRef: name}")
    if "alertPolicyRef" in entry:
        ref = entry["alertPolicyRef"]
        if ref not in policies:
            raise FieldError(f"alertPolicyRef {ref!r}: no kind: AlertPolicy with that name in the file")
        return dict(policies[ref])
    return entry


def apply_policy(alerting: Alerting, entry: Any, policies: dict[str, Any]) -> Alerting:
    """`alerting` with the page or ticket alert shaped by one AlertPolicy."""
    policy = _policy(entry, policies)
    meta, spec = policy.get("metadata") or {}, policy.get("spec") or {}
    name = meta.get("name", "?")
    conditions = spec.get("conditions") or []
    if len(conditions) != 1 or not isinstance(conditions[0], dict):
        raise FieldError(f"AlertPolicy {name!r}: exactly one condition is read (it picks page or ticket)")
    cond = conditions[0]
    if "conditionRef" in cond:
        raise FieldError(f"AlertPolicy {name!r}: conditionRef is not read; write the AlertCondition inline")
    severity = str((cond.get("spec") or {}).get("severity", ""))
    annotations = {str(k): v for k, v in (meta.get("annotations") or {}).items()}
    chosen = str(annotations.pop(PREFIX + "alert", "")) or None
    alert_name = annotations.pop(PREFIX + "alert-name", None)
    key = _SEVERITIES.get((chosen or severity).lower())
    if key is None:
        raise FieldError(
            f"AlertPolicy {name!r}: cannot tell whether it shapes the page or the ticket alert from severity "
            f"{severity!r}; use page/critical or ticket/warning, or annotate {PREFIX}alert: page|ticket"
        )
    if any(k.startswith(PREFIX) for k in annotations):
        raise FieldError(
            f"AlertPolicy {name!r}: unknown annotations {sorted(k for k in annotations if k.startswith(PREFIX))}"
        )
    labels = meta.get("labels") or {}
    if any(isinstance(v, list) for v in labels.values()):
        raise FieldError(f"AlertPolicy {name!r}: a label with a list of values cannot be a Prometheus label")
    shape = _shape(alerting, key)
    merged_labels = {**dict(shape.labels), **dict(check_alert_labels(labels))}
    merged_annotations = {**dict(shape.annotations), **dict(check_alert_labels(annotations, "annotation"))}
    shape = AlertShape(
        check_alert_name(alert_name) if alert_name is not None else shape.name,
        tuple(sorted(merged_labels.items())),
        tuple(sorted(merged_annotations.items())),
    )
    if severity:
        shape = _severity(shape, severity)
    enabled = spec.get("alertWhenBreaching", True) is not False
    return _with(alerting, key, shape, enabled and getattr(alerting, key))
