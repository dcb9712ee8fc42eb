"""Settings of the generated dashboards and their Grafana provisioning."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DashboardsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasource_name: str = "inferwatch Prometheus"
    datasource_uid: str = "inferwatch-prometheus"
    prometheus_url: str = "http://127.0.0.1:9090"
    folder: str = "inferwatch"
    refresh: str = "30s"
    gpu_memory_warn_ratio: float = Field(0.95, gt=0, le=1)  # as the GPU memory alert's threshold
    # orange on budget panels: the gateway budgets' default soft_percent / 100
    budget_soft_ratio: float = Field(0.8, gt=0, le=1)
    # Where a trace id from an exemplar opens (a Tempo/Jaeger URL with ${__value.raw}); None: no link.
    trace_url: str | None = None
    exemplar_trace_label: str = "trace_id"
