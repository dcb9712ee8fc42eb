"""Run a dashboard's panel queries against Prometheus' HTTP API, as Grafana would."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from dashboards.model import Dashboard, Panel, Query
from dashboards.promql import resolve

_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value)

    def finite(self) -> list[tuple[float, float]]:
        return [(t, v) for t, v in self.points if math.isfinite(v)]


@dataclass
class QueryResult:
    query: Query
    expr: str  # with the variables substituted
    series: list[Series] = field(default_factory=list)
    error: str | None = None

    def has_values(self) -> bool:
        return any(s.finite() for s in self.series)

    def legend(self, s: Series) -> str:
        if self.query.legend:
            text = _LEGEND.sub(lambda m: s.labels.get(m.group(1), ""), self.query.legend).strip()
            if text:
                return text
        return ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "__name__") or "(no labels)"


@dataclass
class PanelResult:
    panel: Panel
    results: list[QueryResult]

    @property
    def errors(self) -> list[str]:
        return [f"{r.expr}: {r.error}" for r in self.results if r.error]

    def has_values(self) -> bool:
        return any(r.has_values() for r in self.results)


class PrometheusClient:
    def __init__(self, url: str, timeout_s: float = 30) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def ready(self) -> None:
        """Raises httpx.HTTPError unless Prometheus answers."""
        self.http.get("/-/ready").raise_for_status()

    def _call(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(path, data=params)
        body = resp.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType', resp.status_code)}: {body.get('error', resp.text)}")
        return body["data"]

    def query(self, expr: str, at: float) -> list[Series]:
        data = self._call("/api/v1/query", {"query": expr, "time": at})
        if data["resultType"] in ("scalar", "string"):
            t, v = data["result"]
            return [Series({}, [(float(t), float(v))])]
        return [Series(r["metric"], [(float(r["value"][0]), float(r["value"][1]))]) for r in data["result"]]

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        data = self._call("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step_s})
        return [Series(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]


class PrometheusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Window:
    """The time range of an evaluation, and what Grafana's interval variables become."""

    range_s: float
    end: float = field(default_factory=time.time)
    rate_interval: str = "1m"

    @property
    def step_s(self) -> float:
        return max(1.0, round(self.range_s / 240))

    def values(self) -> dict[str, str]:
        return {
            "__rate_interval": self.rate_interval,
            "__range": f"{int(self.range_s)}s",
            "__interval": f"{int(self.step_s)}s",
        }


def run_panel(
    client: PrometheusClient, panel: Panel, window: Window, values: Mapping[str, str] | None = None
) -> PanelResult:
    table = {**window.values(), **(values or {})}
    results = []
    for q in panel.queries:
        expr = resolve(q.expr, table)
        res = QueryResult(q, expr)
        try:
            res.series = (
                client.query(expr, window.end)
                if q.instant
                else client.query_range(expr, window.end - window.range_s, window.end, window.step_s)
            )
        except (PrometheusError, httpx.HTTPError) as e:
            res.error = str(e)
        results.append(res)
    return PanelResult(panel, results)


def run_dashboard(
    client: PrometheusClient, dashboard: Dashboard, window: Window, values: Mapping[str, str] | None = None
) -> list[PanelResult]:
    return [run_panel(client, p, window, values) for p in dashboard.panels()]
