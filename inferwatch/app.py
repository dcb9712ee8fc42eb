"""The one FastAPI app: the gateway's routes plus the platform's own endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hmac
import logging
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from canary.gauges import CanaryGauges
from canary.jobs import register_canary_jobs
from canary.router import build_canary_router
from canary.service import CanaryService
from console import ConsoleDeps, build_console_router
from gateway import budgets
from gateway.body_limit import BodyLimitMiddleware
from gateway.errors import ErrorCode, GatewayError
from gateway.metrics import GatewayMetrics
from gateway.operations import BY_PATH
from gateway.proxy import Gateway
from gateway.routes import build_router, with_openai_schemas
from gateway.seed import seed
from gateway.tracing import make_tracer_provider
from inference.protocol import error_body
from ledger import audit
from ledger.buckets import DEFAULT_BUCKETS, with_thresholds
from ledger.db import create_engine_for, migrate
from ledger.governance import GovernanceStore
from ledger.writer import LedgerWriter
from reports.jobs import register_report_job
from reports.router import build_reports_router
from reports.service import ReportService
from slo.model import SLO, counted_error_types
from slo.spec import DEFAULTS_FILE, load_specs
from slo.thresholds import thresholds_by_ledger_metric
from slo.jobs import register_slo_job
from slo.notify import WebhookNotifier
from slo.router import build_slo_router
from slo.service import SLOService

from .jobs import build_scheduler
from .report_inputs import report_inputs
from .settings import Settings

log = logging.getLogger("inferwatch")


class DataPathMiddleware:
    """Sends the OpenAI routes straight to the gateway, past FastAPI's routing and request
    handling (about a sixth of the gateway's CPU per request). The same routes stay declared
    in the router, so the OpenAPI schema documents them; `Gateway.handle` answers every
    error itself, in the OpenAI format."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        data_path = scope["type"] == "http" and scope["method"] == "POST"
        operation = BY_PATH.get(scope.get("path", "")) if data_path else None
        if operation is None:
            await self.app(scope, receive, send)
            return
        response = await self.gateway.handle(Request(scope, receive), operation)
        await response(scope, receive, send)


def slo_buckets(slos: list[SLO]) -> dict[str, tuple[float, ...]]:
    """Histogram bounds for metrics and rollups: the OpenTelemetry defaults plus every SLO
    latency threshold, so that "value <= threshold" is exact in both places."""
    extra = thresholds_by_ledger_metric(slos)
    return {m: with_thresholds(bounds, extra.get(m, ())) for m, bounds in DEFAULT_BUCKETS.items()}


def console_secret(admin_key: str | None) -> bytes:
    """Signs console sessions: derived from the admin key, so every replica has the same one;
    without an admin key, a random one (sessions then last as long as the process)."""
    if admin_key:
        return hmac.new(admin_key.encode(), b"inferwatch console session", "sha256").digest()
    return secrets.token_bytes(32)


def create_app(settings: Settings, *, span_exporter: SpanExporter | None = None) -> FastAPI:
    """Everything is built here and torn down by the lifespan; nothing global."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine_for(settings.ledger_url)
    migrate(engine)
    store = GovernanceStore(engine)
    seed(store, settings.gateway)
    slos = load_specs(settings.slo_specs or [DEFAULTS_FILE])
    audit.record_if_changed(engine, action="slo.specs", target="slo", state=[dataclasses.asdict(s) for s in slos])
    buckets = slo_buckets(slos)
    metrics = GatewayMetrics(buckets, zero_error_types=counted_error_types(slos))
    writer = LedgerWriter(
        engine,
        settings.spool_dir,
        batch_size=settings.ledger_batch_size,
        max_delay_s=settings.ledger_max_delay_s,
        buckets=buckets,
    )
    provider = make_tracer_provider(span_exporter, settings.gateway.otlp_endpoint)
    safety = settings.safety.build_runtime()  # None when safety.enabled is false
    gw = Gateway(
        settings.gateway,
        store,
        submit=writer.submit,
        metrics=metrics,
        tracer_provider=provider,
        admin_key=settings.admin_key,
        safety=safety,
    )

    scheduler = build_scheduler(settings, engine)
    slo_notifier = WebhookNotifier(settings.slo_webhooks) if settings.slo_webhooks else None
    slo_service = SLOService(
        engine, slos, slo_notifier, registry=metrics.registry, prometheus_url=settings.slo_prometheus_url
    )
    register_slo_job(scheduler, slo_service, interval_s=settings.slo_eval_interval_s)
    canary_service = CanaryService(engine, store=store, known_versions=lambda: settings.gateway.upstreams.keys())
    register_canary_jobs(scheduler, canary_service, interval_s=15)
    CanaryGauges(engine).register(metrics.registry)
    report_service = ReportService(
        engine,
        settings.reports,
        settings.reports.directory(settings.data_dir),
        slos,
        **report_inputs(engine, settings.gateway),
    )
    register_report_job(scheduler, report_service, settings.reports)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if safety is not None:
            await asyncio.to_thread(safety.warm_up)  # loads the classifier (seconds) off the event loop
        await gw.start()
        scheduler.start()
        # What startup built (modules, schemas, safety data: ~250k objects) lives as long as the
        # process. Frozen, a full collection walks only what requests keep alive (15-40 ms on a
        # 2-vCPU VM) instead of everything (160-400 ms, every few seconds under load).
        gc.freeze()
        metrics.gc_pauses.start()
        yield
        metrics.gc_pauses.stop()
        gc.unfreeze()  # a process that starts another app (the tests) collects this one's cycles
        scheduler.shutdown(wait=False)
        if slo_notifier is not None:
            slo_notifier.close()
        # uvicorn has stopped accepting and waited for in-flight requests: flush what they recorded
        await gw.stop()
        writer.close()
        engine.dispose()  # its pooled connections, which the GC would otherwise find open
        provider.shutdown()

    # FastAPI's own telemetry is off: spans and metrics are views of the RequestRecord, and its
    # per-request provider checks cost about 5% of the gateway's CPU.
    app = FastAPI(
        title="inferwatch",
        version="0.1.0",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.gateway, app.state.writer, app.state.settings = gw, writer, settings
    app.include_router(build_router(gw))
    app.include_router(build_slo_router(slo_service, gw.auth.authenticate))
    app.include_router(build_canary_router(canary_service, gw.auth.authenticate))
    app.include_router(build_reports_router(report_service, gw.auth.authenticate))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.gateway.api_max_body_bytes)
    app.add_middleware(DataPathMiddleware, gateway=gw)  # outermost: the data path skips the rest
    base_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = with_openai_schemas(base_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
        return JSONResponse(
            error_body(
                400,
                f"Invalid request: {loc + ': ' if loc else ''}{first.get('msg', 'malformed')}",
                ErrorCode.INVALID_REQUEST,
                loc or None,
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body(500, "Internal error.", ErrorCode.INTERNAL_ERROR), status_code=500)

    def health_body() -> dict:
        replicas = gw.pools.all_replicas()
        stats = writer.stats()
        return {
            "status": "ok" if any(r.healthy for r in replicas) else "degraded",
            "upstreams": [
                {"url": r.url, "version": r.version, "healthy": r.healthy, "error": r.last_error} for r in replicas
            ],
            "ledger": {
                "database_up": stats.db_available,
                "queue_depth": stats.queue_depth,
                "spool_files": stats.spool_files,
            },
        }

    @app.get("/health", tags=["platform"])
    async def health() -> JSONResponse:
        body = health_body()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    async def rollback_alias(alias: str, actor: str) -> list[dict]:
        targets = await asyncio.to_thread(gw.store.rollback_alias, alias, actor=actor)
        await gw.refresh_state()
        return [t.model_dump() for t in targets]

    app.include_router(
        build_console_router(
            ConsoleDeps(
                engine=engine,
                authenticate=gw.auth.authenticate,
                slos=slo_service,
                canary=canary_service,
                reports=report_service,
                health=health_body,
                budgets=lambda tenant: budgets.report(store, settings.gateway, tenant, gw.clock()),
                rollback_alias=rollback_alias,
                secret=console_secret(settings.admin_key),
            )
        )
    )

    @app.get("/metrics", tags=["platform"])
    async def metrics_endpoint(request: Request) -> Response:
        token = settings.gateway.metrics_token
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse(
                    error_body(401, "The metrics endpoint needs its bearer token.", ErrorCode.INVALID_METRICS_TOKEN),
                    status_code=401,
                )
        s = writer.stats()
        metrics.ledger_queue.set(s.queue_depth)
        metrics.ledger_spool_files.set(s.spool_files)
        metrics.ledger_spool_bytes.set(s.spool_bytes)
        metrics.ledger_dropped.set(s.dropped_total)
        metrics.ledger_spool_write_errors.set(s.spool_write_errors)
        metrics.ledger_db_up.set(1 if s.db_available else 0)
        # Off the event loop: the canary gauges read the database when collected, and a database
        # that is slow or away must not stall the data path.
        if "application/openmetrics-text" in request.headers.get(
            "accept", ""
        ):  # Prometheus asks for it to get exemplars
            return Response(
                await asyncio.to_thread(openmetrics.generate_latest, metrics.registry),
                media_type=openmetrics.CONTENT_TYPE_LATEST,
            )
        return Response(await asyncio.to_thread(generate_latest, metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
