"""HTTP routes of the gateway: the OpenAI-compatible API, usage, and admin."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ledger import queries
from safety import review

from .auth import Principal, require_admin
from .config import Limits
from .errors import GatewayError
from .proxy import Gateway, models_response


class NewTenant(BaseModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str | None = None
    limits: Limits | None = None
    store_content: bool = False


class NewKeyRequest(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    admin: bool = False


class ClaimRequest(BaseModel):
    reviewer: str | None = Field(default=None, max_length=128, description="default: the id of the key that calls")


class ResolveRequest(BaseModel):
    label: str = Field(description="true_positive or false_positive (tp / fp accepted)")
    note: str | None = Field(default=None, max_length=4000)
    reviewer: str | None = Field(default=None, max_length=128)


def build_router(gw: Gateway) -> APIRouter:
    router = APIRouter()

    async def principal(request: Request) -> Principal:
        return await gw.auth.authenticate(request.headers.get("authorization"))

    @router.post("/v1/chat/completions", tags=["openai"])
    async def chat(request: Request) -> Response:
        return await gw.handle(request, "chat")

    @router.post("/v1/completions", tags=["openai"])
    async def completions(request: Request) -> Response:
        return await gw.handle(request, "text_completion")

    @router.post("/v1/embeddings", tags=["openai"])
    async def embeddings(request: Request) -> Response:
        return await gw.handle(request, "embeddings")

    @router.post("/v1/moderations", tags=["openai"])
    async def moderations(request: Request) -> Response:
        return await gw.moderate(request)

    @router.get("/v1/models", tags=["openai"])
    async def models(request: Request) -> Response:
        await principal(request)
        return models_response(gw)

    @router.get("/v1/usage", tags=["usage"])
    async def usage(request: Request, start: date | None = Query(None, description="first UTC day (default: 30 days ago)"),
                    end: date | None = Query(None, description="last UTC day, inclusive (default: today)"),
                    tenant: str | None = Query(None, description="admin only: one tenant (default: all)")) -> dict[str, Any]:
        who = await principal(request)
        if who.is_admin and who.tenant is None:
            scope = tenant
        elif tenant is not None and tenant != who.tenant:
            raise GatewayError(403, "A tenant key can only read its own usage.", "forbidden")
        else:
            scope = who.tenant
        return await asyncio.to_thread(usage_report, gw, scope, start, end)

    @router.post("/v1/admin/tenants", tags=["admin"], status_code=201)
    async def create_tenant(body: NewTenant, request: Request) -> dict[str, Any]:
        require_admin(await principal(request))
        settings: dict[str, Any] = {"store_content": body.store_content, **(body.limits.model_dump() if body.limits else {})}
        await asyncio.to_thread(gw.store.upsert_tenant, body.id, body.name, settings)
        return {"id": body.id, "name": body.name or body.id, "settings": settings}

    @router.get("/v1/admin/tenants", tags=["admin"])
    async def list_tenants(request: Request) -> dict[str, Any]:
        require_admin(await principal(request))
        return {"object": "list", "data": await asyncio.to_thread(gw.store.tenants)}

    @router.post("/v1/admin/keys", tags=["admin"], status_code=201)
    async def create_key(body: NewKeyRequest, request: Request) -> dict[str, Any]:
        require_admin(await principal(request))
        try:
            new = await asyncio.to_thread(gw.store.create_key, body.tenant, body.admin)
        except LookupError as exc:
            raise GatewayError(404, str(exc), "tenant_not_found", param="tenant") from exc
        return {"key_id": new.key_id, "tenant": body.tenant, "admin": body.admin, "key": new.secret,
                "note": "The key is shown once; only its hash is stored."}

    @router.get("/v1/admin/keys", tags=["admin"])
    async def list_keys(request: Request, tenant: str | None = None) -> dict[str, Any]:
        require_admin(await principal(request))
        rows = await asyncio.to_thread(gw.store.keys, tenant)
        return {"object": "list", "data": [{"key_id": k.key_id, "tenant": k.tenant, "admin": k.is_admin, "revoked": k.revoked,
                                            "created_at": k.created_at.isoformat()} for k in rows]}

    @router.delete("/v1/admin/keys/{key_id}", tags=["admin"])
    async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
        require_admin(await principal(request))
        if not await asyncio.to_thread(gw.store.revoke_key, key_id):
            raise GatewayError(404, f"No key with id {key_id!r}.", "key_not_found")
        gw.auth.forget(key_id)
        return {"key_id": key_id, "revoked": True}

    async def reviewer_scope(request: Request, tenant: str | None) -> tuple[Principal, str | None]:
        """Admin keys only; a tenant's admin key sees that tenant's items alone."""
        who = await principal(request)
        require_admin(who)
        if who.tenant is not None and tenant is not None and tenant != who.tenant:
            raise GatewayError(403, "A tenant's admin key can only review its own tenant.", "forbidden")
        return who, who.tenant if who.tenant is not None else tenant

    async def review_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, gw.store.engine, *args, **kwargs)
        except review.ReviewError as exc:
            raise GatewayError(exc.status, exc.message, exc.code) from exc

    @router.get("/v1/admin/reviews", tags=["admin"])
    async def list_reviews(request: Request, status: str | None = Query(None, description="open, claimed or resolved"),
                           category: str | None = None, tenant: str | None = None,
                           limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        _, scope = await reviewer_scope(request, tenant)
        data = await review_call(review.list_items, status=status, category=category, tenant=scope, limit=limit, offset=offset)
        return {"object": "list", "data": data}

    @router.get("/v1/admin/reviews/precision", tags=["admin"])
    async def review_precision(request: Request, start: datetime | None = None, end: datetime | None = None,
                               tenant: str | None = None) -> dict[str, Any]:
        _, scope = await reviewer_scope(request, tenant)
        found = await review_call(review.precision_by_category, start=start, end=end, tenant=scope)
        return {"object": "list", "data": [p.to_dict() for p in found.values()]}

    @router.post("/v1/admin/reviews/{item_id}/claim", tags=["admin"])
    async def claim_review(item_id: int, request: Request, body: ClaimRequest | None = None) -> dict[str, Any]:
        who, scope = await reviewer_scope(request, None)
        return await review_call(review.claim, item_id, (body and body.reviewer) or who.key_id or "admin", tenant=scope)

    @router.post("/v1/admin/reviews/{item_id}/resolve", tags=["admin"])
    async def resolve_review(item_id: int, body: ResolveRequest, request: Request) -> dict[str, Any]:
        who, scope = await reviewer_scope(request, None)
        return await review_call(review.resolve, item_id, body.label, body.note, body.reviewer or who.key_id or "admin", tenant=scope)

    return router


def usage_report(gw: Gateway, tenant: str | None, start: date | None, end: date | None) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise GatewayError(400, "start must not be after end.", "invalid_range", param="start")
    t0 = datetime.combine(start, time.min, timezone.utc)
    t1 = datetime.combine(end + timedelta(days=1), time.min, timezone.utc)
    with Session(gw.store.engine) as s:
        rows = queries.usage(s, t0, t1, tenant=tenant)
    data = [{"tenant": r.tenant, "day": r.day.isoformat(), "model": r.alias, "model_version": r.model_version, "requests": r.requests,
             "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens, "cost_usd": round(r.cost_usd, 10)} for r in rows]
    totals = {k: sum(d[k] for d in data) for k in ("requests", "prompt_tokens", "completion_tokens", "cost_usd")}
    return {"object": "usage", "tenant": tenant, "start": start.isoformat(), "end": end.isoformat(), "data": data, "totals": totals}


def error_handlers() -> dict[Any, Any]:
    async def gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return exc.response()

    return {GatewayError: gateway_error}
