"""The admission gate of a version's slots: interactive first, batch capped and shed first."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import OverloadConfig
from gateway.deadline import Deadline
from gateway.errors import GatewayError
from gateway.overload import Gates, Shed, TenantConcurrency, VersionGate

FAR = Deadline.start(None, None, 3600)


def gate(capacity: int = 4, **cfg: float) -> VersionGate:
    return VersionGate("v@1", lambda: capacity, OverloadConfig(**cfg))


async def waiting(g: VersionGate, priority: str, n: int) -> None:
    """Until `n` requests of `priority` wait (polls the loop, never the clock)."""
    for _ in range(10_000):
        if len(g.waiting[priority]) == n:  # type: ignore[index]
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{n} {priority} waiters never queued")


async def test_batch_holds_at_most_its_share_and_interactive_takes_the_rest():
    g = gate(4, batch_share=0.5)
    batch = [await g.acquire("batch", FAR, wait=False) for _ in range(2)]
    with pytest.raises(Shed) as refused:
        await g.acquire("batch", FAR, wait=False)
    e = refused.value
    assert (e.status, e.reason, e.headers["Retry-After"]) == (503, "no_slot", "2")
    interactive = [await g.acquire("interactive", FAR, wait=False) for _ in range(2)]
    assert g.held == {"interactive": 2, "batch": 2}
    for s in batch + interactive:
        s.release()
    assert g.held == {"interactive": 0, "batch": 0}


async def test_a_freed_slot_goes_to_a_waiting_interactive_request_before_a_waiting_batch_one():
    g = gate(2, batch_share=1.0)
    held = [await g.acquire("batch", FAR, wait=False) for _ in range(2)]
    batch = asyncio.ensure_future(g.acquire("batch", FAR, wait=True))
    await waiting(g, "batch", 1)
    interactive = asyncio.ensure_future(g.acquire("interactive", FAR, wait=True))
    await waiting(g, "interactive", 1)
    held[0].release()
    slot = await interactive
    assert not batch.done() and g.held == {"interactive": 1, "batch": 1}
    slot.release()
    (await batch).release()
    held[1].release()
    assert g.held == {"interactive": 0, "batch": 0}


async def test_a_full_queue_sheds_the_newest_batch_waiter_for_an_interactive_arrival():
    g = gate(1, max_waiting=2)
    held = await g.acquire("interactive", FAR, wait=False)
    first = asyncio.ensure_future(g.acquire("batch", FAR, wait=True))
    second = asyncio.ensure_future(g.acquire("batch", FAR, wait=True))
    await waiting(g, "batch", 2)
    interactive = asyncio.ensure_future(g.acquire("interactive", FAR, wait=True))
    with pytest.raises(Shed) as shed:
        await second
    assert shed.value.reason == "displaced" and shed.value.priority == "batch"
    await waiting(g, "interactive", 1)
    with pytest.raises(Shed) as refused:  # the queue is full of requests that outrank a batch one
        await g.acquire("batch", FAR, wait=True)
    assert refused.value.reason == "queue_full"
    held.release()
    (await interactive).release()
    (await first).release()
    assert g.held == {"interactive": 0, "batch": 0} and not any(g.waiting.values())


async def test_a_batch_request_that_waits_too_long_is_shed_and_leaves_the_queue():
    g = gate(1, batch_max_wait_s=0.05)
    held = await g.acquire("interactive", FAR, wait=False)
    with pytest.raises(Shed) as shed:
        await g.acquire("batch", FAR, wait=True)
    assert shed.value.reason == "wait_timeout" and not g.waiting["batch"]
    held.release()
    assert g.held == {"interactive": 0, "batch": 0}


async def test_a_waiter_whose_deadline_passes_gets_504_not_a_shed():
    g = gate(1)
    held = await g.acquire("interactive", FAR, wait=False)
    with pytest.raises(GatewayError) as late:
        await g.acquire("interactive", Deadline.start("0.05", None, 3600), wait=True)
    assert not isinstance(late.value, Shed)
    assert (late.value.status, late.value.error_type) == (504, "deadline_exceeded")
    held.release()


async def test_a_cancelled_waiter_gives_back_a_slot_granted_to_it_meanwhile():
    g = gate(1)
    held = await g.acquire("interactive", FAR, wait=False)
    waiter = asyncio.ensure_future(g.acquire("interactive", FAR, wait=True))
    await waiting(g, "interactive", 1)
    held.release()  # grants the slot to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert g.held == {"interactive": 0, "batch": 0}


async def test_a_slot_is_released_once_however_often_release_is_called():
    g = gate(1)
    slot = await g.acquire("interactive", FAR, wait=False)
    slot.release()
    slot.release()
    assert g.held["interactive"] == 0


async def test_capacity_follows_the_healthy_replicas_and_versions_without_a_limit_are_not_gated():
    healthy = {"v@1": 2}
    gates = Gates({"v@1": 1}, lambda v: healthy[v], OverloadConfig(batch_share=1.0))
    slots = [await gates.acquire("v@1", "batch", FAR, wait=False) for _ in range(2)]
    with pytest.raises(Shed):
        await gates.acquire("v@1", "batch", FAR, wait=False)
    free = [await gates.acquire("other@1", "batch", FAR, wait=False) for _ in range(100)]
    for s in slots + free:
        s.release()
    assert gates.gates["v@1"].held["batch"] == 0


def test_a_tenant_over_its_concurrency_cap_gets_429_with_retry_after():
    c = TenantConcurrency()
    c.acquire("acme", 2, "interactive", 1)
    c.acquire("acme", 2, "interactive", 1)
    c.acquire("globex", None, "interactive", 1)
    with pytest.raises(Shed) as refused:
        c.acquire("acme", 2, "batch", 1)
    e = refused.value
    assert (e.status, e.code, e.reason) == (429, "concurrency_limit_exceeded", "tenant_cap")
    assert e.headers["Retry-After"] == "1"
    c.release("acme")
    c.acquire("acme", 2, "interactive", 1)
    assert c.inflight["acme"] == 2
