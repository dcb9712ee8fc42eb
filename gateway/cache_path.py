"""The response cache on the data path: look a deterministic request up under the version it
is routed to, answer from an entry (the request still gets its one record, with cache_hit and
its real latency), and fill the cache with answers that ended well."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from .cache import CachedResponse, ResponseCache, cache_key, deterministic, no_cache
from .context import RequestContext
from .metrics import GatewayMetrics
from .outcome import Outcome


class CachePath:
    def __init__(
        self,
        cache: ResponseCache,
        metrics: GatewayMetrics,
        *,
        record: Callable[[RequestContext], None],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.cache, self.metrics, self.record, self.spawn = cache, metrics, record, spawn

    def wanted(self, ctx: RequestContext) -> bool:
        assert ctx.policy is not None
        return ctx.policy.cache and self.cache.config.enabled and deterministic(ctx.operation, ctx.req)

    async def lookup(self, ctx: RequestContext, cache_control: str | None) -> CachedResponse | None:
        """The entry for the request under its routed version (so a new version never gets an
        old answer); `Cache-Control: no-cache` from the client skips the lookup, not the fill."""
        assert ctx.version is not None
        key = ctx.cache_key = cache_key(self.cache.scope(ctx.tenant), ctx.version, ctx.operation, ctx.req)
        entry = None if no_cache(cache_control) else await self.cache.get(key)
        self.metrics.cache_lookup(ctx.tenant, hit=entry is not None)
        ctx.outcome.cache_lookup = True
        if entry is None:
            ctx.headers = {**ctx.headers, "x-cache": "miss"}
        return entry

    def answer(self, ctx: RequestContext, entry: CachedResponse) -> Response:
        outcome = ctx.outcome
        outcome.status, outcome.cache_hit, outcome.model_version = 200, True, entry.version
        outcome.prompt_tokens, outcome.completion_tokens = entry.prompt_tokens, entry.completion_tokens
        outcome.finish_reason = entry.finish_reason
        headers = {**ctx.headers, "x-request-id": ctx.request_id, "x-model-version": entry.version, "x-cache": "hit"}
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
                outcome.client_left()
                raise
            finally:
                self.record(ctx)

        async def after() -> None:
            if not outcome.recorded:
                outcome.client_left()
                self.record(ctx)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            background=BackgroundTask(after),
            headers={**headers, "cache-control": "no-cache"},
        )

    def fill(self, ctx: RequestContext, response: Response) -> None:
        """Keep a complete answer, after the response is sent."""
        if ctx.cache_key is not None and cacheable(ctx.outcome):
            self.spawn(self.cache.put(ctx.cache_key, _entry(ctx.outcome, body=bytes(response.body).decode())))

    def tee(self, ctx: RequestContext) -> Callable[[AsyncGenerator[bytes, None]], AsyncIterator[bytes]] | None:
        """For a stream whose request was looked up: pass it through, and keep it as sent
        once it ended well."""
        key = ctx.cache_key
        if key is None:
            return None

        async def capture(events: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
            sent: list[str] = []
            try:
                async for event in events:
                    sent.append(event.decode())
                    yield event
            finally:
                await events.aclose()  # its finally records the request
            if cacheable(ctx.outcome):
                self.spawn(self.cache.put(key, _entry(ctx.outcome, events=sent)))

        return capture


def cacheable(outcome: Outcome) -> bool:
    """Only complete answers of the version the key holds: no errors, no block, no abandoned
    stream, no fallback (another version answered)."""
    return (
        outcome.status == 200
        and outcome.error_type is None
        and not outcome.client_disconnected
        and outcome.finish_reason is not None
        and not any(h.action == "block" for h in outcome.safety)
        and outcome.fallback_from is None
    )


def _entry(o: Outcome, *, body: str | None = None, events: list[str] | None = None) -> CachedResponse:
    return CachedResponse(
        o.model_version or "", o.prompt_tokens, o.completion_tokens, o.finish_reason, body=body, events=events
    )
