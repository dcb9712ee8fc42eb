"""Cost and budgets: spend by tenant, alias and version per UTC day (the rows of GET /v1/usage),
the budgets with what is left, and the weekly reports written so far (admins)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from . import queries as q
from .deps import ConsoleDeps
from .render import HEADERS, ConsoleError, page
from .web import Gate

# A report is a document of ours without scripts; its HTML may carry its own styles.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"


def spend(deps: ConsoleDeps, tenant: str | None, days: int) -> dict[str, Any]:
    today = deps.clock().date()
    start = datetime.combine(today - timedelta(days=days - 1), time.min, timezone.utc)
    end = datetime.combine(today + timedelta(days=1), time.min, timezone.utc)
    with deps.engine.connect() as conn:
        rows = q.daily_usage(conn, start, end, tenant=tenant)
    by: dict[str, dict[Any, dict[str, float]]] = {
        "tenant": defaultdict(lambda: defaultdict(float)),
        "version": defaultdict(lambda: defaultdict(float)),
    }
    daily: dict[Any, float] = {today - timedelta(days=i): 0.0 for i in range(days)}
    for r in rows:
        for name, key in (("tenant", r.tenant), ("version", (r.alias, r.model_version or "–"))):
            acc = by[name][key]
            acc["requests"] += r.requests
            acc["tokens"] += r.prompt_tokens + r.completion_tokens
            acc["cost_usd"] += r.cost_usd
        daily[r.day] = daily.get(r.day, 0.0) + r.cost_usd
    days_sorted = sorted(daily)
    chart = {
        "x": [int(datetime.combine(d, time.min, timezone.utc).timestamp()) for d in days_sorted],
        "series": [{"label": "cost (USD)", "values": [round(daily[d], 10) for d in days_sorted]}],
    }
    return {
        "rows": rows,
        "by_tenant": sorted(by["tenant"].items()),
        "by_version": sorted(by["version"].items()),
        "total": sum(r.cost_usd for r in rows),
        "chart": chart,
        "start": start.date(),
        "end": today,
    }


def routes(router: APIRouter, deps: ConsoleDeps, gate: Gate) -> None:
    @router.get("/ui/cost", response_class=HTMLResponse)
    async def cost(request: Request, days: int = Query(30, ge=1, le=366)) -> HTMLResponse:
        v = await gate.viewer(request)
        data = await run_in_threadpool(spend, deps, v.tenant, days)
        budgets = await run_in_threadpool(deps.budgets, v.tenant)
        reports = await run_in_threadpool(deps.reports.list) if v.is_admin and v.tenant is None else None
        return page("cost.html.jinja", viewer=v, active="cost", days=days, budgets=budgets, reports=reports, **data)

    @router.get("/ui/reports/{name}", response_model=None)
    async def report(request: Request, name: str = Path(max_length=200)) -> FileResponse:
        v = await gate.admin(request)
        if v.tenant is not None:
            raise ConsoleError(403, "Weekly reports cover every tenant: they need the platform admin key.")
        found = await run_in_threadpool(deps.reports.find, name)
        if found is None:
            raise ConsoleError(404, f"No report named {name!r}; the cost page lists them.")
        return FileResponse(
            found.path, media_type=found.media_type, headers={**HEADERS, "Content-Security-Policy": REPORT_CSP}
        )
