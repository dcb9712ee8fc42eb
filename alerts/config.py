"""Settings of the alerting outputs: receivers, runbook links, operational thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class OperationalConfig(BaseModel):
    """Thresholds of the non-SLO alerts."""

    model_config = ConfigDict(extra="forbid")

    worker_down_for: str = "5m"
    no_healthy_upstream_for: str = "1m"
    safety_spike_window: str = "10m"
    safety_spike_ratio: float = Field(0.05, gt=0, le=1)  # share of requests with an incident
    safety_spike_min_incidents: int = Field(5, ge=1)
    gpu_memory_ratio: float = Field(0.95, gt=0, le=1)
    gpu_memory_for: str = "10m"
    daily_cost_budget_usd: float | None = Field(100.0, gt=0)  # None: no global cost alert
    tenant_daily_cost_budget_usd: dict[str, float] = Field(default_factory=dict)
    version_mismatch_for: str = "5m"
    version_mismatch_severity: Literal["page", "ticket"] = "page"
    ledger_dropped_window: str = "5m"  # any record lost in this window pages


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page_webhook_url: str = "http://127.0.0.1:9095/alerts/page"
    ticket_webhook_url: str = "http://127.0.0.1:9095/alerts/ticket"
    # Prefix of runbook links: runbook_url = "<base>/<AlertName>.md#<anchor>".
    runbook_base_url: str = "runbooks"
    operational: OperationalConfig = Field(default_factory=OperationalConfig)

    @classmethod
    def load(cls, path: str | Path | None) -> "AlertsConfig":
        """From a YAML file with the fields above; defaults when `path` is None."""
        if path is None:
            return cls()
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.model_validate(data)

    def runbook_url(self, alert: str, anchor: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{alert}.md#{anchor}"
