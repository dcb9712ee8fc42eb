"""What the gateway runs beside its requests: work left for after a response, and periodic
jobs that must keep running whatever one round raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("inferwatch.gateway")


class Background:
    def __init__(self) -> None:
        self._after: set[asyncio.Task] = set()
        self._jobs: list[asyncio.Task] = []

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` after the response, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._after.add(task)
        task.add_done_callback(self._after.discard)

    def every(self, seconds: float, fn: Callable[[], Awaitable[Any]]) -> None:
        self._jobs.append(asyncio.create_task(self._repeat(seconds, fn)))

    async def stop(self, after_s: float = 30) -> None:
        """Cancel the jobs; give work after responses (records waiting for their flag-only
        safety scans among it) `after_s` to finish, then cancel what is left, which still
        writes its record."""
        for t in self._jobs:
            t.cancel()
        if self._after:
            _, late = await asyncio.wait(self._after, timeout=after_s)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=5)

    @staticmethod
    async def _repeat(seconds: float, fn: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))
