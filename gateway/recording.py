"""The last stage: build the request's one RequestRecord, when the request ends however it
ends, and hand it to every view (metrics, span, rate-limit and budget counters, the ledger)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple

from ledger.record import RequestRecord

from . import tracing
from .budgets import BudgetTracker
from .config import GatewayConfig
from .context import RequestContext
from .metrics import GatewayMetrics
from .outcome import Outcome
from .ratelimit import SharedRateLimiter

log = logging.getLogger("inferwatch.gateway")


class SpanEnd(NamedTuple):
    """What ending a request's span takes from the request besides its record."""

    span: Any
    provider: str
    max_tokens: int | None
    temperature: float | None


class Recorder:
    def __init__(
        self,
        config: GatewayConfig,
        metrics: GatewayMetrics,
        limiter: SharedRateLimiter,
        budgets: BudgetTracker,
        *,
        submit: Callable[[RequestRecord], None],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.config, self.metrics, self.limiter, self.budgets = config, metrics, limiter, budgets
        self.submit = submit  # hands the record to the ledger writer (never blocks)
        self.spawn = spawn

    def record(self, ctx: RequestContext) -> None:
        """Once per request: a second call (a stream's cleanup after its end) does nothing.
        What admits the next request (slots, rate-limit tokens, budget spend) counts when the
        response ends; safety scans left for after the response (flag-only) run next, then the
        record goes to the metrics, the span and the ledger with their findings."""
        if ctx.outcome.recorded:
            return
        ctx.outcome.recorded = True
        ctx.outcome.release()
        rec = self._build(ctx, time.perf_counter())
        if rec.total_tokens:
            self.spawn(self.limiter.add_tokens(ctx.tenant, rec.total_tokens))
        self.budgets.add(rec)  # at once: a hard budget refuses the very next request
        end = SpanEnd(
            ctx.span, ctx.outcome.provider, getattr(ctx.req, "max_tokens", None), getattr(ctx.req, "temperature", None)
        )
        if ctx.outcome.later:
            # Not the context: a record waits here for seconds under load, and the request
            # (body, messages, headers, policy) would stay alive and age into the collector's
            # oldest generation with it.
            self.spawn(self._after_scans(ctx.outcome, rec, end))
        else:
            self._publish(rec, end)

    async def _after_scans(self, outcome: Outcome, rec: RequestRecord, end: SpanEnd) -> None:
        jobs, outcome.later = outcome.later, []
        try:
            for job in jobs:
                try:
                    await job()
                except Exception:
                    log.exception("a safety scan after the response failed (request %s)", rec.request_id)
        except asyncio.CancelledError:  # shut down before the scans were done: the record goes without their findings
            log.warning("request %s recorded without its flag-only safety findings (shutdown)", rec.request_id)
            outcome.safety_unscanned = "shutdown"
        finally:
            rec.safety = list(outcome.safety)
            rec.safety_unscanned = outcome.safety_unscanned
            self._publish(rec, end)

    def _build(self, ctx: RequestContext, ended: float) -> RequestRecord:
        outcome, req, span, t0 = ctx.outcome, ctx.req, ctx.span, ctx.t0
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
            price = self.config.price_for(outcome.model_version, ctx.alias)
            cost = price.cost(outcome.prompt_tokens, outcome.completion_tokens)
        rec = RequestRecord(
            request_id=ctx.request_id,
            started_at=ctx.started_at,
            tenant=ctx.tenant,
            key_id=ctx.principal.key_id,
            operation=ctx.operation.value,
            alias=ctx.alias,
            model_version=outcome.model_version,
            upstream=outcome.upstream,
            status_code=status,
            error_type=outcome.error_type if status >= 400 else None,
            latency_s=latency,
            ttft_s=ttft,
            tpot_s=tpot,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost_usd=cost,
            stream=bool(getattr(req, "stream", False)),
            finish_reason=outcome.finish_reason,
            trace_id=tracing.trace_id_of(span) if span is not None else None,
            client_disconnected=outcome.client_disconnected,
            cache_hit=outcome.cache_hit,
            cache_lookup=outcome.cache_lookup,
            retries=outcome.retries,
            safety=outcome.safety,
            partial=outcome.partial,
            usage_estimated=outcome.usage_estimated,
            priority=ctx.priority,
            safety_unscanned=outcome.safety_unscanned,
            fallback_from=outcome.fallback_from,
            attempts=outcome.attempts,
        )
        return rec

    def _publish(self, rec: RequestRecord, end: SpanEnd) -> None:
        span = end.span
        try:
            self.metrics.observe(rec, sampled=span is not None and span.get_span_context().trace_flags.sampled)
            if span is not None:
                tracing.finish_span(span, rec, end.provider, end.max_tokens, end.temperature)
            if rec.alias:  # requests that never named a model (malformed bodies) are metrics only
                self.submit(rec)
        finally:  # in flight until its record is with the ledger writer: 0 here and a drained writer mean all written
            self.metrics.inflight.dec()
