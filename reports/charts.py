"""The report's charts as PNG bytes (matplotlib's object API: no pyplot, no global state)."""

from __future__ import annotations

import io

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reports.model import WeeklyReport

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
ACTION_COLOURS = {"block": "#e15759", "redact": "#f28e2b", "flag": "#edc948"}
MAX_BARS = 10


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _figure(title: str, height: float = 3.2) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(8, height), dpi=100)
    ax = fig.subplots()
    ax.set_title(title, loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _empty(ax: Axes, text: str = "No data this week") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def daily_spend(r: WeeklyReport) -> bytes:
    """Spend per day stacked by tenant; anomalous days (all tenants or one) marked."""
    fig, ax = _figure("Daily spend (USD) by tenant")
    days = [d.day for d in r.cost.daily]
    tenants = [x.name for x in r.by_tenant if x.cost_usd > 0]
    if not any(d.cost_usd for d in r.cost.daily):
        _empty(ax)
        return _png(fig)
    labels = [d.strftime("%a %d") for d in days]
    bottom = [0.0] * len(days)
    for i, t in enumerate(tenants):
        values = [d.by_tenant.get(t, 0.0) for d in r.cost.daily]
        ax.bar(labels, values, bottom=bottom, label=t, color=PALETTE[i % len(PALETTE)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    flagged = {a.day for a in r.cost.anomalies if a.scope == "day"}
    for x, (d, top) in enumerate(zip(days, bottom, strict=True)):
        if d in flagged:
            ax.annotate(
                "anomaly",
                (x, top),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                color="#c00",
                fontsize=8,
                weight="bold",
            )
    ax.set_ylim(0, max(bottom) * 1.15)
    ax.legend(fontsize=8, frameon=False, ncols=min(4, len(tenants)))
    return _png(fig)


def model_cost(r: WeeklyReport) -> bytes:
    """This week's and last week's spend per alias and version."""
    lines = [x for x in r.by_model if x.cost_usd or x.prev_cost_usd][:MAX_BARS]
    fig, ax = _figure("Spend by model version (USD): this week vs last", 0.8 + 0.45 * max(2, len(lines)))
    if not lines:
        _empty(ax)
        return _png(fig)
    y = list(range(len(lines)))[::-1]
    ax.barh([v + 0.2 for v in y], [x.cost_usd for x in lines], height=0.4, color=PALETTE[0], label=r.week)
    ax.barh([v - 0.2 for v in y], [x.prev_cost_usd for x in lines], height=0.4, color="#bab0ac", label=r.previous_week)
    ax.set_yticks(y, [x.name for x in lines], fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def safety_hits(r: WeeklyReport) -> bytes:
    """Hits per category, stacked by action."""
    cats = r.safety.by_category[:MAX_BARS]
    fig, ax = _figure("Safety hits by category and action")
    if not cats:
        _empty(ax, "No safety hits this week")
        return _png(fig)
    names = [c.category for c in cats]
    left = [0] * len(cats)
    for action, colour in ACTION_COLOURS.items():
        values = [getattr(c, action) for c in cats]
        ax.barh(names, values, left=left, color=colour, label=action)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return _png(fig)


def slo_budget(r: WeeklyReport) -> bytes:
    """Share of each SLO's period error budget the week consumed."""
    items = [(s, s.budget_consumed) for s in r.reliability.slos if s.budget_consumed is not None][:MAX_BARS]
    fig, ax = _figure(
        "Error budget consumed this week (share of the SLO period's budget)", 0.8 + 0.45 * max(2, len(items))
    )
    if not items:
        _empty(ax, "No SLO data this week")
        return _png(fig)
    values = [consumed * 100 for _, consumed in items]
    colours = ["#e15759" if s.status == "missed" else "#59a14f" for s, _ in items]
    ax.barh([s.name for s, _ in items], values, color=colours)
    ax.invert_yaxis()
    ax.set_xlabel("% of the period's error budget", fontsize=8)
    return _png(fig)


def render_all(r: WeeklyReport) -> dict[str, bytes]:
    """Every chart, by name, in the order the report shows them."""
    return {
        "daily_spend": daily_spend(r),
        "model_cost": model_cost(r),
        "safety_hits": safety_hits(r),
        "slo_budget": slo_budget(r),
    }
