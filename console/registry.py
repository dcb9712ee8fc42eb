"""Models and audit: the registered versions, each alias's mapping and history, and the
append-only audit log with the result of walking its hash chain (`verify`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ledger import audit

from . import queries as q
from .deps import ConsoleDeps
from .render import page
from .web import Gate

PAGE_ROWS = 100
MAX_ID = 2**63 - 1


def load(deps: ConsoleDeps, after_seq: int | None, filters: dict[str, Any]) -> dict[str, Any]:
    with deps.engine.connect() as conn:
        versions = q.model_versions(conn)
        weights = q.alias_weights(conn)
        history = q.alias_history(conn, limit=100)
    check = audit.verify(deps.engine)
    newest = check.entries
    start = after_seq if after_seq is not None else (0 if any(filters.values()) else max(0, newest - PAGE_ROWS))
    entries = audit.entries(deps.engine, after_seq=start, limit=PAGE_ROWS, **filters)
    return {
        "versions": versions,
        "weights": weights,
        "history": history,
        "verify": check,
        "entries": entries,
        "after_seq": start,
        "earlier": max(0, start - PAGE_ROWS) if start > 0 else None,
        "later": entries[-1]["seq"] if len(entries) == PAGE_ROWS else None,
    }


def routes(router: APIRouter, deps: ConsoleDeps, gate: Gate) -> None:
    @router.get("/ui/models", response_class=HTMLResponse)
    async def models(
        request: Request,
        after_seq: int | None = Query(None, ge=0, le=MAX_ID),
        actor: str | None = Query(None, max_length=200),
        action: str | None = Query(None, max_length=200),
        target: str | None = Query(None, max_length=200),
        since: datetime | None = None,
    ) -> HTMLResponse:
        v = await gate.admin(request)
        filters = {"actor": actor or None, "action": action or None, "target": target or None, "since": since}
        data = await run_in_threadpool(load, deps, after_seq, filters)
        return page("models.html.jinja", viewer=v, active="models", filters=filters, **data)
