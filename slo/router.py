"""`GET /v1/slos` and `GET /v1/slos/{name}`: current SLO status (and history) as JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from inference.protocol import error_body
from slo.model import SLO
from slo.service import SLOService

Authenticate = Callable[[str | None], Awaitable[Any]]


def visible(slo: SLO, principal: Any) -> bool:
    """Admins (and callers without a tenant) see every SLO; a tenant key sees SLOs that are not
    scoped to tenants, and those scoped to its own tenant. An SLO grouped by tenant names each
    tenant's group in its status, so a tenant key sees it only when it covers that tenant alone."""
    tenant = getattr(principal, "tenant", None)
    if getattr(principal, "is_admin", False) or tenant is None:
        return True
    scoped = slo.selector.tenant
    if "tenant" in slo.group_by:
        return scoped == (tenant,)
    return not scoped or tenant in scoped


def _not_found(name: str) -> JSONResponse:
    return JSONResponse(
        error_body(404, f"No SLO named {name!r}; GET /v1/slos lists them.", "slo_not_found"), status_code=404
    )


def build_slo_router(service: SLOService, authenticate: Authenticate, *, max_age_s: float = 90.0) -> APIRouter:
    """`authenticate(authorization_header)` raises on a bad key and returns the caller (the
    gateway's `Principal`: `tenant`, `is_admin`); its exception is the app's to render.
    Statuses the scheduled job computed less than `max_age_s` ago are served as they are."""
    router = APIRouter(tags=["slo"])

    @router.get("/v1/slos")
    async def list_slos(request: Request) -> dict[str, Any]:
        who = await authenticate(request.headers.get("authorization"))
        slos = [s for s in service.slos if visible(s, who)]
        statuses = await run_in_threadpool(service.current, slos, max_age_s)
        return {"object": "list", "data": [st.to_dict() for st in statuses]}

    @router.get("/v1/slos/{name}", response_model=None)
    async def get_slo(
        request: Request,
        name: str,
        since: Annotated[
            datetime | None, Query(description="history from this time on (ISO 8601; naive is UTC)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=10_000, description="most recent history rows")] = 100,
    ) -> dict[str, Any] | JSONResponse:
        who = await authenticate(request.headers.get("authorization"))
        slo = service.get(name)
        if slo is None or not visible(slo, who):
            return _not_found(name)
        statuses = await run_in_threadpool(service.current, [slo], max_age_s)
        rows = await run_in_threadpool(service.history, slo.id, since, limit)
        return {**statuses[0].to_dict(), "history": [r.to_dict() for r in rows]}

    return router
