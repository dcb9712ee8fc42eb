"""Operational alerts: the things that hurt before any SLO budget moves."""

from __future__ import annotations

from typing import Any

from alerts.config import AlertsConfig
from alerts.promql import quote
from slo.metrics_catalog import (
    COST_USD_TOTAL,
    GPU_MEMORY_TOTAL,
    GPU_MEMORY_USED,
    MODEL_VERSION_MISMATCH,
    REQUESTS_TOTAL,
    SAFETY_INCIDENTS_TOTAL,
    UPSTREAM_HEALTHY,
    WORKER_UP,
)

WORKER_DOWN = "InferwatchWorkerDown"
NO_HEALTHY_UPSTREAM = "InferwatchNoHealthyUpstream"
SAFETY_SPIKE = "InferwatchSafetyIncidentSpike"
GPU_MEMORY_PRESSURE = "InferwatchGPUMemoryPressure"
COST_OVER_BUDGET = "InferwatchCostPerDayOverBudget"
VERSION_MISMATCH = "InferwatchModelVersionMismatch"
LEDGER_RECORDS_DROPPED = "InferwatchLedgerRecordsDropped"
OPERATIONAL_ALERTS = (
    WORKER_DOWN,
    NO_HEALTHY_UPSTREAM,
    SAFETY_SPIKE,
    GPU_MEMORY_PRESSURE,
    COST_OVER_BUDGET,
    VERSION_MISMATCH,
    LEDGER_RECORDS_DROPPED,
)
# The ledger writer's count of records it could not keep (a failed spool write: full or
# unwritable disk while the database is down; or a record the database rejects). A gauge set
# from the writer's running total, so increase() sees each new loss and survives restarts.
LEDGER_DROPPED_RECORDS = "inferwatch_ledger_dropped_records"
GROUP = "inferwatch-operational"


def _alert(
    cfg: AlertsConfig,
    name: str,
    expr: str,
    severity: str,
    for_: str | None,
    summary: str,
    description: str,
    anchor: str = "triage",
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description, "runbook_url": cfg.runbook_url(name, anchor)}
    return rule


def operational_group(cfg: AlertsConfig) -> dict[str, Any]:
    o = cfg.operational
    by = "model_alias, model_version"
    w = o.safety_spike_window
    incidents = f'sum by ({by}) (increase({SAFETY_INCIDENTS_TOTAL.name}{{direction="output"}}[{w}]))'
    requests = f"sum by ({by}) (increase({REQUESTS_TOTAL.name}[{w}]))"
    rules = [
        _alert(
            cfg,
            WORKER_DOWN,
            f"{WORKER_UP.name} == 0",
            "ticket",
            o.worker_down_for,
            "Worker {{ $labels.upstream }} is down",
            "The gateway's health checks of {{ $labels.upstream }} (model version "
            "{{ $labels.model_version }}) have failed for " + o.worker_down_for + ".",
        ),
        _alert(
            cfg,
            NO_HEALTHY_UPSTREAM,
            f"max by (model_alias) ({UPSTREAM_HEALTHY.name}) == 0",
            "page",
            o.no_healthy_upstream_for,
            "No healthy upstream for model alias {{ $labels.model_alias }}",
            "Every upstream of {{ $labels.model_alias }} is unhealthy: requests for it fail.",
        ),
        _alert(
            cfg,
            SAFETY_SPIKE,
            f"(\n  {incidents}\n  /\n  ({requests} > 0)\n) > {o.safety_spike_ratio!r}\n"
            f"and on ({by})\n{incidents} >= {o.safety_spike_min_incidents}",
            "page",
            None,
            "Safety incident spike on {{ $labels.model_alias }} {{ $labels.model_version }}",
            f"More than {o.safety_spike_ratio:.0%} of requests had a blocked or flagged output "
            f"over {w} (at least {o.safety_spike_min_incidents} incidents).",
        ),
        _alert(
            cfg,
            GPU_MEMORY_PRESSURE,
            f"{GPU_MEMORY_USED.name}\n/\n({GPU_MEMORY_TOTAL.name} > 0)\n> {o.gpu_memory_ratio!r}",
            "ticket",
            o.gpu_memory_for,
            "GPU {{ $labels.gpu }} memory above " + f"{o.gpu_memory_ratio:.0%}",
            "GPU {{ $labels.gpu }} on {{ $labels.instance }} has used more than "
            f"{o.gpu_memory_ratio:.0%} of its memory for {o.gpu_memory_for}; expect OOMs or "
            "batch shrinkage.",
        ),
        _alert(
            cfg,
            VERSION_MISMATCH,
            f"max by (model_alias, upstream) ({MODEL_VERSION_MISMATCH.name}) > 0",
            o.version_mismatch_severity,
            o.version_mismatch_for,
            "{{ $labels.upstream }} serves another version of {{ $labels.model_alias }}",
            "The worker behind {{ $labels.upstream }} reports a model version other than the one "
            "configured for {{ $labels.model_alias }}: requests are served by an unreviewed model.",
        ),
        _alert(
            cfg,
            LEDGER_RECORDS_DROPPED,
            f"increase({LEDGER_DROPPED_RECORDS}[{o.ledger_dropped_window}]) > 0",
            "page",
            None,
            "Gateway {{ $labels.instance }} is losing ledger records",
            "The ledger writer of {{ $labels.instance }} dropped records in the last "
            f"{o.ledger_dropped_window}: its spool cannot be written (disk full?) while the database "
            "is unreachable, or the database rejects records. Requests are served but not billed.",
        ),
    ]
    if o.daily_cost_budget_usd is not None:
        rules.append(
            _alert(
                cfg,
                COST_OVER_BUDGET,
                f"sum(increase({COST_USD_TOTAL.name}[1d])) > {o.daily_cost_budget_usd!r}",
                "ticket",
                "5m",
                f"Spend over the last day is above {o.daily_cost_budget_usd:g} USD",
                f"Total spend over the last 24 h exceeds the daily budget of {o.daily_cost_budget_usd:g} USD.",
                anchor="all-tenants",
            )
        )
    for tenant, budget in sorted(o.tenant_daily_cost_budget_usd.items()):
        rule = _alert(
            cfg,
            COST_OVER_BUDGET,
            f"sum by (tenant) (increase({COST_USD_TOTAL.name}{{tenant={quote(tenant)}}}[1d])) > {budget!r}",
            "ticket",
            "5m",
            f"Tenant {tenant} spent more than {budget:g} USD over the last day",
            f"Spend of tenant {tenant} over the last 24 h exceeds its daily budget of {budget:g} USD.",
            anchor="per-tenant",
        )
        rules.append(rule)
    return {"name": GROUP, "rules": rules}
