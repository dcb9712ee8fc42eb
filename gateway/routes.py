"""HTTP routes of the gateway: the OpenAI-compatible API, usage, and admin."""

from __future__ import annotations

import asyncio
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from sqlalchemy.orm import Session

from inference import protocol as p
from ledger import audit, queries
from safety import review

from .auth import Principal, require_admin
from . import budgets
from .config import Budgets, Limits, Priority, Targets, Timeout
from .errors import ErrorCode, GatewayError
from .operations import Operation
from .proxy import Gateway


class NewTenant(BaseModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str | None = None
    limits: Limits | None = None
    store_content: bool = False
    cache: bool = False
    budgets: Budgets | None = None  # None: the gateway's default budgets
    priority: Priority = "interactive"
    timeout_s: Timeout | None = None


class BudgetsRequest(BaseModel):
    budgets: Budgets


class NewVersion(BaseModel):
    version: str = Field(min_length=1, max_length=200)
    digest: str | None = Field(default=None, description="sha256:<hex> over weights, tokenizer and config")
    source: str | None = Field(default=None, description="model folder or upstream URL")
    parameters: dict[str, Any] = Field(default_factory=dict)
    notes: str | None = Field(default=None, max_length=4000)


class AliasRequest(BaseModel):
    targets: Targets = Field(min_length=1)


class NewKeyRequest(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    admin: bool = False


class ClaimRequest(BaseModel):
    reviewer: str | None = Field(default=None, max_length=128, description="default: the id of the key that calls")


class ResolveRequest(BaseModel):
    label: str = Field(description="true_positive or false_positive (tp / fp accepted)")
    note: str | None = Field(default=None, max_length=4000)
    reviewer: str | None = Field(default=None, max_length=128)


MAX_ID = 2**63 - 1  # BIGINT: larger ids and offsets are refused (400), not overflowed in the driver (500)
OPENAI_REQUESTS = tuple(op.request_model for op in Operation)


def _body_of(model: type[BaseModel]) -> dict[str, Any]:
    # The data-path routes read their bodies themselves (past FastAPI, see DataPathMiddleware);
    # the schema is declared for the OpenAPI document, so clients and fuzzers know the body.
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def with_openai_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the OpenAI request models (and what they reference) to the document's components."""
    _, defs = models_json_schema(
        [(m, "validation") for m in OPENAI_REQUESTS], ref_template="#/components/schemas/{model}"
    )
    openapi.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
    return openapi


def build_router(gw: Gateway) -> APIRouter:
    router = APIRouter()

    async def principal(request: Request) -> Principal:
        return await gw.auth.authenticate(request.headers.get("authorization"))

    @router.post(Operation.CHAT.path, tags=["openai"], openapi_extra=_body_of(Operation.CHAT.request_model))
    async def chat(request: Request) -> Response:
        return await gw.handle(request, Operation.CHAT)

    @router.post(
        Operation.TEXT_COMPLETION.path, tags=["openai"], openapi_extra=_body_of(Operation.TEXT_COMPLETION.request_model)
    )
    async def completions(request: Request) -> Response:
        return await gw.handle(request, Operation.TEXT_COMPLETION)

    @router.post(Operation.EMBEDDINGS.path, tags=["openai"], openapi_extra=_body_of(Operation.EMBEDDINGS.request_model))
    async def embeddings(request: Request) -> Response:
        return await gw.handle(request, Operation.EMBEDDINGS)

    @router.post("/v1/moderations", tags=["openai"])
    async def moderations(request: Request) -> Response:
        return await gw.moderate(request)

    @router.get("/v1/models", tags=["openai"])
    async def models(request: Request) -> Response:
        await principal(request)
        return models_response(gw)

    @router.get("/v1/usage", tags=["usage"])
    async def usage(
        request: Request,
        start: Annotated[date | None, Query(description="first UTC day (default: 30 days ago)")] = None,
        end: Annotated[date | None, Query(description="last UTC day, inclusive (default: today)")] = None,
        tenant: Annotated[str | None, Query(description="admin only: one tenant (default: all)")] = None,
    ) -> dict[str, Any]:
        who = await principal(request)
        if who.is_admin and who.tenant is None:
            scope = tenant
        elif tenant is not None and tenant != who.tenant:
            raise GatewayError(403, "A tenant key can only read its own usage.", ErrorCode.FORBIDDEN)
        else:
            scope = who.tenant
        return await asyncio.to_thread(usage_report, gw, scope, start, end)

    async def admin(request: Request) -> str:
        """The acting admin key's id, for the audit log."""
        who = await principal(request)
        require_admin(who)
        return who.key_id or "admin"

    @router.post("/v1/admin/tenants", tags=["admin"], status_code=201)
    async def create_tenant(body: NewTenant, request: Request) -> dict[str, Any]:
        actor = await admin(request)
        settings: dict[str, Any] = {
            "store_content": body.store_content,
            "cache": body.cache,
            "priority": body.priority,
            "timeout_s": body.timeout_s,
            **(body.limits.model_dump() if body.limits else {}),
        }
        if body.budgets is not None:
            settings["budgets"] = [b.model_dump() for b in body.budgets]
        await asyncio.to_thread(lambda: gw.store.upsert_tenant(body.id, body.name, settings, actor=actor))
        return {"id": body.id, "name": body.name or body.id, "settings": settings}

    @router.put("/v1/admin/tenants/{tenant_id}/budgets", tags=["admin"])
    async def set_budgets(tenant_id: str, body: BudgetsRequest, request: Request) -> dict[str, Any]:
        actor = await admin(request)
        new = [b.model_dump() for b in body.budgets]
        try:
            settings = await asyncio.to_thread(
                lambda: gw.store.update_tenant_settings(tenant_id, {"budgets": new}, actor=actor)
            )
        except LookupError as exc:
            raise GatewayError(404, str(exc), ErrorCode.TENANT_NOT_FOUND) from exc
        gw.forget_tenant(tenant_id)
        return {"id": tenant_id, "settings": settings}

    @router.get("/v1/admin/tenants", tags=["admin"])
    async def list_tenants(request: Request) -> dict[str, Any]:
        require_admin(await principal(request))
        return {"object": "list", "data": await asyncio.to_thread(gw.store.tenants)}

    @router.post("/v1/admin/keys", tags=["admin"], status_code=201)
    async def create_key(body: NewKeyRequest, request: Request) -> dict[str, Any]:
        actor = await admin(request)
        try:
            new = await asyncio.to_thread(lambda: gw.store.create_key(body.tenant, is_admin=body.admin, actor=actor))
        except LookupError as exc:
            raise GatewayError(404, str(exc), ErrorCode.TENANT_NOT_FOUND, param="tenant") from exc
        return {
            "key_id": new.key_id,
            "tenant": body.tenant,
            "admin": body.admin,
            "key": new.secret,
            "note": "The key is shown once; only its hash is stored.",
        }

    @router.get("/v1/admin/keys", tags=["admin"])
    async def list_keys(request: Request, tenant: str | None = None) -> dict[str, Any]:
        require_admin(await principal(request))
        rows = await asyncio.to_thread(gw.store.keys, tenant)
        return {
            "object": "list",
            "data": [
                {
                    "key_id": k.key_id,
                    "tenant": k.tenant,
                    "admin": k.is_admin,
                    "revoked": k.revoked,
                    "created_at": k.created_at.isoformat(),
                }
                for k in rows
            ],
        }

    @router.delete("/v1/admin/keys/{key_id}", tags=["admin"])
    async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
        actor = await admin(request)
        if not await asyncio.to_thread(lambda: gw.store.revoke_key(key_id, actor=actor)):
            raise GatewayError(404, f"No key with id {key_id!r}.", ErrorCode.KEY_NOT_FOUND)
        gw.auth.forget(key_id)
        return {"key_id": key_id, "revoked": True}

    @router.get("/v1/admin/models", tags=["admin"])
    async def list_versions(request: Request) -> dict[str, Any]:
        await admin(request)
        versions = await asyncio.to_thread(gw.store.versions)
        aliases = await asyncio.to_thread(gw.store.aliases)
        return {
            "object": "list",
            "data": list(versions.values()),
            "aliases": {a: [t.model_dump() for t in ts] for a, ts in sorted(aliases.items())},
        }

    @router.post("/v1/admin/models", tags=["admin"], status_code=201)
    async def register_version(body: NewVersion, request: Request) -> dict[str, Any]:
        actor = await admin(request)
        try:
            out = await asyncio.to_thread(
                lambda: gw.store.register_version(
                    body.version,
                    digest=body.digest,
                    source=body.source,
                    parameters=body.parameters,
                    notes=body.notes,
                    actor=actor,
                )
            )
        except ValueError as exc:
            raise GatewayError(409, str(exc), ErrorCode.VERSION_IMMUTABLE, param="version") from exc
        await gw.refresh_state()
        return out

    @router.get("/v1/admin/aliases/{alias}", tags=["admin"])
    async def alias_history(alias: str, request: Request, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        await admin(request)
        current = (await asyncio.to_thread(gw.store.aliases)).get(alias)
        history = await asyncio.to_thread(gw.store.alias_history, alias, limit)
        if current is None and not history:
            raise GatewayError(404, f"No alias {alias!r}.", ErrorCode.ALIAS_NOT_FOUND)
        return {"alias": alias, "targets": [t.model_dump() for t in current or []], "history": history}

    @router.put("/v1/admin/aliases/{alias}", tags=["admin"])
    async def set_alias(alias: str, body: AliasRequest, request: Request) -> dict[str, Any]:
        actor = await admin(request)
        known = set(gw.pools.pools) | set(await asyncio.to_thread(gw.store.versions))
        unknown = sorted({t.version for t in body.targets} - known)
        if unknown:
            raise GatewayError(
                400,
                f"Unknown version(s) {', '.join(unknown)}: register them first (POST /v1/admin/models).",
                ErrorCode.UNKNOWN_VERSION,
                param="targets",
            )
        if sum(t.weight for t in body.targets) <= 0:
            raise GatewayError(
                400, "At least one target needs a positive weight.", ErrorCode.INVALID_WEIGHTS, param="targets"
            )
        await asyncio.to_thread(lambda: gw.store.set_alias(alias, body.targets, actor=actor, reason="admin"))
        await gw.refresh_state()
        return {"alias": alias, "targets": [t.model_dump() for t in body.targets]}

    @router.post("/v1/admin/aliases/{alias}/rollback", tags=["admin"])
    async def rollback_alias(alias: str, request: Request) -> dict[str, Any]:
        actor = await admin(request)
        try:
            targets = await asyncio.to_thread(lambda: gw.store.rollback_alias(alias, actor=actor))
        except LookupError as exc:
            raise GatewayError(409, str(exc), ErrorCode.NOTHING_TO_ROLL_BACK) from exc
        await gw.refresh_state()
        return {"alias": alias, "targets": [t.model_dump() for t in targets]}

    @router.get("/v1/admin/audit", tags=["admin"])
    async def audit_log(
        request: Request,
        actor: str | None = None,
        action: str | None = Query(None, description="prefix, e.g. alias."),
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = Query(0, ge=0, le=MAX_ID),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        await admin(request)
        data = await asyncio.to_thread(
            lambda: audit.entries(
                gw.store.engine,
                actor=actor,
                action=action,
                target=target,
                since=since,
                until=until,
                after_seq=after_seq,
                limit=limit,
            )
        )
        return {"object": "list", "data": data}

    @router.get("/v1/admin/audit/verify", tags=["admin"])
    async def audit_verify(request: Request) -> dict[str, Any]:
        await admin(request)
        return (await asyncio.to_thread(audit.verify, gw.store.engine)).to_dict()

    async def reviewer_scope(request: Request, tenant: str | None) -> tuple[Principal, str | None]:
        """Admin keys only; a tenant's admin key sees that tenant's items alone."""
        who = await principal(request)
        require_admin(who)
        if who.tenant is not None and tenant is not None and tenant != who.tenant:
            raise GatewayError(403, "A tenant's admin key can only review its own tenant.", ErrorCode.FORBIDDEN)
        return who, who.tenant if who.tenant is not None else tenant

    async def review_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, gw.store.engine, *args, **kwargs)
        except review.ReviewError as exc:
            raise GatewayError(exc.status, exc.message, ErrorCode[exc.code.upper()]) from exc  # a member per code

    @router.get("/v1/admin/reviews", tags=["admin"])
    async def list_reviews(
        request: Request,
        status: str | None = Query(None, description="open, claimed or resolved"),
        category: str | None = None,
        tenant: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=MAX_ID),
    ) -> dict[str, Any]:
        _, scope = await reviewer_scope(request, tenant)
        data = await review_call(
            review.list_items, status=status, category=category, tenant=scope, limit=limit, offset=offset
        )
        return {"object": "list", "data": data}

    @router.get("/v1/admin/reviews/precision", tags=["admin"])
    async def review_precision(
        request: Request, start: datetime | None = None, end: datetime | None = None, tenant: str | None = None
    ) -> dict[str, Any]:
        _, scope = await reviewer_scope(request, tenant)
        found = await review_call(review.precision_by_category, start=start, end=end, tenant=scope)
        return {"object": "list", "data": [p.to_dict() for p in found.values()]}

    @router.post("/v1/admin/reviews/{item_id}/claim", tags=["admin"])
    async def claim_review(
        request: Request, item_id: int = Path(ge=1, le=MAX_ID), body: ClaimRequest | None = None
    ) -> dict[str, Any]:
        who, scope = await reviewer_scope(request, None)
        return await review_call(review.claim, item_id, (body and body.reviewer) or who.key_id or "admin", tenant=scope)

    @router.post("/v1/admin/reviews/{item_id}/resolve", tags=["admin"])
    async def resolve_review(
        body: ResolveRequest, request: Request, item_id: int = Path(ge=1, le=MAX_ID)
    ) -> dict[str, Any]:
        who, scope = await reviewer_scope(request, None)
        return await review_call(
            review.resolve, item_id, body.label, body.note, body.reviewer or who.key_id or "admin", tenant=scope
        )

    return router


def usage_report(gw: Gateway, tenant: str | None, start: date | None, end: date | None) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise GatewayError(400, "start must not be after end.", ErrorCode.INVALID_RANGE, param="start")
    t0 = datetime.combine(start, time.min, timezone.utc)
    t1 = datetime.combine(end + timedelta(days=1), time.min, timezone.utc)
    with Session(gw.store.engine) as s:
        rows = queries.usage(s, t0, t1, tenant=tenant)
    data = [
        {
            "tenant": r.tenant,
            "day": r.day.isoformat(),
            "model": r.alias,
            "model_version": r.model_version,
            "requests": r.requests,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "cost_usd": round(r.cost_usd, 10),
            "cache_hits": r.cache_hits,
            "cache_lookups": r.cache_lookups,
        }
        for r in rows
    ]
    hits = sum(r.cache_hits for r in rows)
    lookups = sum(r.cache_lookups for r in rows)  # the requests the cache was asked about; every hit was one
    totals: dict[str, float | None] = {
        "requests": sum(r.requests for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "cost_usd": sum(round(r.cost_usd, 10) for r in rows),
        "cache_hits": hits,
        "cache_lookups": lookups,
        "cache_hit_rate": round(hits / lookups, 6) if lookups else None,
    }
    return {
        "object": "usage",
        "tenant": tenant,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "data": data,
        "totals": totals,
        "budgets": budgets.report(gw.store, gw.config, tenant, gw.clock()),
    }


def models_response(gw: Gateway) -> JSONResponse:
    now = int(clock.time())
    data = []
    for alias, targets in sorted(gw.aliases.aliases.items()):
        versions = []
        for t in targets:
            pool = gw.pools.pools.get(t.version)
            replicas = pool.replicas if pool else []
            registered = gw.registry.get(t.version)
            versions.append(
                {
                    "version": t.version,
                    "weight": t.weight,
                    "healthy_replicas": sum(r.healthy for r in replicas),
                    "reported_versions": sorted({r.reported_version for r in replicas if r.reported_version}),
                    "registered_digest": registered.get("digest") if registered else None,
                    "mismatched_upstreams": [r.url for r in replicas if gw.mismatch(r)],
                }
            )
        data.append(p.ModelCard(id=alias, created=now, versions=versions).model_dump())
    return JSONResponse({"object": "list", "data": data})


def error_handlers() -> dict[Any, Any]:
    async def gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return exc.response()

    return {GatewayError: gateway_error}
