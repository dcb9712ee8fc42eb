"""The data path: admit, route, forward, stream back, and record exactly once."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask

from inference import protocol as p
from ledger.record import RequestRecord
from safety import review
from safety.runtime import AsyncSafety

from . import tracing
from .auth import Authenticator, Principal
from .budgets import BudgetStatus, BudgetTracker, tenant_budgets
from .cache import CachedResponse, ResponseCache, cache_key, deterministic, no_cache
from .config import Budget, GatewayConfig, Limits
from .errors import GatewayError
from .metrics import GatewayMetrics
from .outcome import Outcome, observe
from .ratelimit import SharedRateLimiter, retry_after_header
from .routing import AliasTable
from .safety_path import SafetyPath
from .shared import SharedRedis
from .state import GovernanceStore, limits_from
from .upstreams import Replica, UpstreamPools
from .usage import StreamUsage, upstream_stream_options

log = logging.getLogger("inferwatch.gateway")

REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "chat": p.ChatCompletionRequest,
    "text_completion": p.CompletionRequest,
    "embeddings": p.EmbeddingRequest,
}
UPSTREAM_PATHS = {"chat": "/v1/chat/completions", "text_completion": "/v1/completions", "embeddings": "/v1/embeddings"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_RETRYABLE_STATUS = {502, 503, 504}
REVIEW_SYNC_S = 30.0  # how often flagged/blocked hits of the ledger are copied to the review queue

@dataclass(frozen=True)
class TenantPolicy:
    """A tenant's settings as the data path applies them."""

    limits: Limits
    store_content: bool = False
    cache: bool = False
    budgets: tuple[Budget, ...] = ()


def estimate_tokens(text: str) -> int:
    """Cheap prompt-size estimate for limits (about 4 bytes per token); billing uses the
    upstream's exact usage."""
    return (len(text.encode()) + 3) // 4


def prompt_text(operation: str, req: Any) -> str:
    if operation == "chat":
        return "".join(m.text() for m in req.messages)
    if operation == "text_completion":
        return req.prompt if isinstance(req.prompt, str) else (req.prompt[0] if isinstance(req.prompt[0], str) else " " * 4 * len(req.prompt))
    inputs = req.input if isinstance(req.input, list) else [req.input]
    return "".join(x if isinstance(x, str) else " " * 4 * len(x) for x in inputs)

