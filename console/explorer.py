"""The request explorer: the ledger's raw rows by tenant, alias, version, status, error type,
cache hit, safety action and time, newest first in keyset pages; and one request's record with
its trace id, phases and safety hits (redacted excerpts only)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger import queries as ledger_queries
from safety.engine import VerdictAction

from . import queries as q
from .deps import ConsoleDeps
from .render import ConsoleError, page
from .web import Gate, back

PAGE_ROWS = 50
STATUS = re.compile(r"^([1-5]xx|[1-5]\d\d)$")
SAFETY_ACTIONS = tuple(a for a in get_args(VerdictAction) if a != "allow")
FILTERS = ("tenant", "alias", "version", "status", "error_type", "cache_hit", "safety_action", "start", "end")


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConsoleError(400, f"{name}: not a date and time (YYYY-MM-DDTHH:MM, UTC): {value!r}") from exc
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def parse_filter(params: dict[str, str], tenant_scope: str | None) -> q.RequestFilter:
    """The form's fields as a filter; a tenant viewer's filter is pinned to its tenant."""
    status = params.get("status") or None
    if status is not None and not STATUS.match(status):
        raise ConsoleError(400, f"status: a code such as 503 or a class such as 5xx, not {status!r}")
    cache = params.get("cache_hit") or None
    if cache not in (None, "yes", "no"):
        raise ConsoleError(400, "cache_hit: yes, no or empty")
    action = params.get("safety_action") or None
    if action is not None and action not in SAFETY_ACTIONS:
        raise ConsoleError(400, f"safety_action: one of {', '.join(SAFETY_ACTIONS)}")
    tenant = params.get("tenant") or None
    if tenant_scope is not None:
        if tenant not in (None, tenant_scope):
            raise ConsoleError(403, "A tenant key sees its own tenant's requests only.")
        tenant = tenant_scope
    start, end = _time(params.get("start"), "start"), _time(params.get("end"), "end")
    if start and end and start >= end:
        raise ConsoleError(400, "start must be before end")
    return q.RequestFilter(
        tenant=tenant,
        alias=params.get("alias") or None,
        version=params.get("version") or None,
        status=status,
        error_type=params.get("error_type") or None,
        cache_hit=None if cache is None else cache == "yes",
        safety_action=action,
        start=start,
        end=end,
    )


def parse_cursor(value: str | None) -> q.Cursor | None:
    if not value:
        return None
    t, sep, rid = value.partition("|")
    at = _time(t, "after")
    if at is None or not sep or not rid:
        raise ConsoleError(400, "after: not a page cursor (follow the 'older' link)")
    return at, rid


def phases(r: Any) -> list[tuple[str, float | None]]:
    """Where the time went, as far as the record says."""
    decode = r.latency_s - r.ttft_s if r.ttft_s is not None else None
    return [
        ("to first token", r.ttft_s),
        ("after the first token", decode),
        ("per output token", r.tpot_s),
        ("end to end", r.latency_s),
    ]


def routes(router: APIRouter, deps: ConsoleDeps, gate: Gate) -> None:
    @router.get("/ui/requests", response_model=None)
    async def explorer(
        request: Request,
        id: str | None = Query(None, max_length=200),
        after: str | None = Query(None, max_length=300),
        limit: int = Query(PAGE_ROWS, ge=1, le=500),
    ) -> Response:
        v = await gate.viewer(request)
        if id:
            return back(f"/ui/requests/{quote(id.strip(), safe='')}")
        params = {k: request.query_params.get(k, "").strip() for k in FILTERS}
        f = parse_filter(params, v.tenant)
        cursor = parse_cursor(after)

        def load() -> list[Any]:
            with deps.engine.connect() as conn:
                return q.find_requests(conn, f, after=cursor, limit=limit + 1)

        rows = await run_in_threadpool(load)
        more = len(rows) > limit
        rows = rows[:limit]
        kept = {k: val for k, val in params.items() if val} | ({"limit": str(limit)} if limit != PAGE_ROWS else {})
        after = f"{rows[-1].started_at.isoformat()}|{rows[-1].request_id}" if more else ""
        older = f"/ui/requests?{urlencode({**kept, 'after': after})}" if more else None
        return page(
            "requests.html.jinja",
            viewer=v,
            active="requests",
            rows=rows,
            params=params,
            older=older,
            first=f"/ui/requests?{urlencode(kept)}" if cursor else None,
            actions=SAFETY_ACTIONS,
        )

    @router.get("/ui/requests/{request_id}", response_class=HTMLResponse)
    async def one_request(request: Request, request_id: str) -> HTMLResponse:
        v = await gate.viewer(request)

        def load() -> Any:
            with deps.engine.connect() as conn:
                return ledger_queries.get_record(conn, request_id)

        r = await run_in_threadpool(load)
        if r is None or (v.tenant is not None and r.tenant != v.tenant):
            raise ConsoleError(
                404,
                f"No request {request_id!r} in the ledger (or not yours); "
                "raw rows are kept for the retention period only.",
            )
        return page("request.html.jinja", viewer=v, active="requests", r=r, phases=phases(r))
