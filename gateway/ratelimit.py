"""Per-tenant requests-per-minute and tokens-per-minute limits.

Sliding one-minute windows kept in process. Each gateway replica enforces its own share;
limits shared across replicas need a shared store (Redis), which this interface allows.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass


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
    def __init__(self, clock=time.monotonic) -> None:  # noqa: ANN001 - injectable for tests
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, SlidingWindow] = collections.defaultdict(SlidingWindow)
        self._tokens: dict[str, SlidingWindow] = collections.defaultdict(SlidingWindow)

    def check(self, tenant: str, rpm: int | None, tpm: int | None, estimated_tokens: int) -> Decision:
        """Admit one request (counting it) or say which limit refuses it and for how long."""
        now = self._clock()
        with self._lock:
            req, tok = self._requests[tenant], self._tokens[tenant]
            used_req, used_tok = req.used(now), tok.used(now)
            if rpm is not None and used_req + 1 > rpm:
                return Decision(False, "requests", req.retry_after(now, rpm, 1), 0, _left(tpm, used_tok))
            if tpm is not None and used_tok + estimated_tokens > tpm:
                wait = tok.retry_after(now, tpm, min(estimated_tokens, tpm))
                return Decision(False, "tokens", wait, _left(rpm, used_req), 0)
            req.add(now, 1)
            return Decision(True, remaining_requests=_left(rpm, used_req + 1), remaining_tokens=_left(tpm, used_tok))

    def add_tokens(self, tenant: str, tokens: int) -> None:
        """Count the tokens a request really used, once it is known."""
        with self._lock:
            self._tokens[tenant].add(self._clock(), tokens)


def _left(limit: int | None, used: int) -> int | None:
    return None if limit is None else max(0, limit - used)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
