"""Render dashboard specs as Grafana dashboard JSON with grafanalib.

The JSON declares `SCHEMA_VERSION` (Grafana 10.4's); panels use the structures of that schema:
`gridPos`, `fieldConfig.defaults` (unit, min, max, thresholds, noValue), datasource references
`{type, uid}` through the `$datasource` variable, and the current heatmap options.
"""

from __future__ import annotations

import json
import string
from typing import Any

import grafanalib.core as G
from grafanalib._gen import DashboardEncoder

from dashboards.model import Dashboard, Panel, Query, Step

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


class PromTarget(G.Target):
    """A Prometheus query of the current data source model (`range`, `exemplar`)."""

    def __init__(self, query: Query, ref_id: str, exemplar: bool, heatmap: bool) -> None:
        super().__init__(
            expr=query.expr,
            legendFormat=query.legend,
            refId=ref_id,
            instant=query.instant,
            format="heatmap" if heatmap else ("table" if query.instant else "time_series"),
            datasource=DATASOURCE,
            intervalFactor=1,
        )
        self.exemplar = exemplar and not query.instant

    def to_json_data(self) -> dict[str, Any]:
        data = super().to_json_data()
        for legacy in ("target", "metric", "step", "query"):
            data.pop(legacy, None)
        return {**data, "range": not self.instant, "exemplar": self.exemplar, "editorMode": "code"}


def _steps(steps: tuple[Step, ...]) -> dict[str, Any]:
    base = steps or (Step("green"),)
    return {"mode": "absolute", "steps": [{"color": s.color, "value": s.value} for s in base]}


def _field_defaults(p: Panel) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": p.unit, "thresholds": _steps(p.steps), "noValue": p.no_value}
    if p.min is not None:
        out["min"] = p.min
    if p.max is not None:
        out["max"] = p.max
    return out


def _panel(p: Panel, grid: G.GridPos) -> G.Panel:
    targets = [
        PromTarget(q, string.ascii_uppercase[i], p.exemplars, p.kind == "heatmap") for i, q in enumerate(p.queries)
    ]
    common: dict[str, Any] = {
        "title": p.title,
        "description": p.description,
        "dataSource": DATASOURCE,
        "targets": targets,
        "gridPos": grid,
        "repeat": G.Repeat(direction="h", variable=p.repeat, maxPerRow=2) if p.repeat else G.Repeat(),
    }
    extra: dict[str, Any] = {"fieldConfig": {"defaults": _field_defaults(p)}}
    if p.kind == "timeseries":
        return G.TimeSeries(
            **common,
            unit=p.unit,
            legendDisplayMode="list",
            tooltipMode="multi",
            thresholdsStyleMode="line" if p.threshold_lines else "off",
            extraJson=extra,
        )
    if p.kind == "stat":
        return G.Stat(
            **common,
            format=p.unit,
            reduceCalc="lastNotNull",
            graphMode="none",
            colorMode="background" if p.steps else "value",
            noValue=p.no_value,
            extraJson={**extra, "fieldConfig": {"defaults": {**_field_defaults(p), "color": {"mode": "thresholds"}}}},
        )
    if p.kind == "bargauge":
        extra["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds" if p.steps else "palette-classic"}
        extra["options"] = {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        }
        return G.BarGauge(**common, extraJson=extra)
    if p.kind == "table":
        extra["options"] = {"showHeader": True, "cellHeight": "sm"}
        extra["transformations"] = [{"id": "merge", "options": {}}]
        return G.Table(**common, unit=p.unit, extraJson=extra)
    if p.kind == "heatmap":
        extra["options"] = {
            "calculate": False,
            "yAxis": {"unit": p.unit, "axisPlacement": "left"},
            "rowsFrame": {"layout": "le"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential", "exponent": 0.5},
            "tooltip": {"show": True, "yHistogram": True},
            "legend": {"show": True},
        }
        return G.Heatmap(**common, dataFormat="tsbuckets", hideZeroBuckets=True, extraJson=extra)
    raise ValueError(f"unknown panel kind {p.kind!r}")


def _layout(d: Dashboard) -> list[G.Panel]:
    """Rows as row panels, each followed by its panels flowing left to right over 24 columns."""
    out: list[G.Panel] = []
    y = 0
    for row in d.rows:
        out.append(G.RowPanel(title=row.title, gridPos=G.GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        x, line_h = 0, 0
        for p in row.panels:
            if x + p.width > 24:
                x, y, line_h = 0, y + line_h, 0
            out.append(_panel(p, G.GridPos(h=p.height, w=p.width, x=x, y=y)))
            x += p.width
            line_h = max(line_h, p.height)
        y += line_h
    return out


def _templating(d: Dashboard, default_datasource: str) -> G.Templating:
    items = [
        G.Template(
            name="datasource", label="Data source", query="prometheus", type="datasource", default=default_datasource
        )
    ]
    for v in d.variables:
        items.append(
            G.Template(
                name=v.name,
                label=v.label,
                query=v.query,
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".*",
                default="$__all",
                refresh=2,
            )
        )
    return G.Templating(list=items)


def to_grafanalib(d: Dashboard, default_datasource: str) -> G.Dashboard:
    return G.Dashboard(
        uid=d.uid,
        title=d.title,
        description=d.description,
        tags=list(d.tags),
        panels=_layout(d),
        templating=_templating(d, default_datasource),
        time=G.Time(d.time_from, "now"),
        refresh=d.refresh,
        schemaVersion=SCHEMA_VERSION,
        graphTooltip=1,
        timezone="browser",
        links=[
            G.DashboardLink(
                title="inferwatch",
                tags=["inferwatch"],
                asDropdown=True,
                includeVars=True,
                keepTime=True,
                type="dashboards",
            )
        ],
    ).auto_panel_ids()


def render(d: Dashboard, default_datasource: str) -> dict[str, Any]:
    """The dashboard as Grafana JSON (a plain dict, ready for json.dump)."""
    data = json.loads(json.dumps(to_grafanalib(d, default_datasource).to_json_data(), cls=DashboardEncoder))
    data.pop("rows", None)  # the pre-5.0 layout; this schema places panels by gridPos
    for t in data["templating"]["list"]:
        if t["includeAll"]:
            t["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return data
