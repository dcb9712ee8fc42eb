"""The admission stage: whether a parsed request may go on, before anything is sent upstream.
Its checks run in this order: the model exists, the prompt fits the tenant's limit, the rate
limits and the budgets allow it. Each refusal is an OpenAI-format error (404, 400, 429)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from .budgets import BudgetTracker
from .config import GatewayConfig, Limits
from .context import RequestContext
from .errors import GatewayError
from .metrics import GatewayMetrics
from .parse import estimate_tokens, prompt_text
from .ratelimit import Decision, SharedRateLimiter, retry_after_header
from .routing import AliasTable
from .state import GovernanceStore
from .tenant_policy import TenantPolicy, policy_from


class Admission:
    def __init__(self, config: GatewayConfig, store: GovernanceStore, aliases: AliasTable, limiter: SharedRateLimiter,
                 budgets: BudgetTracker, metrics: GatewayMetrics, clock: Callable[[], datetime]) -> None:
        self.config, self.store, self.aliases = config, store, aliases
        self.limiter, self.budgets, self.metrics, self.clock = limiter, budgets, metrics, clock
        self._tenant_cache: dict[str, tuple[float, TenantPolicy]] = {}
        self._store_content: dict[str, bool] = {}  # tenant opted in to storing (redacted) content

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
        policy = policy_from(settings, self.config)
        self._tenant_cache[tenant] = (now, policy)
        if settings is not None or tenant not in self._store_content:
            self._store_content[tenant] = policy.store_content
        return policy

    def forget(self, tenant: str) -> None:
        """Apply a settings change made through this replica at once (others within key_cache_ttl_s)."""
        self._tenant_cache.pop(tenant, None)

    def store_content(self, tenant: str) -> bool:
        return self._store_content.get(tenant, False)

    async def admit(self, ctx: RequestContext) -> None:
        """Raise the refusal, or set what the later stages need: the alias, the prompt
        estimate and the rate-limit headers."""
        assert ctx.policy is not None
        limits, tenant = ctx.policy.limits, ctx.tenant
        model = ctx.req.model
        if model not in self.aliases:  # not recorded under the client's string: labels stay bounded
            message = f"The model '{model}' does not exist. GET /v1/models lists the models you can use."
            raise GatewayError(404, message, "model_not_found", param="model")
        ctx.alias = model
        est = ctx.prompt_estimate = estimate_tokens(prompt_text(ctx.operation, ctx.req))
        if est > limits.max_prompt_tokens:
            message = f"The prompt has about {est} tokens; this tenant's limit is {limits.max_prompt_tokens}."
            raise GatewayError(400, message, "prompt_too_long", param="messages")
        decision = await self.limiter.check(tenant, limits.rpm, limits.tpm, est)
        ctx.headers = ratelimit_headers(limits, decision)
        if not decision.allowed:
            self.metrics.rate_limited.labels(tenant, decision.limit_name).inc()
            limit = limits.rpm if decision.limit_name == "requests" else limits.tpm
            wait = retry_after_header(decision.retry_after_s)
            message = f"Rate limit reached for {decision.limit_name} per minute ({limit}). Retry after {wait} s."
            raise GatewayError(429, message, "rate_limit_exceeded", error_type="rate_limited",
                               headers={"Retry-After": wait, **ctx.headers})
        if ctx.policy.budgets:
            refused = await self.budgets.check(tenant, ctx.principal.key_id, ctx.policy.budgets)
            if refused is not None:
                self.metrics.rate_limited.labels(tenant, "budget").inc()
                wait = retry_after_header((refused.period.end - self.clock()).total_seconds())
                raise GatewayError(429, refused.refusal(), "budget_exceeded", error_type="budget_exceeded",
                                   headers={"Retry-After": wait, **ctx.headers})


def ratelimit_headers(limits: Limits, d: Decision) -> dict[str, str]:
    h = {}
    if limits.rpm is not None:
        h["x-ratelimit-limit-requests"] = str(limits.rpm)
        h["x-ratelimit-remaining-requests"] = str(d.remaining_requests)
    if limits.tpm is not None:
        h["x-ratelimit-limit-tokens"] = str(limits.tpm)
        h["x-ratelimit-remaining-tokens"] = str(d.remaining_tokens)
    return h
