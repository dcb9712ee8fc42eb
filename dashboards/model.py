"""What a dashboard shows, independent of how it is drawn.

The definitions build these specs; `dashboards.grafana` renders them as Grafana JSON and
`dashboards.preview` draws the same queries with matplotlib, so both show the same numbers.
Expressions may use the dashboard variables (`$alias`, `$version`, `$tenant`, `$worker`) and
Grafana's `$__rate_interval` / `$__range`; `dashboards.promql.resolve` substitutes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

PanelKind = Literal["timeseries", "stat", "heatmap", "table", "bargauge"]

# Grafana's named colours, used by thresholds in both renderers.
GREEN, YELLOW, ORANGE, RED = "green", "yellow", "orange", "red"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False  # one value per series (tables, stats of a total)


@dataclass(frozen=True)
class Step:
    """A threshold step: from `value` upwards the colour is `color` (None = the base step)."""

    color: str
    value: float | None = None


@dataclass(frozen=True)
class Panel:
    key: str  # stable identifier: [a-z0-9_], unique within a dashboard
    title: str
    description: str  # what the panel shows and what to do about it
    kind: PanelKind
    queries: tuple[Query, ...]
    unit: str = "short"  # a Grafana unit id (percentunit, s, currencyUSD, reqps, bytes, ...)
    steps: tuple[Step, ...] = ()
    threshold_lines: bool = False  # draw the steps as lines on a time series (burn rates)
    min: float | None = None
    max: float | None = None
    width: int = 8  # of Grafana's 24 columns
    height: int = 8
    repeat: str | None = None  # a variable to repeat the panel over (one per worker)
    no_value: str = "no data"  # what an empty result means, for the reader
    core: bool = False  # must return data once a gateway and a worker served traffic
    exemplars: bool = False  # ask the data source for exemplars (trace links) where it has them


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # a Grafana Prometheus variable query, e.g. label_values(metric, label)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    tags: tuple[str, ...] = ("inferwatch",)
    time_from: str = "now-6h"
    refresh: str = "30s"

    def panels(self) -> Iterator[Panel]:
        for row in self.rows:
            yield from row.panels
