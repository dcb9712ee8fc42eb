"""What the upstream exchange produced for one request, and how streamed chunks update it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.record import Attempt, ErrorType, SafetyHit

from .errors import ErrorCode


@dataclass
class Outcome:
    """What the upstream exchange produced; becomes part of the record."""

    status: int = 0
    error_type: ErrorType | None = None
    model_version: str | None = None
    upstream: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None  # a response that ended early: when its last output arrived
    partial: bool = False  # ended early: the counts are of what was delivered until then
    usage_estimated: bool = False  # the counts are the gateway's (the upstream reported none)
    retries: int = 0
    client_disconnected: bool = False
    provider: str = "inferwatch"
    recorded: bool = False
    later: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # flag-only scans, run before the record
    cache_hit: bool = False  # answered from the response cache
    cache_lookup: bool = False  # the response cache was asked (hit or miss)
    safety: list[SafetyHit] = field(default_factory=list)
    safety_unscanned: str | None = None  # why the deferred classifier scans skipped a text (overload, ...)
    fallback_from: str | None = None  # the version first chosen, when another one answered
    attempts: list[Attempt] | None = None  # every version tried, when more than one was
    releases: list[Callable[[], None]] = field(default_factory=list)  # slots held until the response ends

    def release(self) -> None:
        """Give back what the request held (its version's slot, its tenant's concurrency)."""
        while self.releases:
            self.releases.pop()()

    def client_left(self) -> None:
        """The client closed the connection before its answer was complete."""
        self.status, self.error_type, self.client_disconnected = 499, ErrorType.CLIENT_DISCONNECT, True


def observe(chunk: Any, outcome: Outcome, mark_first: bool = True) -> bool:
    if not isinstance(chunk, dict):
        return True
    if "error" in chunk:
        error = chunk["error"] if isinstance(chunk["error"], dict) else {}
        if error.get("code") == ErrorCode.DEADLINE_EXCEEDED:  # the worker (ours) stopped at the request's deadline
            outcome.status, outcome.error_type = 504, ErrorType.DEADLINE_EXCEEDED
        else:
            outcome.status, outcome.error_type = 502, ErrorType.UPSTREAM_ERROR
        return True
    usage = chunk.get("usage")
    if usage:
        outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
    choices = chunk.get("choices") or []
    if not choices:
        return not usage
    c = choices[0]
    text = (c.get("delta") or {}).get("content") if "delta" in c else c.get("text")
    if mark_first and text and outcome.first_token_at is None:
        outcome.first_token_at = time.perf_counter()
    if c.get("finish_reason"):
        outcome.finish_reason = c["finish_reason"]
    return True
