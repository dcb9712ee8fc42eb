"""`GET /v1/reports` (list) and `GET /v1/reports/{name}` (one file), for admin keys only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from inference.protocol import error_body
from reports.service import ReportService

Authenticate = Callable[[str | None], Awaitable[Any]]


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(error_body(status, message, code), status_code=status)


def build_reports_router(service: ReportService, authenticate: Authenticate) -> APIRouter:
    """`authenticate(authorization_header)` raises on a bad key (the app renders it) and
    returns the caller (`is_admin`). Only names the service lists are served, so no path
    outside the reports folder can be reached."""
    router = APIRouter(tags=["reports"])

    async def denied(request: Request) -> JSONResponse | None:
        who = await authenticate(request.headers.get("authorization"))
        if not getattr(who, "is_admin", False):
            return _error(403, "Reports need an admin key.", "admin_required")
        return None

    @router.get("/v1/reports", response_model=None)
    async def list_reports(request: Request) -> JSONResponse:
        if (refused := await denied(request)) is not None:
            return refused
        files = await run_in_threadpool(service.list)
        return JSONResponse({"object": "list", "data": [f.to_dict() for f in files]})

    @router.get("/v1/reports/{name}", response_model=None)
    async def get_report(request: Request, name: str) -> FileResponse | JSONResponse:
        if (refused := await denied(request)) is not None:
            return refused
        found = await run_in_threadpool(service.find, name)
        if found is None:
            return _error(404, f"No report named {name!r}; GET /v1/reports lists them.", "report_not_found")
        return FileResponse(found.path, media_type=found.media_type)

    return router
