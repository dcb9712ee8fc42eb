"""`--check`: every panel queries metrics that our code defines, in PromQL Prometheus accepts.

Defined metrics come from live registries of the real code objects (the gateway's
GatewayMetrics, the worker's WorkerMetrics, the SLO evaluator's gauges) and from the recording
rules the alerts renderer writes, as vLLM checks its dashboards against its own registry.
External metrics (the DCGM exporter's, Prometheus' own ALERTS) are an explicit allow-list.
PromQL validity is Prometheus' own verdict: every panel expression is written as a recording
rule and given to `promtool check rules`, so an error names the dashboard, panel and query.

This module imports the gateway, worker and alerts packages on purpose (only to instantiate
their registries); the dashboard definitions themselves depend on `slo` alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser
import yaml
from prometheus_client import CollectorRegistry

from dashboards.definitions import DCGM_FB_FREE, DCGM_FB_USED, DCGM_GPU_UTIL
from dashboards.model import Dashboard, Panel
from dashboards.promql import resolve
from slo.metrics_catalog import CATALOG, OPERATIONAL_CATALOG
from slo.model import SLO

# Defined outside our code: the NVIDIA DCGM exporter's metrics and Prometheus' alert series.
EXTERNAL_METRICS: frozenset[str] = frozenset(
    {
        DCGM_GPU_UTIL,
        DCGM_FB_USED,
        DCGM_FB_FREE,
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "stateset": ("",),
    "unknown": ("",),
}


@dataclass(frozen=True)
class Problem:
    dashboard: str
    panel: str
    message: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.message}"


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    promtool_output: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def registry_series(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can expose, whether or not a sample exists yet."""
    return {fam.name + suffix for fam in registry.collect() for suffix in _SUFFIXES.get(fam.type, ("",))}


def defined_metrics(slos: Sequence[SLO]) -> set[str]:
    """Series names our code defines: live registries plus recorded rule names."""
    from alerts.rules import render_rules
    from canary.gauges import families as canary_families
    from gateway.metrics import GatewayMetrics
    from inference.metrics import WorkerMetrics
    from slo.gauges import SLOGauges

    names = registry_series(GatewayMetrics().registry) | registry_series(WorkerMetrics("check").registry)
    gauges = CollectorRegistry()
    SLOGauges(gauges, slos)
    names |= registry_series(gauges)
    names |= {f.name for f in canary_families()}
    names |= {r["record"] for g in render_rules(slos).groups for r in g["rules"] if "record" in r}
    return names


def _walk(node: object) -> Iterator[object]:
    yield node
    for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if isinstance(child, promql_parser.Expr):
            yield from _walk(child)
    for child in getattr(node, "args", None) or ():
        yield from _walk(child)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (by name or `__name__="..."`); raises ValueError when
    the expression does not parse."""
    out = set()
    for node in _walk(promql_parser.parse(resolve(expr))):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                out.add(node.name)
            out |= {
                m.value for m in node.matchers.matchers if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
            }
    return out


def _queries(dashboards: Iterable[Dashboard]) -> Iterator[tuple[Dashboard, Panel, int, str]]:
    for d in dashboards:
        for p in d.panels():
            for i, q in enumerate(p.queries):
                yield d, p, i, q.expr


def check_metrics(dashboards: Iterable[Dashboard], defined: set[str]) -> CheckReport:
    """Undefined metrics are problems; metrics only the catalog declares (no code exports them
    yet) are warnings, and their panels must tolerate absence."""
    report = CheckReport()
    declared = {s for m in (*CATALOG.values(), *OPERATIONAL_CATALOG.values()) for s in m.series_names()}
    for d, p, _, expr in _queries(dashboards):
        try:
            names = metric_names(expr)
        except ValueError as e:
            report.problems.append(Problem(d.uid, p.title, f"cannot parse {expr!r}: {e}"))
            continue
        for name in sorted(names - defined - EXTERNAL_METRICS):
            if name in declared:
                report.warnings.append(
                    Problem(d.uid, p.title, f"{name} is in the metric catalog but no code exports it yet")
                )
            else:
                report.problems.append(Problem(d.uid, p.title, f"queries {name}, which no code defines"))
    return report


def _record_name(d: Dashboard, p: Panel, i: int) -> str:
    return re.sub(r"[^a-zA-Z0-9_:]", "_", f"{d.uid}:{p.key}:q{i}")


def check_promql(dashboards: Sequence[Dashboard], promtool: str | None = None, timeout_s: float = 120) -> CheckReport:
    """`promtool check rules` on every panel expression, one recording rule each."""
    report = CheckReport()
    tool = promtool or shutil.which("promtool")
    if tool is None:
        report.problems.append(Problem("-", "-", "promtool not found on PATH (install the 'prometheus' package)"))
        return report
    where: dict[str, tuple[Dashboard, Panel]] = {}
    groups: dict[str, list[dict[str, str]]] = {}
    for d, p, i, expr in _queries(dashboards):
        name = _record_name(d, p, i)
        where[name] = (d, p)
        groups.setdefault(d.uid, []).append({"record": name, "expr": resolve(expr)})
    text = yaml.safe_dump({"groups": [{"name": g, "rules": r} for g, r in groups.items()]}, sort_keys=False, width=1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panels.rules.yaml"
        path.write_text(text, encoding="utf-8")
        proc = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=timeout_s)
    report.promtool_output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        for line in report.promtool_output.splitlines():
            hit = next((n for n in where if f'"{n}"' in line), None)
            if hit is not None:
                d, p = where[hit]
                report.problems.append(Problem(d.uid, p.title, line.strip()))
        if not report.problems:
            report.problems.append(Problem("-", "-", report.promtool_output.strip()))
    return report


def check(dashboards: Sequence[Dashboard], slos: Sequence[SLO], promtool: str | None = None) -> CheckReport:
    metrics = check_metrics(dashboards, defined_metrics(slos))
    promql = check_promql(dashboards, promtool)
    return CheckReport(metrics.problems + promql.problems, metrics.warnings, promql.promtool_output)
