"""The route stage's loop over a request's versions: admission to each version's slots by
priority, the context-window check, and falling back along the alias's chain until a version
answers. Every decision is made before the first byte reaches the client, so a stream is never
switched once it started."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import aiohttp

from ledger.record import Attempt

from .config import FallbackReason, Priority
from .deadline import Deadline
from .errors import GatewayError, no_healthy_upstream
from .fallbacks import Fallbacks, attempt, error_reason, response_reason
from .metrics import GatewayMetrics
from .outcome import Outcome
from .overload import Gates, Shed
from .upstreams import Replica

Send = Callable[[str], Awaitable[tuple[aiohttp.ClientResponse, Replica]]]


class Failover:
    def __init__(
        self, fallbacks: Fallbacks, gates: Gates, windows: Callable[[str], int | None], metrics: GatewayMetrics
    ) -> None:
        self.fallbacks, self.gates, self.windows, self.metrics = fallbacks, gates, windows, metrics

    async def forward(
        self,
        alias: str,
        first: str | None,
        sticky: str | None,
        *,
        tenant: str,
        priority: Priority,
        deadline: Deadline,
        prompt_estimate: int,
        outcome: Outcome,
        send: Send,
    ) -> tuple[aiohttp.ClientResponse, Replica]:
        """The response of the first version that answers (headers read). The slot it holds is
        released with `outcome.release()`, when the response has ended."""
        plan = self.fallbacks.plan(alias, first, sticky)
        attempts: list[Attempt] = []
        try:
            for i, version in enumerate(plan):
                if i and deadline.expired():
                    raise deadline.error()
                last = i == len(plan) - 1
                falls_back = functools.partial(self._falls_back, alias, plan, i, deadline)
                window = self.windows(version)
                if window is not None and prompt_estimate > window and falls_back("context_window"):
                    attempts.append(attempt(version, None, None, "context_window"))
                    continue
                try:
                    wait = last or not self.fallbacks.allows(alias, "queue_full")  # else: no slot, next version
                    slot = await self.gates.acquire(version, priority, deadline, wait=wait)
                except Shed:
                    if not falls_back("queue_full"):
                        raise
                    attempts.append(attempt(version, None, None, "queue_full"))
                    continue
                try:
                    resp, replica = await send(version)
                except GatewayError as e:
                    slot.release()
                    reason = error_reason(e.code)
                    attempts.append(attempt(version, None, None, reason))
                    if falls_back(reason):
                        continue
                    raise
                reason = response_reason(resp.status, await _error_body(resp)) if resp.status >= 400 else None
                if falls_back(reason):
                    resp.release()
                    slot.release()
                    attempts.append(attempt(version, replica.url, resp.status, reason))
                    continue
                if reason == "queue_full":  # the last version's worker is full too: shed, as the gate would
                    self.metrics.shed.labels(tenant, priority, "upstream_full").inc()
                attempts.append(attempt(version, replica.url, resp.status, None))
                outcome.releases.append(slot.release)
                return resp, replica
            raise no_healthy_upstream(alias)
        finally:
            if len(attempts) > 1:
                outcome.attempts = attempts
            if attempts and outcome.model_version not in (None, attempts[0]["version"]):
                outcome.fallback_from = attempts[0]["version"]

    def _falls_back(
        self, alias: str, plan: list[str], i: int, deadline: Deadline, reason: FallbackReason | None
    ) -> bool:
        """Whether the request leaves plan[i] for plan[i + 1] for `reason` (never past its
        deadline); counted when it does."""
        if reason is None or i == len(plan) - 1 or deadline.expired() or not self.fallbacks.allows(alias, reason):
            return False
        self.metrics.fallbacks.labels(alias, plan[i], plan[i + 1], reason).inc()
        return True


async def _error_body(resp: aiohttp.ClientResponse) -> bytes:
    """An error answer's body (small; aiohttp keeps it for the stage that passes it on)."""
    try:
        return await resp.read()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return b""
