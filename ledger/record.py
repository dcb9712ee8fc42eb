"""The one record of a request, built once when the request ends.

Metrics, spans and ledger rows are all views of a `RequestRecord`; none is computed from another.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, TypedDict


def status_class(status_code: int) -> str:
    """'2xx', '4xx', '5xx' ... the bounded label used in metrics and rollups."""
    return f"{status_code // 100}xx"


class ErrorType(StrEnum):
    """Why a request failed, as recorded: the `error_type` of its ledger row and of the
    `inferwatch_requests_total` metric. A contract (dashboards, alert rules and the console's
    filter select on these values, pinned by tests/ledger/test_record.py): add, never rename."""

    INVALID_REQUEST = "invalid_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    AUTH_UNAVAILABLE = "auth_unavailable"
    REQUEST_TOO_LARGE = "request_too_large"
    MODEL_NOT_FOUND = "model_not_found"
    PROMPT_TOO_LONG = "prompt_too_long"
    CONTENT_POLICY_VIOLATION = "content_policy_violation"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXCEEDED = "budget_exceeded"
    OVERLOADED = "overloaded"
    NO_HEALTHY_UPSTREAM = "no_healthy_upstream"
    TIMEOUT = "timeout"  # the upstream did not answer in time (its fault, not the request's deadline)
    DEADLINE_EXCEEDED = "deadline_exceeded"  # the request's own deadline passed
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_REJECTED = "upstream_rejected"  # the upstream answered 4xx
    UPSTREAM_BAD_RESPONSE = "upstream_bad_response"
    UPSTREAM_DISCONNECTED = "upstream_disconnected"
    CLIENT_DISCONNECT = "client_disconnect"
    INTERNAL_ERROR = "internal_error"


@dataclass(slots=True)
class SafetyHit:
    direction: str  # "input" | "output"
    category: str
    scanner: str
    action: str  # "block" | "redact" | "flag"
    score: float = 1.0
    excerpt: str | None = None  # redacted excerpt only, never raw content


class Attempt(TypedDict):
    """One version a request was sent to (or meant for), in order; the last one answered."""

    version: str
    upstream: str | None  # the replica's URL; None when it was never sent (no slot, no replica, prompt too long)
    status: int | None  # the upstream's HTTP status; None when it was never sent or did not answer
    reason: str | None  # why the request left it (gateway.config.FallbackReason); None for the one that answered


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    started_at: datetime
    tenant: str
    key_id: str | None
    operation: str  # "chat" | "text_completion" | "embeddings"
    alias: str  # the model name the client asked for
    model_version: str | None  # the immutable version that served it (None if never routed)
    upstream: str | None  # base URL of the upstream that served it
    status_code: int
    error_type: ErrorType | None = None
    latency_s: float = 0.0  # end to end, as the client saw it
    ttft_s: float | None = None  # time to first token (streaming and non-streaming)
    tpot_s: float | None = None  # (latency - ttft) / (completion_tokens - 1)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    stream: bool = False
    finish_reason: str | None = None
    safety: list[SafetyHit] = field(default_factory=list)
    trace_id: str | None = None
    client_disconnected: bool = False
    cache_hit: bool = False
    cache_lookup: bool = False  # the response cache was asked (hit or miss): a hit rate's denominator
    retries: int = 0
    # ended early (upstream failure, timeout, block, client gone): counts, TTFT, TPOT are of what was delivered
    partial: bool = False
    usage_estimated: bool = (
        False  # the token counts are the gateway's estimate: the upstream reported no usage for them
    )
    priority: str = "interactive"  # "interactive" | "batch"
    fallback_from: str | None = None  # the version first chosen, when another one (model_version) answered
    attempts: list[Attempt] | None = None  # every version tried, in order, when more than one was
    # why the classifier's flag-only scans left for after the response did not read a text of
    # it: "overload" (skipped, its queue full), "scan_failed" (its process died), "shutdown";
    # None: they ran, or none were due. The rule scanners' findings are in `safety` either way.
    safety_unscanned: str | None = None

    def __post_init__(self) -> None:
        if self.cache_hit:
            self.cache_lookup = True  # a hit was a lookup, whoever built the record
        if self.error_type is not None:  # a row or a spooled line gives the plain string back
            self.error_type = ErrorType(self.error_type)

    @property
    def status_class(self) -> str:
        return status_class(self.status_code)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["started_at"] = self.started_at.astimezone(timezone.utc).isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RequestRecord":
        """The record of a spooled line. A field this version does not know (a newer one wrote
        the line, then was rolled back) is dropped: this version's schema has no place for it,
        and the rest of the record is kept."""
        d = _known(cls, d)
        d["started_at"] = datetime.fromisoformat(d["started_at"])
        d["safety"] = [SafetyHit(**_known(SafetyHit, h)) for h in d.get("safety") or []]
        return cls(**d)


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in d.items() if k in names}
