"""Per-tenant requests-per-minute and tokens-per-minute limits.

Exact sliding one-minute windows. In process by default (each replica enforces the whole
limit on its own); with `gateway.redis_url` the windows live in Redis, updated atomically
by a Lua script, so all replicas enforce one limit together. When Redis fails the local
windows take over (logged) until it answers again.
"""

from __future__ import annotations

import collections
import math
import threading
import time
import uuid
from dataclasses import dataclass

from .shared import RedisUnavailable, SharedRedis, key


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit_name: str = ""  # "requests" or "tokens" when refused
    retry_after_s: float = 0.0
    remaining_requests: int | None = None
    remaining_tokens: int | None = None


class SlidingWindow:
    """Sum of amounts added in the last `window_s` seconds."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self.events: collections.deque[tuple[float, int]] = collections.deque()
        self.total = 0

    def _expire(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.window_s:
            self.total -= self.events.popleft()[1]

    def used(self, now: float) -> int:
        self._expire(now)
        return self.total

    def add(self, now: float, amount: int) -> None:
        if amount:
            self.events.append((now, amount))
            self.total += amount

    def retry_after(self, now: float, limit: int, want: int) -> float:
        """Seconds until `want` more fits under `limit`."""
        excess = self.total + want - limit
        for t, amount in self.events:
            excess -= amount
            if excess <= 0:
                return max(0.0, t + self.window_s - now)
        return self.window_s


class RateLimiter:
    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, SlidingWindow] = collections.defaultdict(SlidingWindow)
        self._tokens: dict[str, SlidingWindow] = collections.defaultdict(SlidingWindow)
        # An unlimited dimension keeps no events: at 1,000+ rps a window holds tens of MB.
        self._counts_tokens: dict[str, bool] = {}

    def check(self, tenant: str, rpm: int | None, tpm: int | None, estimated_tokens: int) -> Decision:
        """Admit one request (counting it) or say which limit refuses it and for how long."""
        now = self._clock()
        with self._lock:
            req, tok = self._requests[tenant], self._tokens[tenant]
            self._counts_tokens[tenant] = tpm is not None
            used_req, used_tok = req.used(now), tok.used(now)
            if rpm is not None and used_req + 1 > rpm:
                return Decision(False, "requests", req.retry_after(now, rpm, 1), 0, _left(tpm, used_tok))
            if tpm is not None and used_tok + estimated_tokens > tpm:
                wait = tok.retry_after(now, tpm, min(estimated_tokens, tpm))
                return Decision(False, "tokens", wait, _left(rpm, used_req), 0)
            if rpm is not None:
                req.add(now, 1)
            return Decision(True, remaining_requests=_left(rpm, used_req + 1), remaining_tokens=_left(tpm, used_tok))

    def add_tokens(self, tenant: str, tokens: int) -> None:
        """Count the tokens a request really used, once it is known."""
        with self._lock:
            if self._counts_tokens.get(tenant, True):
                self._tokens[tenant].add(self._clock(), tokens)


# KEYS: request zset, token zset, token total. Token members are "<uid>:<amount>", so the
# total can be decremented exactly when they leave the window. Time is Redis's own, so
# replicas with skewed clocks share one window.
_EXPIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local cutoff = now - window
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
if #old > 0 then
  local s = 0
  for _, m in ipairs(old) do s = s + tonumber(string.match(m, ':(%d+)$')) end
  redis.call('DECRBY', KEYS[3], s)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
end
"""
_CHECK = (
    _EXPIRE
    + """
local rpm, tpm, want = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local used_req = redis.call('ZCARD', KEYS[1])
local used_tok = tonumber(redis.call('GET', KEYS[3]) or '0')
if rpm >= 0 and used_req + 1 > rpm then
  local e = redis.call('ZRANGE', KEYS[1], used_req - rpm, used_req - rpm, 'WITHSCORES')
  return {0, 1, tonumber(e[2]) + window - now, 0, used_tok}
end
if tpm >= 0 and used_tok + want > tpm then
  local excess = used_tok + math.min(want, tpm) - tpm
  local items = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local wait = window
  for i = 1, #items, 2 do
    excess = excess - tonumber(string.match(items[i], ':(%d+)$'))
    if excess <= 0 then wait = tonumber(items[i + 1]) + window - now break end
  end
  return {0, 2, wait, used_req, used_tok}
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0, 0, used_req + 1, used_tok}
"""
)
_ADD_TOKENS = (
    _EXPIRE
    + """
redis.call('ZADD', KEYS[2], now, ARGV[2] .. ':' .. ARGV[3])
redis.call('INCRBY', KEYS[3], tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], window)
redis.call('PEXPIRE', KEYS[3], window)
return 1
"""
)


class SharedRateLimiter:
    """The limiter the gateway uses: Redis windows when configured and reachable, else local."""

    def __init__(self, redis: SharedRedis, window_s: float = 60.0) -> None:
        self.redis = redis
        self.local = RateLimiter()
        self.window_ms = int(window_s * 1000)
        self._check_script = self._add_script = None

    def _keys(self, tenant: str) -> list[str]:
        return [key("rl", tenant, "req"), key("rl", tenant, "tok"), key("rl", tenant, "toktotal")]

    async def check(self, tenant: str, rpm: int | None, tpm: int | None, estimated_tokens: int) -> Decision:
        if self.redis.url is None:
            return self.local.check(tenant, rpm, tpm, estimated_tokens)
        if rpm is None and tpm is None:
            return Decision(True)
        try:
            allowed, which, wait_ms, used_req, used_tok = await self.redis.run(
                lambda r: self._script(r, "check")(
                    keys=self._keys(tenant),
                    args=[
                        self.window_ms,
                        -1 if rpm is None else rpm,
                        -1 if tpm is None else tpm,
                        estimated_tokens,
                        uuid.uuid4().hex,
                    ],
                )
            )
        except RedisUnavailable:
            return self.local.check(tenant, rpm, tpm, estimated_tokens)
        used_req, used_tok = int(used_req), int(used_tok)
        if allowed:
            return Decision(True, remaining_requests=_left(rpm, used_req), remaining_tokens=_left(tpm, used_tok))
        if which == 1:
            return Decision(False, "requests", max(0.0, int(wait_ms) / 1000), 0, _left(tpm, used_tok))
        return Decision(False, "tokens", max(0.0, int(wait_ms) / 1000), _left(rpm, used_req), 0)

    async def add_tokens(self, tenant: str, tokens: int) -> None:
        if tokens <= 0:
            return
        try:
            await self.redis.run(
                lambda r: self._script(r, "add")(
                    keys=self._keys(tenant), args=[self.window_ms, uuid.uuid4().hex, tokens]
                )
            )
        except RedisUnavailable:
            self.local.add_tokens(tenant, tokens)

    def _script(self, r, which: str):
        if which == "check":
            if self._check_script is None:
                self._check_script = r.register_script(_CHECK)
            return self._check_script
        if self._add_script is None:
            self._add_script = r.register_script(_ADD_TOKENS)
        return self._add_script


def _left(limit: int | None, used: int) -> int | None:
    return None if limit is None else max(0, limit - used)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
