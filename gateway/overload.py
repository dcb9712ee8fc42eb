"""Admission to a version's slots (max_parallel_requests per replica) by priority.

Interactive requests take a free slot first and wait ahead of batch ones; batch requests hold
at most `batch_share` of the slots, so an interactive arrival finds one free while a batch
flood runs, and batch requests are the ones shed (503 with Retry-After) when requests wait.
One gate per version on each gateway replica.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .config import PRIORITIES, OverloadConfig, Priority
from .deadline import Deadline
from .errors import ErrorCode, GatewayError

ShedReason = Literal["tenant_cap", "no_slot", "queue_full", "displaced", "wait_timeout", "upstream_full"]


class Shed(GatewayError):
    """A request refused for capacity; `reason` is the bounded label of the shed metric."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: ShedReason,
        priority: Priority,
        retry_after_s: int,
        code: ErrorCode = ErrorCode.OVERLOADED,
    ) -> None:
        super().__init__(status, message, code, headers={"Retry-After": str(retry_after_s)})
        self.reason, self.priority = reason, priority


@dataclass
class _Waiter:
    priority: Priority
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Slot:
    """A held slot; release it exactly once, when the request's response has ended."""

    def __init__(self, gate: "VersionGate | None", priority: Priority) -> None:
        self._gate, self.priority = gate, priority

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._release(self.priority)


class VersionGate:
    def __init__(self, version: str, capacity: Callable[[], int], config: OverloadConfig) -> None:
        self.version = version
        self.capacity = capacity  # slots now: max_parallel_requests x replicas
        self.config = config
        self.held: dict[Priority, int] = {p: 0 for p in PRIORITIES}
        self.waiting: dict[Priority, collections.deque[_Waiter]] = {p: collections.deque() for p in PRIORITIES}

    def _batch_cap(self, capacity: int) -> int:
        return max(1, math.floor(capacity * self.config.batch_share))

    def _free_for(self, priority: Priority) -> bool:
        capacity = self.capacity()
        if sum(self.held.values()) >= capacity:
            return False
        if priority == "batch":
            return self.held["batch"] < self._batch_cap(capacity) and not self.waiting["interactive"]
        return True

    def _shed(self, message: str, reason: ShedReason, priority: Priority) -> Shed:
        wait = self.config.retry_after_s
        return Shed(
            503, f"Version {self.version} is at capacity: {message}. Retry after {wait} s.", reason, priority, wait
        )

    async def acquire(self, priority: Priority, deadline: Deadline, *, wait: bool) -> Slot:
        """A slot, at once or after waiting (when `wait`); Shed when there is none in time.
        Without `wait` a full gate answers Shed(no_slot) at once: the caller has a fallback."""
        if not self.waiting[priority] and self._free_for(priority):
            self.held[priority] += 1
            return Slot(self, priority)
        max_wait = self.config.batch_max_wait_s if priority == "batch" else self.config.interactive_max_wait_s
        if not wait or max_wait <= 0:
            raise self._shed("no free slot", "no_slot", priority)
        if sum(len(q) for q in self.waiting.values()) >= self.config.max_waiting:
            if priority == "interactive" and self.waiting["batch"]:
                victim = self.waiting["batch"].pop()  # the newest batch waiter gives its place
                victim.future.set_exception(self._shed("an interactive request took its place", "displaced", "batch"))
            else:
                raise self._shed(f"{self.config.max_waiting} requests are waiting already", "queue_full", priority)
        waiter = _Waiter(priority)
        self.waiting[priority].append(waiter)
        try:
            await asyncio.wait({waiter.future}, timeout=min(max_wait, deadline.remaining()))
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        if not waiter.future.done():
            self._abandon(waiter)
            if deadline.expired():
                raise deadline.error()
            raise self._shed(f"no slot freed within {max_wait:g} s", "wait_timeout", priority)
        waiter.future.result()  # raises the Shed of a displaced waiter
        return Slot(self, priority)

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter that leaves: out of the queue, or, granted meanwhile, its slot back."""
        if waiter in self.waiting[waiter.priority]:
            self.waiting[waiter.priority].remove(waiter)
        elif waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
            self._release(waiter.priority)
        if not waiter.future.done():
            waiter.future.cancel()

    def _release(self, priority: Priority) -> None:
        self.held[priority] -= 1
        self._grant()

    def _grant(self) -> None:
        for priority in PRIORITIES:  # interactive first
            queue = self.waiting[priority]
            while queue and self._free_for(priority):
                waiter = queue.popleft()
                self.held[priority] += 1
                waiter.future.set_result(None)


class TenantConcurrency:
    """Requests in progress per tenant on this gateway replica, against each tenant's cap."""

    def __init__(self) -> None:
        self.inflight: collections.Counter[str] = collections.Counter()

    def acquire(self, tenant: str, cap: int | None, priority: Priority, retry_after_s: int) -> None:
        """Count the request in, or 429 when the tenant already has `cap` in progress."""
        if cap is not None and self.inflight[tenant] >= cap:
            raise Shed(
                429,
                f"This tenant already has {cap} requests in progress (max_concurrent_requests). "
                f"Retry after {retry_after_s} s.",
                "tenant_cap",
                priority,
                retry_after_s,
                code=ErrorCode.CONCURRENCY_LIMIT_EXCEEDED,
            )
        self.inflight[tenant] += 1

    def release(self, tenant: str) -> None:
        self.inflight[tenant] -= 1
        if self.inflight[tenant] <= 0:
            del self.inflight[tenant]


def _slots(per_replica: int, replicas: Callable[[str], int], version: str) -> int:
    return per_replica * max(1, replicas(version))


class Gates:
    """The gate of each version whose upstream sets max_parallel_requests."""

    def __init__(self, per_replica: dict[str, int], replicas: Callable[[str], int], config: OverloadConfig) -> None:
        self.gates = {
            v: VersionGate(v, functools.partial(_slots, n, replicas, v), config) for v, n in per_replica.items()
        }

    async def acquire(self, version: str, priority: Priority, deadline: Deadline, *, wait: bool) -> Slot:
        gate = self.gates.get(version)
        if gate is None:
            return Slot(None, priority)
        return await gate.acquire(priority, deadline, wait=wait)
