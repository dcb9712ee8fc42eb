"""Draw each dashboard's panels as one PNG, from the same queries Grafana runs (matplotlib),
so a reviewer without Grafana sees what the dashboards show."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from dashboards.model import Dashboard, Panel, Step
from dashboards.query import PanelResult, PrometheusClient, Window, run_dashboard

COLUMNS = 3
COLOURS = {"green": "#56a64b", "yellow": "#f2cc0c", "orange": "#ff9830", "red": "#e02f44", "blue": "#3274d9"}


def format_value(v: float, unit: str) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if unit == "percentunit":
        return f"{v * 100:.3g}%"
    if unit == "currencyUSD":
        return f"${v:,.4g}"
    if unit == "s":
        return f"{v * 1000:.3g} ms" if abs(v) < 1 else f"{v:.3g} s"
    if unit == "bytes":
        for prefix in ("", "Ki", "Mi", "Gi", "Ti"):
            if abs(v) < 1024:
                return f"{v:.3g} {prefix}B"
            v /= 1024
    if unit == "reqps":
        return f"{v:.3g} req/s"
    if unit == "x":
        return f"{v:.3g}x"
    return f"{v:.4g}"


def step_colour(v: float, steps: tuple[Step, ...], default: str = "#3274d9") -> str:
    colour = default
    for s in steps:
        if s.value is None or (math.isfinite(v) and v >= s.value):
            colour = COLOURS.get(s.color, s.color)
    return colour


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color="#888888", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _last_values(res: PanelResult) -> list[tuple[str, float]]:
    out = []
    for r in res.results:
        for s in r.series:
            pts = s.finite()
            if pts:
                out.append((r.legend(s)[:40], pts[-1][1]))
    return out


def _timeseries(ax: Axes, res: PanelResult) -> None:
    p = res.panel
    for r in res.results:
        for s in r.series:
            pts = s.finite()
            if pts:
                times = np.array([datetime.fromtimestamp(t) for t, _ in pts], dtype="datetime64[s]")
                ax.plot(times, [v for _, v in pts], label=r.legend(s), lw=1.2)
    if p.threshold_lines:
        for step in p.steps:
            if step.value is not None:
                ax.axhline(step.value, color=COLOURS.get(step.color, step.color), ls="--", lw=1)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.yaxis.set_major_formatter(lambda v, _: format_value(v, p.unit))
    if p.min is not None:
        ax.set_ylim(bottom=p.min)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles[:8], labels[:8], fontsize=6, loc="upper left")


def _stat(ax: Axes, res: PanelResult) -> None:
    values = _last_values(res)[:6]
    ax.set_xticks([])
    ax.set_yticks([])
    for i, (name, v) in enumerate(values):
        y = 1 - (i + 0.5) / len(values)
        ax.text(
            0.5,
            y,
            f"{format_value(v, res.panel.unit)}",
            ha="center",
            va="center",
            fontsize=16 if len(values) == 1 else 11,
            weight="bold",
            color=step_colour(v, res.panel.steps),
            transform=ax.transAxes,
        )
        if len(values) > 1:
            ax.text(0.02, y, name, ha="left", va="center", fontsize=7, transform=ax.transAxes)


def _bars(ax: Axes, res: PanelResult) -> None:
    values = sorted(_last_values(res), key=lambda x: x[1])[-10:]
    ax.barh([n for n, _ in values], [v for _, v in values], color=[step_colour(v, res.panel.steps) for _, v in values])
    ax.xaxis.set_major_formatter(lambda v, _: format_value(v, res.panel.unit))
    ax.tick_params(axis="y", labelsize=7)


def _table(ax: Axes, res: PanelResult) -> None:
    rows = _last_values(res)[:8]
    _empty(ax, "\n".join(f"{n}: {format_value(v, res.panel.unit)}" for n, v in rows))


def _heatmap(ax: Axes, res: PanelResult) -> None:
    """Cumulative `le` buckets (per interval) to per-bucket counts over time."""
    series = [s for r in res.results for s in r.series if "le" in s.labels]
    bounds = sorted({float(s.labels["le"]) for s in series})
    times = sorted({t for s in series for t, _ in s.points})
    cum = {(float(s.labels["le"]), t): v for s in series for t, v in s.points}
    grid = [
        [max(0.0, cum.get((b, t), 0.0) - (cum.get((bounds[i - 1], t), 0.0) if i else 0.0)) for t in times]
        for i, b in enumerate(bounds)
    ]
    ax.imshow(grid, aspect="auto", origin="lower", cmap="Oranges", interpolation="nearest")
    ticks = list(range(0, len(bounds), max(1, len(bounds) // 6)))
    ax.set_yticks(ticks, [format_value(bounds[i], res.panel.unit) for i in ticks], fontsize=6)
    ax.set_xticks([])
    ax.set_xlabel("time →", fontsize=7)


_DRAW = {"timeseries": _timeseries, "stat": _stat, "bargauge": _bars, "table": _table, "heatmap": _heatmap}


def draw_dashboard(dashboard: Dashboard, results: list[PanelResult], path: Path, window: Window) -> Path:
    n = len(results)
    rows = math.ceil(n / COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(5.5 * COLUMNS, 2.8 * rows), squeeze=False)
    section = {p.key: row.title for row in dashboard.rows for p in row.panels}
    for ax, res in zip(axes.flat, results, strict=False):
        p: Panel = res.panel
        title = p.title.replace("($worker)", "(all workers)")
        ax.set_title(f"{section[p.key]} › {title}", fontsize=8, loc="left")
        ax.tick_params(labelsize=6)
        if res.errors:
            _empty(ax, "query error:\n" + res.errors[0][:200])
        elif not res.has_values():
            _empty(ax, p.no_value)
        else:
            _DRAW[p.kind](ax, res)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    end = datetime.fromtimestamp(window.end).strftime("%Y-%m-%d %H:%M")
    fig.suptitle(
        f"{dashboard.title} — last {int(window.range_s)} s to {end} (all aliases, versions, tenants)", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=60, bbox_inches="tight")
    plt.close(fig)
    return path


def preview(dashboards: list[Dashboard], prometheus_url: str, out_dir: str | Path, window: Window) -> list[Path]:
    """One PNG per dashboard in `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    client = PrometheusClient(prometheus_url)
    try:
        client.ready()
        return [draw_dashboard(d, run_dashboard(client, d, window), out / f"{d.uid}.png", window) for d in dashboards]
    finally:
        client.close()
