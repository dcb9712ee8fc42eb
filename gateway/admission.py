"""The admission stage: whether a parsed request may go on, before anything is sent upstream.
Its checks run in this order: the model exists, the priority and timeout headers are valid, the
prompt fits the tenant's limit, the rate limits and the budgets allow it, the tenant has a
request to spare under its concurrency cap. Each refusal is an OpenAI-format error (404, 400,
403, 429)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from ledger.governance import GovernanceStore
from ledger.models import TenantSettings

from .budgets import BudgetTracker
from .config import GatewayConfig, Limits
from .context import RequestContext
from .deadline import TIMEOUT_HEADER, Deadline
from .errors import ErrorCode, GatewayError
from .metrics import GatewayMetrics
from .overload import TenantConcurrency
from .parse import estimate_tokens, prompt_text
from .priority import PRIORITY_HEADER, priority_of
from .ratelimit import Decision, SharedRateLimiter, retry_after_header
from .routing import AliasTable
from .tenant_policy import TenantPolicy, policy_from


class Admission:
    def __init__(
        self,
        config: GatewayConfig,
        store: GovernanceStore,
        aliases: AliasTable,
        limiter: SharedRateLimiter,
        budgets: BudgetTracker,
        metrics: GatewayMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.config, self.store, self.aliases = config, store, aliases
        self.limiter, self.budgets, self.metrics, self.clock = limiter, budgets, metrics, clock
        self._tenant_cache: dict[str, tuple[float, TenantPolicy]] = {}
        self._store_content: dict[str, bool] = {}  # tenant opted in to storing (redacted) content
        self.concurrency = TenantConcurrency()

    async def policy(self, tenant: str) -> TenantPolicy:
        """The tenant's settings, re-read from the database after key_cache_ttl_s."""
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
        policy = policy_from(TenantSettings.parse(settings), self.config)
        self._tenant_cache[tenant] = (now, policy)
        if settings is not None or tenant not in self._store_content:
            self._store_content[tenant] = policy.store_content
        return policy

    def forget(self, tenant: str) -> None:
        """Apply a settings change made through this replica at once (others within key_cache_ttl_s)."""
        self._tenant_cache.pop(tenant, None)

    def store_content(self, tenant: str) -> bool:
        return self._store_content.get(tenant, False)

    async def admit(self, ctx: RequestContext, headers: Mapping[str, str]) -> None:
        """Raise the refusal, or set what the later stages need: the alias, the priority and
        deadline, the prompt estimate and the rate-limit headers."""
        assert ctx.policy is not None
        limits, tenant = ctx.policy.limits, ctx.tenant
        model = ctx.req.model
        if model not in self.aliases:  # not recorded under the client's string: labels stay bounded
            message = f"The model '{model}' does not exist. GET /v1/models lists the models you can use."
            raise GatewayError(404, message, ErrorCode.MODEL_NOT_FOUND, param="model")
        ctx.alias = model
        ctx.priority = priority_of(headers.get(PRIORITY_HEADER), ctx.policy.priority)
        ctx.deadline = Deadline.start(
            headers.get(TIMEOUT_HEADER), ctx.policy.timeout_s, self.config.request_timeout_s, now=ctx.t0
        )
        est = ctx.prompt_estimate = estimate_tokens(prompt_text(ctx.operation, ctx.req))
        if est > limits.max_prompt_tokens:
            message = f"The prompt has about {est} tokens; this tenant's limit is {limits.max_prompt_tokens}."
            raise GatewayError(400, message, ErrorCode.PROMPT_TOO_LONG, param="messages")
        decision = await self.limiter.check(tenant, limits.rpm, limits.tpm, est)
        ctx.headers = ratelimit_headers(limits, decision)
        if not decision.allowed:
            self.metrics.rate_limited.labels(tenant, decision.limit_name).inc()
            limit = limits.rpm if decision.limit_name == "requests" else limits.tpm
            wait = retry_after_header(decision.retry_after_s)
            message = f"Rate limit reached for {decision.limit_name} per minute ({limit}). Retry after {wait} s."
            raise GatewayError(
                429,
                message,
                ErrorCode.RATE_LIMIT_EXCEEDED,
                headers={"Retry-After": wait, **ctx.headers},
            )
        if ctx.policy.budgets:
            refused = await self.budgets.check(tenant, ctx.principal.key_id, ctx.policy.budgets)
            if refused is not None:
                self.metrics.rate_limited.labels(tenant, "budget").inc()
                wait = retry_after_header((refused.period.end - self.clock()).total_seconds())
                raise GatewayError(
                    429,
                    refused.refusal(),
                    ErrorCode.BUDGET_EXCEEDED,
                    headers={"Retry-After": wait, **ctx.headers},
                )
        self.concurrency.acquire(tenant, limits.max_concurrent_requests, ctx.priority, retry_after_s=1)
        ctx.outcome.releases.append(lambda: self.concurrency.release(tenant))  # when the request is recorded


def ratelimit_headers(limits: Limits, d: Decision) -> dict[str, str]:
    h = {}
    if limits.rpm is not None:
        h["x-ratelimit-limit-requests"] = str(limits.rpm)
        h["x-ratelimit-remaining-requests"] = str(d.remaining_requests)
    if limits.tpm is not None:
        h["x-ratelimit-limit-tokens"] = str(limits.tpm)
        h["x-ratelimit-remaining-tokens"] = str(d.remaining_tokens)
    return h
