"""The overview: traffic, errors, latency, tokens and cost for the last hour and day by alias
and version; upstream and ledger health; the SLOs whose alerts fire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from slo.router import visible

from . import queries as q
from .deps import ConsoleDeps
from .render import page
from .web import Gate, Viewer


@dataclass(frozen=True)
class Window:
    name: str
    label: str
    rows: list[q.Traffic]
    total: q.Traffic


def windows(deps: ConsoleDeps, tenant: str | None) -> tuple[list[Window], list[tuple[Any, int, int]]]:
    now = deps.clock()
    hour, day = q.minutes_back(now, 60), q.hours_back(now, 24)
    with deps.engine.connect() as conn:
        by_hour = q.traffic(conn, *hour, hourly=False, tenant=tenant)
        by_day = q.traffic(conn, *day, hourly=True, tenant=tenant)
        series = q.per_minute(conn, *hour, tenant=tenant)
    return [
        Window("hour", "last 60 minutes", by_hour, q.total(by_hour)),
        Window("day", "last 24 hours (from the start of the hour 23 hours ago)", by_day, q.total(by_day)),
    ], series


def minute_chart(series: list[tuple[Any, int, int]], now: datetime) -> dict[str, Any]:
    """Every minute of the last hour, zero where nothing was recorded."""
    seen = {m: (n, e) for m, n, e in series}
    start, _ = q.minutes_back(now, 60)
    minutes = [start + timedelta(minutes=i) for i in range(60)]
    return {
        "x": [int(m.timestamp()) for m in minutes],
        "series": [
            {"label": "requests", "values": [seen.get(m, (0, 0))[0] for m in minutes]},
            {"label": "5xx", "values": [seen.get(m, (0, 0))[1] for m in minutes]},
        ],
    }


def routes(router: APIRouter, deps: ConsoleDeps, gate: Gate) -> None:
    @router.get("/", response_class=HTMLResponse)
    @router.get("/ui", response_class=HTMLResponse)
    async def overview(request: Request) -> HTMLResponse:
        v: Viewer = await gate.viewer(request)
        wins, series = await run_in_threadpool(windows, deps, v.tenant)
        slos = [s for s in deps.slos.slos if visible(s, v.principal)]
        statuses = await run_in_threadpool(deps.slos.current, slos)
        firing = [st for st in statuses if st.page or st.ticket or st.no_data]
        health = deps.health() if v.is_admin else None  # upstream URLs are the operator's business
        chart = minute_chart(series, deps.clock())
        return page(
            "overview.html.jinja",
            viewer=v,
            active="overview",
            windows=wins,
            firing=firing,
            health=health,
            chart=chart,
            slo_count=len(statuses),
        )