class Gateway:
    def __init__(self, config: GatewayConfig, store: GovernanceStore, *, submit: Callable[[RequestRecord], None],
                 metrics: GatewayMetrics, tracer_provider: TracerProvider, admin_key: str | None,
                 safety: AsyncSafety | None = None) -> None:
        self.config = config
        self.safety = safety  # None: no scanning (safety.enabled is false)
        self.safety_path = SafetyPath(safety, lambda tenant: self._store_content.get(tenant, False),
                                      metrics.guard_calls) if safety else None
        self.store = store
        self.submit = submit  # hands the record to the ledger writer (never blocks)
        self.metrics = metrics
        self.tracer_provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("inferwatch.gateway")
        self.auth = Authenticator(store, admin_key, config.key_cache_ttl_s)
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # records' start times and budget periods
        self.redis = SharedRedis(config.redis_url, config.redis_retry_s, on_state=lambda up: metrics.redis_up.set(1 if up else 0))
        if config.redis_url:
            metrics.redis_up.set(1)
        self.limiter = SharedRateLimiter(self.redis)
        self.cache = ResponseCache(config.cache, self.redis)
        self.budgets = BudgetTracker(store.engine, self.redis, clock=lambda: self.clock(), webhooks=config.budget_webhooks,
                                     on_status=self._budget_gauge)
        self.pools = UpstreamPools(config.upstreams, breaker_failures=config.breaker_failures, breaker_open_s=config.breaker_open_s)
        self.aliases = AliasTable(config.aliases)
        self.registry: dict[str, dict[str, Any]] = {}  # registered versions (the expected side of what workers report)
        self._tenant_cache: dict[str, tuple[float, TenantPolicy]] = {}
        self._store_content: dict[str, bool] = {}  # tenant opted in to storing (redacted) content
        self._background: set[asyncio.Task] = set()
        self.client: aiohttp.ClientSession | None = None  # made in start(): it belongs to the serving loop
        self._tasks: list[asyncio.Task] = []

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        # aiohttp, not httpx: httpx's pool costs about half the gateway's CPU per request
        # (see BENCHMARKS.md), aiohttp's a small fraction.
        c = self.config
        timeout = aiohttp.ClientTimeout(total=c.request_timeout_s, connect=c.connect_timeout_s, sock_read=c.first_byte_timeout_s)
        self.client = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=2000, limit_per_host=0),
                                            auto_decompress=False, skip_auto_headers=("User-Agent",))
        await self.refresh_state()
        await self._health()
        self._tasks = [asyncio.create_task(self._every(self.config.health_interval_s, self._health)),
                       asyncio.create_task(self._every(self.config.state_refresh_s, self.refresh_state)),
                       asyncio.create_task(self._every(self.config.budget_refresh_s, self.budgets.refresh))]
        if self.safety is not None:
            self._tasks.append(asyncio.create_task(self._every(REVIEW_SYNC_S, self._review_sync)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._background:  # flag-only scans and the records waiting for them among it
            await asyncio.wait(self._background, timeout=5)
        if self.safety is not None:
            await self.safety.aclose()
        if self.client:
            await self.client.close()
        await self.redis.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` after the response, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _every(self, seconds: float, fn: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception:  # noqa: BLE001 - a background check must keep running
                log.exception("background task %s failed", getattr(fn, "__name__", fn))

    async def _review_sync(self) -> None:
        try:
            await asyncio.to_thread(review.sync, self.store.engine)
        except SQLAlchemyError as exc:  # database away: the hits wait in the ledger's spool
            log.warning("cannot sync the review queue: %s", type(exc).__name__)

    async def _health(self) -> None:
        for r in await self.pools.check_all(self.client):
            self.metrics.forget_replica(r.url, r.version, self.aliases.aliases)
        self._update_upstream_gauges()

    async def refresh_state(self) -> None:
        """Alias weights and registered versions from the database, so a rollout or an
        alias change on any replica reaches all."""
        try:
            aliases = await asyncio.to_thread(self.store.aliases)
            self.registry = await asyncio.to_thread(self.store.versions)
        except SQLAlchemyError as exc:  # database away: keep routing by the last weights
            log.warning("cannot refresh alias weights: %s", type(exc).__name__)
            return
        if aliases:
            self.aliases.replace({a: [t for t in ts if t.version in self.pools.pools] for a, ts in aliases.items()})
        for alias, targets in self.aliases.aliases.items():
            for t in targets:
                self.metrics.alias_weight.labels(alias, t.version).set(t.weight)

    def _update_upstream_gauges(self) -> None:
        now = time.monotonic()
        m = self.metrics
        for r in self.pools.all_replicas():
            m.worker_up.labels(r.url, r.version).set(1 if r.healthy else 0)
            m.breaker_state.labels(r.url).set(r.breaker.state(now))
            for alias, targets in self.aliases.aliases.items():
                if any(t.version == r.version for t in targets):
                    m.upstream_healthy.labels(alias, r.version, r.url).set(1 if r.healthy and r.breaker.state(now) != 2 else 0)
                    m.version_mismatch.labels(alias, r.url).set(1 if self.mismatch(r) else 0)

    def mismatch(self, r: Replica) -> bool:
        """The worker serves another version than the registry (or, unregistered, the
        configuration) says: another content digest, or another version id."""
        expected = _bare_digest((self.registry.get(r.version) or {}).get("digest"))
        if expected and r.reported_digest and _bare_digest(r.reported_digest) != expected:
            return True
        return r.reported_version is not None and "@" in r.version and r.reported_version != r.version

    def _budget_gauge(self, st: BudgetStatus) -> None:
        if st.budget.key_id is None:  # per-key budgets stay out of the labels (bounded sets only)
            self.metrics.budget_used_ratio.labels(st.tenant, st.budget.name).set(st.ratio)

    # ---- request path ------------------------------------------------------------------

    async def tenant_limits(self, tenant: str) -> Limits:
        return (await self.tenant_policy(tenant)).limits

    async def tenant_policy(self, tenant: str) -> TenantPolicy:
        now = time.monotonic()
        hit = self._tenant_cache.get(tenant)
        if hit and now - hit[0] < self.config.key_cache_ttl_s:
            return hit[1]
        try:
            settings = await asyncio.to_thread(self.store.tenant_settings, tenant)
        except SQLAlchemyError:
            if hit:  # database away: the last known settings still hold
                return hit[1]
            settings = None
        policy = policy_from(settings, self.config)
        self._tenant_cache[tenant] = (now, policy)
        if settings is not None or tenant not in self._store_content:
            self._store_content[tenant] = policy.store_content
        return policy

    def forget_tenant(self, tenant: str) -> None:
        """Apply a settings change made through this replica at once (others within key_cache_ttl_s)."""
        self._tenant_cache.pop(tenant, None)

    async def handle(self, request: Request, operation: str) -> Response:
        t0 = time.perf_counter()
        started_at = self.clock()
        # The record's id is always ours (a client reusing its id must not collide in the
        # ledger); the client's x-request-id is the key that keeps its routing sticky.
        given_id = request.headers.get("x-request-id")
        sticky = given_id if given_id and _REQUEST_ID.match(given_id) else None
        request_id = f"req-{uuid.uuid4().hex}"
        try:
            principal = await self.auth.authenticate(request.headers.get("authorization"))
        except GatewayError as e:
            self.metrics.requests.labels("", "", "", operation, "4xx", e.error_type).inc()
            return e.response({"x-request-id": request_id})
        tenant = principal.tenant or "admin"
        self.metrics.inflight.inc()
        alias, req = "", None
        span = None
        outcome = Outcome()
        try:
            policy = await self.tenant_policy(tenant)
            limits = policy.limits
            body = await self._read_body(request, limits.max_body_bytes)
            req = self._parse(operation, body)
            if req.model not in self.aliases:  # not recorded under the client's string: labels stay bounded
                raise GatewayError(404, f"The model '{req.model}' does not exist. GET /v1/models lists the models you can use.", "model_not_found", param="model")
            alias = req.model
            est = estimate_tokens(prompt_text(operation, req))
            if est > limits.max_prompt_tokens:
                raise GatewayError(400, f"The prompt has about {est} tokens; this tenant's limit is {limits.max_prompt_tokens}.", "prompt_too_long", param="messages")
            decision = await self.limiter.check(tenant, limits.rpm, limits.tpm, est)
            rl_headers = _ratelimit_headers(limits, decision)
            if not decision.allowed:
                self.metrics.rate_limited.labels(tenant, decision.limit_name).inc()
                raise GatewayError(429, f"Rate limit reached for {decision.limit_name} per minute ({getattr(limits, 'rpm' if decision.limit_name == 'requests' else 'tpm')}). "
                                   f"Retry after {retry_after_header(decision.retry_after_s)} s.", "rate_limit_exceeded", error_type="rate_limited",
                                   headers={"Retry-After": retry_after_header(decision.retry_after_s), **rl_headers})
            if policy.budgets:
                refused = await self.budgets.check(tenant, principal.key_id, policy.budgets)
                if refused is not None:
                    self.metrics.rate_limited.labels(tenant, "budget").inc()
                    wait = retry_after_header((refused.period.end - self.clock()).total_seconds())
                    raise GatewayError(429, refused.refusal(), "budget_exceeded", error_type="budget_exceeded",
                                       headers={"Retry-After": wait, **rl_headers})
            span = tracing.start_span(self.tracer, operation, alias)
            upstream_body = json.loads(body)  # the stream options the upstream is asked for are added per upstream (_send)
            if self.safety_path is not None:
                await self.safety_path.scan_input(operation, upstream_body, tenant, outcome)
            version, key = None, None
            if policy.cache and self.config.cache.enabled and deterministic(operation, req):
                # the version first: the key holds it, so a new version never gets an old answer
                version = self.aliases.choose(alias, sticky)
                if version is not None:
                    key = cache_key(self.cache.scope(tenant), version, operation, req)
                    entry = None if no_cache(request.headers.get("cache-control")) else await self.cache.get(key)
                    self.metrics.cache_lookup(tenant, entry is not None)
                    outcome.cache_lookup = True
                    if entry is not None:
                        return self._serve_cached(entry, req, outcome, rl_headers, request_id, started_at, t0, tenant, principal,
                                                  operation, alias, span)
                    rl_headers = {**rl_headers, "x-cache": "miss"}
            if getattr(req, "stream", False):
                return await self._stream(operation, req, upstream_body, request_id, sticky, tenant, principal, alias, span, t0, started_at,
                                          outcome, rl_headers, version, key)
            resp, replica = await self._forward(operation, alias, request_id, upstream_body, span, outcome, sticky=sticky, version=version)
            response = await self._finish_plain(resp, replica, outcome, rl_headers, request_id, operation, tenant)
            if key is not None and _cacheable(outcome):
                self._spawn(self.cache.put(key, CachedResponse(outcome.model_version or "", outcome.prompt_tokens, outcome.completion_tokens,
                                                               outcome.finish_reason, body=bytes(response.body).decode())))
            return response
        except GatewayError as e:
            outcome.status, outcome.error_type = e.status, e.error_type
            return e.response({"x-request-id": request_id})
        except asyncio.CancelledError:
            outcome.status, outcome.error_type, outcome.client_disconnected = 499, "client_disconnect", True
            raise
        except Exception:  # noqa: BLE001 - never a stack trace to the client
            log.exception("unexpected gateway error (request %s)", request_id)
            outcome.status, outcome.error_type = 500, "internal_error"
            return GatewayError(500, "Internal error in the gateway.", "internal_error").response({"x-request-id": request_id})
        finally:
            if not getattr(req, "stream", False) or outcome.status != 200:
                self._record(request_id, started_at, t0, tenant, principal, operation, alias, req, outcome, span)

    async def _read_body(self, request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise GatewayError(413, f"Request body of {declared} bytes exceeds this tenant's limit of {limit} bytes.", "request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise GatewayError(413, f"Request body exceeds this tenant's limit of {limit} bytes.", "request_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, operation: str, body: bytes) -> Any:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise GatewayError(400, f"The request body is not valid JSON: {exc}", "invalid_json", error_type="invalid_request") from exc
        if not isinstance(data, dict):
            raise GatewayError(400, "The request body must be a JSON object.", "invalid_request", error_type="invalid_request")
        try:
            return REQUEST_MODELS[operation].model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            raise GatewayError(400, f"Invalid request: {loc + ': ' if loc else ''}{first['msg']}", "invalid_request", param=loc or None, error_type="invalid_request") from exc

    async def moderate(self, request: Request) -> Response:
        """`POST /v1/moderations`: the scanners' view of each input, OpenAI-compatible."""
        principal = await self.auth.authenticate(request.headers.get("authorization"))
        if self.safety is None:
            raise GatewayError(404, "Moderation is disabled on this gateway (safety.enabled is false).", "moderation_disabled")
        tenant = principal.tenant or "admin"
        limits = await self.tenant_limits(tenant)
        body = await self._read_body(request, limits.max_body_bytes)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise GatewayError(400, f"The request body is not valid JSON: {exc}", "invalid_json", error_type="invalid_request") from exc
        raw = data.get("input") if isinstance(data, dict) else None
        items = [raw] if isinstance(raw, (str, dict)) else raw
        if not isinstance(items, list) or not items:
            raise GatewayError(400, "Invalid request: 'input' must be a string, a list of strings or a list of text parts.", "invalid_request", param="input")
        texts: list[str] = []
        for x in items:
            if isinstance(x, dict) and x.get("type") == "text" and isinstance(x.get("text"), str):
                x = x["text"]
            if not isinstance(x, str):
                raise GatewayError(400, "Invalid request: only text inputs can be moderated here.", "invalid_request", param="input")
            texts.append(x)
        decision = await self.limiter.check(tenant, limits.rpm, limits.tpm, estimate_tokens("".join(texts)))
        if not decision.allowed:
            self.metrics.rate_limited.labels(tenant, decision.limit_name).inc()
            raise GatewayError(429, f"Rate limit reached for {decision.limit_name} per minute. Retry after {retry_after_header(decision.retry_after_s)} s.",
                               "rate_limit_exceeded", error_type="rate_limited", headers={"Retry-After": retry_after_header(decision.retry_after_s)})
        result = await self.safety.moderate(texts, principal.tenant)
        return JSONResponse(result, headers=_ratelimit_headers(limits, decision))

    async def _forward(self, operation: str, alias: str, request_id: str, body: dict[str, Any], span: Any, outcome: Outcome,
                       sticky: str | None, version: str | None = None) -> tuple[aiohttp.ClientResponse, Replica]:
        """Send to a replica of `version` (default: chosen by the alias's weights); before any
        byte reached the client, retry failures elsewhere. Returns the response's headers and
        the replica, whose breaker still hears of a failure while the body is read."""
        tried: set[str] = set()
        last_error: GatewayError | None = None
        version = version or self.aliases.choose(alias, sticky)
        for attempt in range(self.config.max_retries + 1):
            replica = self.pools.pick(version, tried) if version else None
            if replica is None:
                break
            tried.add(replica.url)
            outcome.retries = attempt
            if attempt:
                self.metrics.retries.labels(replica.url).inc()
            try:
                resp = await self._send(replica, operation, request_id, body, span)
            except asyncio.TimeoutError as exc:
                replica.breaker.failure(time.monotonic())
                last_error = GatewayError(504, f"The upstream did not answer in time ({type(exc).__name__}).", "upstream_timeout", error_type="timeout")
                continue
            except aiohttp.ClientError as exc:
                replica.breaker.failure(time.monotonic())
                last_error = GatewayError(502, f"Could not reach the upstream: {type(exc).__name__}.", "upstream_unreachable", error_type="upstream_error")
                continue
            if resp.status >= 500:
                replica.breaker.failure(time.monotonic())
                if resp.status in _RETRYABLE_STATUS and attempt < self.config.max_retries:
                    resp.release()
                    last_error = GatewayError(502, f"The upstream answered {resp.status}.", "upstream_error", error_type="upstream_error")
                    continue
            else:
                replica.breaker.success()
            outcome.upstream, outcome.model_version = replica.url, version
            outcome.provider = self.pools.pools[version].config.provider
            return resp, replica
        if last_error is not None:
            outcome.model_version = version
            raise last_error
        raise GatewayError(503, f"No healthy upstream for '{alias}' right now.", "no_healthy_upstream", error_type="no_healthy_upstream",
                           headers={"Retry-After": "5"})

    async def _send(self, replica: Replica, operation: str, request_id: str, body: dict[str, Any], span: Any) -> aiohttp.ClientResponse:
        cfg = self.pools.pools[replica.version].config
        headers = {"x-request-id": request_id, "content-type": "application/json", **tracing.traceparent_headers(span)}
        if cfg.api_key:
            headers["authorization"] = f"Bearer {cfg.api_key}"
        sent = {**body, "model": replica.served_model or body["model"]}
        if body.get("stream"):  # exact usage for billing, in every chunk where the upstream can
            sent["stream_options"] = upstream_stream_options(body.get("stream_options"), cfg.stream_usage)
        payload = json.dumps(sent).encode()
        assert self.client is not None
        replica.inflight += 1
        try:
            return await self.client.post(replica.url + UPSTREAM_PATHS[operation], data=payload, headers=headers)
        finally:
            replica.inflight -= 1

    async def _finish_plain(self, resp: aiohttp.ClientResponse, replica: Replica, outcome: Outcome, rl_headers: dict[str, str],
                            request_id: str, operation: str, tenant: str) -> Response:
        headers = {**rl_headers, "x-request-id": request_id, "x-model-version": outcome.model_version or ""}
        try:
            content = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            replica.breaker.failure(time.monotonic())
            outcome.status, outcome.error_type = 502, "upstream_error"
            return GatewayError(502, f"The upstream failed while answering ({type(exc).__name__}).", "upstream_error").response(headers)
        finally:
            resp.release()
        outcome.status = resp.status
        if resp.status >= 400:
            outcome.error_type = "upstream_error" if resp.status >= 500 else "upstream_rejected"
            try:
                failed = json.loads(content)
                failed["error"]["message"]
                _partial_usage(failed, outcome)
            except (ValueError, KeyError, TypeError):
                content = json.dumps(p.error_body(resp.status, "The upstream failed this request.", "upstream_error")).encode()
            return Response(content, status_code=resp.status, media_type="application/json", headers=headers)
        try:
            data = json.loads(content)
            if self.safety_path is not None and operation != "embeddings" and await self.safety_path.scan_output(data, tenant, outcome):
                content = json.dumps(data).encode()
            usage = data.get("usage") or {}
            outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
            choices = data.get("choices") or []
            outcome.finish_reason = choices[0].get("finish_reason") if choices else None
        except (ValueError, AttributeError, TypeError):
            outcome.status, outcome.error_type = 502, "upstream_bad_response"
            return GatewayError(502, "The upstream sent a response that is not valid JSON.", "upstream_bad_response").response(headers)
        return Response(content, status_code=200, media_type="application/json", headers=headers)

    async def _stream(self, operation: str, req: Any, body: dict[str, Any], request_id: str, sticky: str | None, tenant: str,
                      principal: Principal, alias: str, span: Any, t0: float, started_at: datetime, outcome: Outcome,
                      rl_headers: dict[str, str], version: str | None = None, key: str | None = None) -> Response:
        resp, replica = await self._forward(operation, alias, request_id, body, span, outcome, sticky=sticky, version=version)
        headers = {**rl_headers, "x-request-id": request_id, "x-model-version": outcome.model_version or "", "cache-control": "no-cache"}
        if resp.status != 200:
            return await self._finish_plain(resp, replica, outcome, rl_headers, request_id, operation, tenant)
        outcome.status = 200
        want_usage = bool(req.include_usage)
        estimate = estimate_tokens(prompt_text(operation, req))
        usage = StreamUsage(client_usage=want_usage, client_continuous=bool(req.continuous_usage), prompt_estimate=estimate)
        guard = None
        if self.safety_path is not None:
            guard = self.safety_path.stream_guard(tenant, operation, estimate)

        async def events() -> AsyncIterator[bytes]:
            complete = False
            try:
                async for raw in resp.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line.startswith("data: "):
                        continue
                    data = line[6:]
                    if data == "[DONE]":
                        if guard is not None:
                            tail = guard.flush(outcome)
                            if tail:
                                yield tail
                        closing = usage.closing()
                        if closing is not None:
                            yield b"data: " + closing.encode() + b"\n\n"
                        complete = outcome.error_type is None
                        yield b"data: [DONE]\n\n"
                        break  # the stream is complete: a client closing now is not a disconnect
                    chunk = _json(data)
                    sent = usage.forward(chunk, data)
                    if sent is None:
                        continue
                    if guard is None:
                        observe(chunk, outcome)
                        yield b"data: " + sent.encode() + b"\n\n"
                        continue
                    out, stop = guard.chunk(sent, outcome, want_usage)
                    if out:
                        yield out
                    if stop:  # blocked: end the stream here and stop the upstream's generation
                        yield b"data: [DONE]\n\n"
                        resp.close()
                        break
                else:
                    if guard is not None:  # the upstream ended without [DONE]
                        tail = guard.flush(outcome)
                        if tail:
                            yield tail
                    complete = outcome.error_type is None and outcome.finish_reason is not None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                # the worker went away or stalled mid-stream: tell the client in-band, the record
                # says so, and the replica's breaker counts it like a failure before the headers
                replica.breaker.failure(time.monotonic())
                if guard is not None:
                    tail = guard.flush(outcome)
                    if tail:
                        yield tail
                outcome.status, outcome.error_type = 502, "upstream_disconnected"
                err = p.error_body(502, f"The upstream failed mid-stream ({type(exc).__name__}).", "upstream_disconnected")
                yield b"data: " + json.dumps(err).encode() + b"\n\n"
            except asyncio.CancelledError:
                if outcome.error_type is None:  # a client closing on the upstream's error event does not hide the error
                    outcome.status, outcome.error_type, outcome.client_disconnected = 499, "client_disconnect", True
                raise
            finally:
                resp.release()
                if guard is not None:
                    guard.finalize(outcome)
                usage.settle(outcome, partial=not complete)
                self._record(request_id, started_at, t0, tenant, principal, operation, alias, req, outcome, span)

        async def after() -> None:
            # Starlette runs this even when the client left before the stream started, when
            # `events()` never ran: the request still gets its one record.
            if not outcome.recorded:
                resp.release()
                if guard is not None:
                    guard.finalize(outcome)
                outcome.status, outcome.error_type, outcome.client_disconnected = 499, "client_disconnect", True
                self._record(request_id, started_at, t0, tenant, principal, operation, alias, req, outcome, span)

        stream = events() if key is None else self._capture(events(), key, outcome)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers, background=BackgroundTask(after))

    async def _capture(self, events: AsyncIterator[bytes], key: str, outcome: Outcome) -> AsyncIterator[bytes]:
        """Pass a stream through, and cache it as sent once it ended well."""
        sent: list[str] = []
        try:
            async for event in events:
                sent.append(event.decode())
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined] - its finally records the request
        if _cacheable(outcome):
            self._spawn(self.cache.put(key, CachedResponse(outcome.model_version or "", outcome.prompt_tokens, outcome.completion_tokens,
                                                           outcome.finish_reason, events=sent)))

    def _serve_cached(self, entry: CachedResponse, req: Any, outcome: Outcome, rl_headers: dict[str, str], request_id: str,
                      started_at: datetime, t0: float, tenant: str, principal: Principal, operation: str, alias: str,
                      span: Any) -> Response:
        """Answer from the cache; the request still gets its one record (cache_hit, real latency)."""
        outcome.status, outcome.cache_hit, outcome.model_version = 200, True, entry.version
        outcome.prompt_tokens, outcome.completion_tokens, outcome.finish_reason = entry.prompt_tokens, entry.completion_tokens, entry.finish_reason
        headers = {**rl_headers, "x-request-id": request_id, "x-model-version": entry.version, "x-cache": "hit"}
        if entry.events is None:  # the key holds `stream`: a stream's entry is a stream
            outcome.first_token_at = time.perf_counter()
            return Response(entry.body or "", status_code=200, media_type="application/json", headers=headers)

        async def events() -> AsyncIterator[bytes]:
            try:
                for event in entry.events or ():
                    if outcome.first_token_at is None:
                        outcome.first_token_at = time.perf_counter()
                    yield event.encode()
            except asyncio.CancelledError:
                outcome.status, outcome.error_type, outcome.client_disconnected = 499, "client_disconnect", True
                raise
            finally:
                self._record(request_id, started_at, t0, tenant, principal, operation, alias, req, outcome, span)

        async def after() -> None:
            if not outcome.recorded:
                outcome.status, outcome.error_type, outcome.client_disconnected = 499, "client_disconnect", True
                self._record(request_id, started_at, t0, tenant, principal, operation, alias, req, outcome, span)

        return StreamingResponse(events(), media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"},
                                 background=BackgroundTask(after))

    def _record(self, request_id: str, started_at: datetime, t0: float, tenant: str, principal: Principal, operation: str,
                alias: str, req: Any, outcome: Outcome, span: Any) -> None:
        """Build the one RequestRecord and hand it to every view; flag-only safety scans left
        for after the response run first (stop() waits for them)."""
        if outcome.recorded:
            return
        outcome.recorded = True
        args = (request_id, started_at, t0, tenant, principal, operation, alias, req, outcome, span,
                time.perf_counter())
        if outcome.later:
            self._spawn(self._record_after_scans(*args))
        else:
            self._write_record(*args)

    async def _record_after_scans(self, *args: Any) -> None:
        await SafetyPath.run_later(args[8])
        self._write_record(*args)

    def _write_record(self, request_id: str, started_at: datetime, t0: float, tenant: str, principal: Principal,
                      operation: str, alias: str, req: Any, outcome: Outcome, span: Any, ended: float) -> None:
        self.metrics.inflight.dec()
        latency = ended - t0
        ttft = outcome.first_token_at - t0 if outcome.first_token_at else None
        tpot = None
        if ttft is not None and outcome.completion_tokens > 1:
            # a response that ended early: up to its last output, not to the failure after it
            until = outcome.last_token_at - t0 if outcome.last_token_at else latency
            tpot = max(0.0, until - ttft) / (outcome.completion_tokens - 1)
        status = outcome.status or 500
        if outcome.cache_hit:
            cost = self.config.cache.hit_cost_usd
        else:  # what was delivered is billed, also when the request failed after it
            cost = self.config.price_for(outcome.model_version, alias).cost(outcome.prompt_tokens, outcome.completion_tokens)
        rec = RequestRecord(
            request_id=request_id, started_at=started_at, tenant=tenant, key_id=principal.key_id, operation=operation,
            alias=alias, model_version=outcome.model_version, upstream=outcome.upstream, status_code=status,
            error_type=outcome.error_type if status >= 400 else None, latency_s=latency, ttft_s=ttft, tpot_s=tpot,
            prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens, cost_usd=cost,
            stream=bool(getattr(req, "stream", False)), finish_reason=outcome.finish_reason,
            trace_id=tracing.trace_id_of(span) if span is not None else None,
            client_disconnected=outcome.client_disconnected, cache_hit=outcome.cache_hit, cache_lookup=outcome.cache_lookup, retries=outcome.retries,
            safety=outcome.safety, partial=outcome.partial, usage_estimated=outcome.usage_estimated,
        )
        if rec.total_tokens:
            self._spawn(self.limiter.add_tokens(tenant, rec.total_tokens))
        self.budgets.add(rec)
        self.metrics.observe(rec, sampled=span is not None and span.get_span_context().trace_flags.sampled)
        if span is not None:
            tracing.finish_span(span, rec, outcome.provider, getattr(req, "max_tokens", None), getattr(req, "temperature", None))
        if alias:  # requests that never named a model (malformed bodies) are metrics only
            self.submit(rec)


def policy_from(settings: dict[str, Any] | None, config: GatewayConfig) -> TenantPolicy:
    settings = settings or {}
    return TenantPolicy(limits=limits_from(settings, config.default_limits), store_content=bool(settings.get("store_content", False)),
                        cache=bool(settings.get("cache", False)), budgets=tenant_budgets(settings, config))


def _cacheable(outcome: Outcome) -> bool:
    """Only complete answers: no errors, no block, no abandoned stream."""
    return (outcome.status == 200 and outcome.error_type is None and not outcome.client_disconnected and outcome.finish_reason is not None
            and not any(h.action == "block" for h in outcome.safety))


def _json(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _partial_usage(body: dict[str, Any], outcome: Outcome) -> None:
    """A failed answer's usage, where the upstream says what it generated before failing."""
    usage = body.get("usage")
    if isinstance(usage, dict) and (usage.get("prompt_tokens") or usage.get("completion_tokens")):
        outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
        outcome.partial = True


def _bare_digest(d: str | None) -> str | None:
    return d.removeprefix("sha256:") if d else None


def _ratelimit_headers(limits: Limits, d: Any) -> dict[str, str]:
    h = {}
    if limits.rpm is not None:
        h["x-ratelimit-limit-requests"] = str(limits.rpm)
        h["x-ratelimit-remaining-requests"] = str(d.remaining_requests)
    if limits.tpm is not None:
        h["x-ratelimit-limit-tokens"] = str(limits.tpm)
        h["x-ratelimit-remaining-tokens"] = str(d.remaining_tokens)
    return h


def models_response(gw: Gateway) -> JSONResponse:
    now = int(time.time())
    data = []
    for alias, targets in sorted(gw.aliases.aliases.items()):
        versions = []
        for t in targets:
            pool = gw.pools.pools.get(t.version)
            replicas = pool.replicas if pool else []
            registered = gw.registry.get(t.version)
            versions.append({"version": t.version, "weight": t.weight, "healthy_replicas": sum(r.healthy for r in replicas),
                             "reported_versions": sorted({r.reported_version for r in replicas if r.reported_version}),
                             "registered_digest": registered.get("digest") if registered else None,
                             "mismatched_upstreams": [r.url for r in replicas if gw.mismatch(r)]})
        data.append(p.ModelCard(id=alias, created=now, versions=versions).model_dump())
    return JSONResponse({"object": "list", "data": data})
