"""Exact-match response cache for deterministic requests.

The key is the model version that would serve the request plus the normalized request
(pydantic-validated, so defaults are filled in and key order does not matter), and the
tenant unless tenants share entries. A new version therefore never serves an old version's
answer. Entries are the response exactly as a client received it (after output safety), so
a hit needs no scan: a JSON body, or the SSE events of a stream, replayed as a stream.

In process (LRU bounded by entries and bytes, with a TTL) by default; in Redis when
`gateway.redis_url` is set, so replicas share it (Redis's maxmemory bounds the total).
"""

from __future__ import annotations

import collections
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from .config import CacheConfig
from .operations import Operation
from .shared import RedisUnavailable, SharedRedis, key

CACHEABLE_OPERATIONS = frozenset({Operation.CHAT, Operation.TEXT_COMPLETION})
_NOT_IN_KEY = {"model", "user", "stream_options"}  # model: the version stands for it; user: an end-user id


@dataclass
class CachedResponse:
    version: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    body: str | None = None  # a JSON response
    events: list[str] | None = None  # a stream: each SSE event as sent ("data: ...\n\n")

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> "CachedResponse":
        return cls(**json.loads(raw))


def deterministic(operation: str, req: Any) -> bool:
    """Temperature 0 or a given seed: the same request gets the same answer."""
    return operation in CACHEABLE_OPERATIONS and (
        getattr(req, "temperature", None) == 0 or getattr(req, "seed", None) is not None
    )


def cache_key(scope: str, version: str, operation: str, req: Any) -> str:
    """`scope` is the tenant, or '*' when tenants share entries."""
    normalized = req.model_dump(mode="json", exclude=_NOT_IN_KEY)
    normalized["include_usage"] = bool(getattr(req, "include_usage", False))  # what a stream sends depends on it
    text = json.dumps(
        {"scope": scope, "version": version, "operation": operation, "request": normalized},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def no_cache(cache_control: str | None) -> bool:
    """`Cache-Control: no-cache` (or no-store) from the client: do not answer from the cache."""
    directives = {d.strip().split("=")[0].lower() for d in (cache_control or "").split(",")}
    return bool(directives & {"no-cache", "no-store"})


class LocalCache:
    """LRU with entry and byte bounds and a TTL; used from the event loop only."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float, clock=time.monotonic) -> None:
        self.max_entries, self.max_bytes, self.ttl_s = max_entries, max_bytes, ttl_s
        self._clock = clock
        self._items: collections.OrderedDict[str, tuple[float, bytes]] = collections.OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, k: str) -> bytes | None:
        item = self._items.get(k)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._drop(k)
            return None
        self._items.move_to_end(k)
        return item[1]

    def put(self, k: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        if k in self._items:
            self._drop(k)
        self._items[k] = (self._clock() + self.ttl_s, value)
        self.bytes += len(value)
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, k: str) -> None:
        _, value = self._items.pop(k)
        self.bytes -= len(value)


class ResponseCache:
    def __init__(self, config: CacheConfig, redis: SharedRedis) -> None:
        self.config = config
        self.redis = redis
        self.local = LocalCache(config.max_entries, config.max_bytes, config.ttl_s)

    def scope(self, tenant: str) -> str:
        return "*" if self.config.shared_across_tenants else tenant

    async def get(self, k: str) -> CachedResponse | None:
        try:
            raw = await self.redis.run(lambda r: r.get(key("cache", k)))
        except RedisUnavailable:
            raw = self.local.get(k)
        return CachedResponse.decode(raw) if raw else None

    async def put(self, k: str, entry: CachedResponse) -> None:
        raw = entry.encode()
        if len(raw) > self.config.max_entry_bytes:
            return
        try:
            await self.redis.run(lambda r: r.set(key("cache", k), raw, px=int(self.config.ttl_s * 1000)))
        except RedisUnavailable:
            self.local.put(k, raw)
