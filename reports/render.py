"""The report as HTML (self-contained: CSS inline, charts as data: URIs), Markdown and JSON."""

from __future__ import annotations

import base64
from datetime import datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from reports import charts
from reports.model import WeeklyReport

MEDIA_TYPES = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8", "json": "application/json"}


def usd(x: float | None) -> str:
    if x is None:
        return "—"
    if x and abs(x) < 0.01:
        return f"${x:.4g}"
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f}%"


def change(x: float | None) -> str:
    """Week-over-week change; "—" when last week had nothing to compare with."""
    return "—" if x is None else f"{x * 100:+.1f}%"


def num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "—"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.{digits}f}"


def amount(x: float | None, kind: str) -> str:
    """A budget amount: US dollars for a spend budget, tokens for a token budget."""
    if x is None or kind == "spend":
        return usd(x)
    return f"{x:,.0f} tokens"


def when(t: datetime | None) -> str:
    return "—" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")


def cell(x: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(x).replace("|", "\\|").replace("\n", " ")


@cache
def _env(*, autoescape: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(default=autoescape, default_for_string=autoescape),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(usd=usd, pct=pct, change=change, num=num, when=when, cell=cell, amount=amount)
    return env


def html(r: WeeklyReport) -> str:
    images = {
        name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in charts.render_all(r).items()
    }
    return _env(autoescape=True).get_template("weekly.html.jinja").render(r=r, charts=images)


def markdown(r: WeeklyReport) -> str:
    return _env(autoescape=False).get_template("weekly.md.jinja").render(r=r)


def summary(r: WeeklyReport) -> str:
    """A few lines for chat: what the webhooks post."""
    return _env(autoescape=False).get_template("summary.md.jinja").render(r=r).strip()


def as_json(r: WeeklyReport) -> str:
    return r.model_dump_json(indent=2)


def render(r: WeeklyReport, fmt: str) -> str:
    return {"html": html, "md": markdown, "json": as_json}[fmt](r)
