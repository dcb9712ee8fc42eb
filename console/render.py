"""Templates, the headers every console page carries, and the error page."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"

# No inline script or style anywhere: scripts and styles come from /ui/static only; chart
# data travels in <script type="application/json"> blocks, which are never executed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class ConsoleError(Exception):
    """A page that cannot be shown: the status and what the person should know."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def num(x: float | int | str | None, digits: int = 2) -> str:
    if isinstance(x, str):  # "inf" / "-inf" in stored judge results
        return x
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def pct(x: float | str | None, digits: int = 2) -> str:
    if isinstance(x, str):
        return x
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f} %"


def ms(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{1000 * x:,.1f} ms"


def usd(x: float | None) -> str:
    return "–" if x is None else f"${x:,.6f}" if abs(x) < 1 else f"${x:,.2f}"


def when(t: datetime | str | None) -> str:
    if t is None:
        return "–"
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "jinja"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(num=num, pct=pct, ms=ms, usd=usd, when=when, duration=duration)


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def error_page(status: int, message: str, viewer: Any = None) -> HTMLResponse:
    titles = {
        400: "Bad request",
        401: "Not signed in",
        403: "Not allowed",
        404: "Not found",
        413: "Too large",
        503: "Unavailable",
    }
    return page(
        "error.html.jinja", status, title=titles.get(status, "Error"), status=status, message=message, viewer=viewer
    )
