"""The data path, as a sequence of stages that each live in their own module:

    parse → admit → input safety → route → cache → forward → stream or answer (output safety) → record

A `RequestContext` carries what each stage found out to the next. Every request gets exactly
one record, however it ends: here when the response is complete, or when its stream ends."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import aiohttp
from fastapi import Request
from fastapi.responses import Response
from opentelemetry.sdk.trace import TracerProvider

from ledger.record import ErrorType, RequestRecord
from safety.runtime import AsyncSafety

from . import tracing
from .admission import Admission
from .answer import complete_answer
from .auth import Authenticator
from .background import Background
from .budgets import BudgetStatus, BudgetTracker
from .cache import ResponseCache
from .cache_path import CachePath
from .config import GatewayConfig
from .context import RequestContext
from .errors import ErrorCode, GatewayError
from .failover import Failover
from .fallbacks import Fallbacks
from .forward import Forwarder
from .metrics import GatewayMetrics
from .moderation import moderate
from .operations import Operation
from .overload import Gates, Shed
from .parse import parse, read_body
from .ratelimit import SharedRateLimiter
from .recording import Recorder
from .routing import AliasTable
from .safety_path import SafetyPath
from .shared import SharedRedis
from ledger.governance import GovernanceStore
from .streaming import relay
from .upkeep import REVIEW_SYNC_S, Upkeep
from .upstreams import Replica, UpstreamPools

log = logging.getLogger("inferwatch.gateway")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


UPSTREAM_KEEPALIVE_S = 4.0  # below uvicorn's default timeout_keep_alive of 5 s


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        store: GovernanceStore,
        *,
        submit: Callable[[RequestRecord], None],
        metrics: GatewayMetrics,
        tracer_provider: TracerProvider,
        admin_key: str | None,
        safety: AsyncSafety | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.tracer_provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("inferwatch.gateway")
        self.clock: Callable[[], datetime] = lambda: datetime.now(
            timezone.utc
        )  # records' start times and budget periods
        self.background = Background()
        self.redis = SharedRedis(
            config.redis_url, config.redis_retry_s, on_state=lambda up: metrics.redis_up.set(1 if up else 0)
        )
        if config.redis_url:
            metrics.redis_up.set(1)
        self.limiter = SharedRateLimiter(self.redis)
        self.cache = ResponseCache(config.cache, self.redis)
        self.budgets = BudgetTracker(
            store.engine,
            self.redis,
            clock=lambda: self.clock(),
            webhooks=config.budget_webhooks,
            on_status=self._budget_gauge,
        )
        self.pools = UpstreamPools(
            config.upstreams, breaker_failures=config.breaker_failures, breaker_open_s=config.breaker_open_s
        )
        self.aliases = AliasTable(config.aliases)
        self.upkeep = Upkeep(store, self.pools, self.aliases, metrics)
        # the stages, in the order a request meets them
        self.auth = Authenticator(store, admin_key, config.key_cache_ttl_s)
        self.admission = Admission(
            config, store, self.aliases, self.limiter, self.budgets, metrics, clock=lambda: self.clock()
        )
        self.safety = safety  # None: no scanning (safety.enabled is false)
        self.safety_path = SafetyPath(safety, self.admission.store_content, metrics.guard_calls) if safety else None
        self.recorder = Recorder(
            config, metrics, self.limiter, self.budgets, submit=submit, spawn=self.background.spawn
        )
        self.cache_path = CachePath(self.cache, metrics, record=self.recorder.record, spawn=self.background.spawn)
        self.forwarder = Forwarder(config, self.pools, metrics)
        self.gates = Gates(
            {v: u.max_parallel_requests for v, u in config.upstreams.items() if u.max_parallel_requests},
            lambda v: self.pools.pools[v].healthy_replicas(),
            config.overload,
        )
        self.failover = Failover(
            Fallbacks(config.fallbacks, self.aliases),
            self.gates,
            lambda v: self.pools.pools[v].context_window(),
            metrics,
        )

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        # aiohttp, not httpx: httpx's pool costs about half the gateway's CPU per request
        # (see BENCHMARKS.md), aiohttp's a small fraction.
        c = self.config
        timeout = aiohttp.ClientTimeout(
            total=c.request_timeout_s, connect=c.connect_timeout_s, sock_read=c.first_byte_timeout_s
        )
        # An idle connection is dropped before the upstream's keep-alive ends (uvicorn's, so our
        # worker's and vLLM's, is 5 s): reusing one the server just closed fails the request with
        # ServerDisconnectedError, a 502 when the version has no other replica to retry on.
        connector = aiohttp.TCPConnector(limit=2000, limit_per_host=0, keepalive_timeout=UPSTREAM_KEEPALIVE_S)
        client = aiohttp.ClientSession(
            timeout=timeout, connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        self.forwarder.client = client
        await self.refresh_state()
        await self.upkeep.health(client)
        self.background.every(c.health_interval_s, lambda: self.upkeep.health(client))
        self.background.every(c.state_refresh_s, self.refresh_state)
        self.background.every(c.budget_refresh_s, self.budgets.refresh)
        if self.safety is not None:
            self.background.every(REVIEW_SYNC_S, self.upkeep.review_sync)

    async def stop(self) -> None:
        await self.background.stop()  # flag-only safety scans, and the records waiting for them, among it
        if self.safety is not None:
            await self.safety.aclose()
        if self.forwarder.client:
            await self.forwarder.client.close()
        await self.redis.close()

    async def refresh_state(self) -> None:
        """Alias weights and registered versions from the database, now."""
        await self.upkeep.refresh_state()

    @property
    def registry(self) -> dict[str, dict[str, Any]]:
        """Registered versions: the expected side of what workers report."""
        return self.upkeep.registry

    @registry.setter
    def registry(self, versions: dict[str, dict[str, Any]]) -> None:
        self.upkeep.registry = versions

    def mismatch(self, r: Replica) -> bool:
        return self.upkeep.mismatch(r)

    def _budget_gauge(self, st: BudgetStatus) -> None:
        if st.budget.key_id is None:  # per-key budgets stay out of the labels (bounded sets only)
            self.metrics.budget_used_ratio.labels(st.tenant, st.budget.name).set(st.ratio)

    # ---- request path ------------------------------------------------------------------

    def forget_tenant(self, tenant: str) -> None:
        self.admission.forget(tenant)

    async def handle(self, request: Request, operation: Operation) -> Response:
        t0 = time.perf_counter()
        started_at = self.clock()
        given_id = request.headers.get("x-request-id")
        sticky = given_id if given_id and _REQUEST_ID.match(given_id) else None
        request_id = f"req-{uuid.uuid4().hex}"
        try:
            principal = await self.auth.authenticate(request.headers.get("authorization"))
        except GatewayError as e:
            self.metrics.requests.labels("", "", "", operation.value, "4xx", e.error_type).inc()
            return e.response({"x-request-id": request_id})
        ctx = RequestContext(operation, request_id, sticky, started_at, t0, principal)
        outcome = ctx.outcome
        self.metrics.inflight.inc()
        try:
            return await self._stages(ctx, request)
        except GatewayError as e:
            outcome.status, outcome.error_type = e.status, e.error_type
            if isinstance(e, Shed):
                self.metrics.shed.labels(ctx.tenant, e.priority, e.reason).inc()
            return e.response({"x-request-id": request_id})
        except asyncio.CancelledError:
            outcome.client_left()
            raise
        except Exception:
            log.exception("unexpected gateway error (request %s)", request_id)
            outcome.status, outcome.error_type = 500, ErrorType.INTERNAL_ERROR
            return GatewayError(500, "Internal error in the gateway.", ErrorCode.INTERNAL_ERROR).response(
                {"x-request-id": request_id}
            )
        finally:
            if not ctx.stream or outcome.status != 200:  # a stream records itself when it ends
                self.recorder.record(ctx)

    async def _stages(self, ctx: RequestContext, request: Request) -> Response:
        ctx.policy = await self.admission.policy(ctx.tenant)
        # parse
        body = await read_body(request, ctx.policy.limits.max_body_bytes)
        ctx.req = parse(ctx.operation, body)
        # admit
        await self.admission.admit(ctx, request.headers)
        ctx.span = tracing.start_span(self.tracer, ctx.operation.value, ctx.alias)
        # input safety: may block, or redact the body the upstream gets
        upstream_body = json.loads(body)  # the stream options the upstream is asked for are added per upstream
        if self.safety_path is not None:
            await self.safety_path.scan_input(ctx.operation, upstream_body, ctx.tenant, ctx.outcome)
        # route, then the cache: its key holds the version, so a new version never gets an old answer
        ctx.version = self.aliases.choose(ctx.alias, ctx.sticky)
        if ctx.version is not None and self.cache_path.wanted(ctx):
            entry = await self.cache_path.lookup(ctx, request.headers.get("cache-control"))
            if entry is not None:
                return self.cache_path.answer(ctx, entry)
        # forward (along the fallback chain), then stream or answer, with output safety on the way back
        resp, replica = await self._forward(ctx, upstream_body)
        if ctx.stream and resp.status == 200:
            guard = None
            if self.safety_path is not None:
                guard = self.safety_path.stream_guard(ctx.tenant, ctx.operation, ctx.prompt_estimate)
            return relay(ctx, resp, replica, guard, self.recorder.record, tee=self.cache_path.tee(ctx))
        response = await complete_answer(ctx, resp, replica, self.safety_path)
        if not ctx.stream:
            self.cache_path.fill(ctx, response)
        return response

    async def _forward(self, ctx: RequestContext, body: dict[str, Any]) -> tuple[aiohttp.ClientResponse, Replica]:
        async def send(version: str) -> tuple[aiohttp.ClientResponse, Replica]:
            ctx.version = version
            return await self.forwarder.forward(ctx, body)

        assert ctx.deadline is not None
        return await self.failover.forward(
            ctx.alias,
            ctx.version,
            ctx.sticky,
            tenant=ctx.tenant,
            priority=ctx.priority,
            deadline=ctx.deadline,
            prompt_estimate=ctx.prompt_estimate,
            outcome=ctx.outcome,
            send=send,
        )

    async def moderate(self, request: Request) -> Response:
        """`POST /v1/moderations`: the scanners' view of each input, OpenAI-compatible."""
        return await moderate(request, self.auth, self.admission, self.safety)
