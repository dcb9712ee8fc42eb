"""The Redis that gateway replicas share (rate limits, budget counters, cache), with a clear
fallback: when it fails, callers use their in-process state for `retry_s`, then try again."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("inferwatch.gateway")
T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis is not configured, or failed recently: use the local fallback."""


class SharedRedis:
    def __init__(
        self, url: str | None, retry_s: float, on_state: Callable[[bool], None] | None = None, timeout_s: float = 0.5
    ) -> None:
        self.url = url
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self._on_state = on_state or (lambda up: None)
        self._client: aioredis.Redis | None = None
        self._down_until = 0.0
        self.up = url is not None

    def client(self) -> aioredis.Redis:
        if self._client is None:  # made on first use, inside the serving event loop
            assert self.url is not None
            self._client = aioredis.Redis.from_url(
                self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
            )
        return self._client

    async def run(self, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """`fn(client)`, or RedisUnavailable when Redis is not usable right now."""
        if self.url is None or time.monotonic() < self._down_until:
            raise RedisUnavailable
        try:
            result = await fn(self.client())
        except (RedisError, OSError) as exc:
            self._down_until = time.monotonic() + self.retry_s
            if self.up:
                log.warning(
                    "Redis at %s failed (%s: %s): using this replica's local limits, budgets and cache for %.0f s",
                    self.url,
                    type(exc).__name__,
                    exc,
                    self.retry_s,
                )
                self.up = False
                self._on_state(False)
            raise RedisUnavailable from exc
        if not self.up:
            log.info("Redis at %s is back: shared limits, budgets and cache again", self.url)
            self.up = True
            self._on_state(True)
        return result

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def key(*parts: Any) -> str:
    return "iw:" + ":".join(str(p) for p in parts)
