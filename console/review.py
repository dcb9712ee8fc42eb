"""The safety review queue: flagged and blocked hits with their redacted excerpts (the ledger
never holds raw text), claimed and resolved as true or false positives, and the precision per
category that the resolutions measure. The same functions as /v1/admin/reviews."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from safety import review

from .deps import ConsoleDeps
from .render import ConsoleError, page
from .web import Gate, back

MAX_ID = 2**63 - 1


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except review.ReviewError as exc:
        raise ConsoleError(exc.status, exc.message) from exc


def routes(router: APIRouter, deps: ConsoleDeps, gate: Gate) -> None:
    @router.get("/ui/review", response_class=HTMLResponse)
    async def queue(
        request: Request,
        status: str = Query("open", max_length=20),
        category: str | None = Query(None, max_length=100),
        offset: int = Query(0, ge=0, le=MAX_ID),
    ) -> HTMLResponse:
        v = await gate.admin(request)
        items = await call(
            review.list_items,
            deps.engine,
            status=status or None,
            category=category or None,
            tenant=v.tenant,
            limit=100,
            offset=offset,
        )
        counts = await call(review.counts, deps.engine, tenant=v.tenant)
        precision = await call(review.precision_by_category, deps.engine, tenant=v.tenant)
        return page(
            "review.html.jinja",
            viewer=v,
            active="review",
            items=items,
            counts=counts,
            status=status,
            category=category or "",
            precision=list(precision.values()),
            offset=offset,
            labels=review.LABELS,
        )

    @router.post("/ui/review/{item_id}/claim", response_model=None)
    async def claim(request: Request, item_id: int = Path(ge=1, le=MAX_ID)) -> Response:
        v, _ = await gate.post(request, admin=True)
        await call(review.claim, deps.engine, item_id, v.actor, tenant=v.tenant)
        return back("/ui/review?status=claimed")

    @router.post("/ui/review/{item_id}/resolve", response_model=None)
    async def resolve(request: Request, item_id: int = Path(ge=1, le=MAX_ID)) -> Response:
        v, fields = await gate.post(request, admin=True)
        note = fields.get("note") or None
        if note is not None and len(note) > 4000:
            raise ConsoleError(400, "note: at most 4000 characters")
        await call(review.resolve, deps.engine, item_id, fields.get("label", ""), note, v.actor, tenant=v.tenant)
        return back("/ui/review?status=resolved")
