"""Fallback chains: which versions a request may try, in order, and why it left each one.

A request tries its alias's version first, then each target of the alias's chain (an alias's
weighted choice, or a version). It moves on only before any byte reached the client, and only
for the reasons its chain lists; the record keeps every attempt.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.record import Attempt

from .config import FallbackChain, FallbackReason
from .errors import ErrorCode
from .routing import AliasTable

# Why a request leaves a version, read from two different inputs, so two tables:
# - the forward stage's own errors (it raised them, after its replica retries): a closed set,
#   keyed by ErrorCode;
# - an upstream's answer (`response_reason`): a status and whatever code string that server
#   writes (our worker, vLLM, another OpenAI-compatible server, another inferwatch), a vocabulary
#   that is not ours to enumerate, so it is matched as strings. They share only the result type.
_ERROR_REASONS: dict[ErrorCode, FallbackReason] = {
    ErrorCode.UPSTREAM_TIMEOUT: "timeout",
    ErrorCode.UPSTREAM_UNREACHABLE: "unavailable",
    ErrorCode.NO_HEALTHY_UPSTREAM: "unavailable",
    ErrorCode.UPSTREAM_ERROR: "server_error",
}

# Upstream error codes that mean "full, come back later" (ours, and what vLLM-style servers send).
_FULL_CODES = {"queue_full", "overloaded", "server_overloaded"}
_CONTEXT_CODES = {"context_length_exceeded", "context_window_exceeded"}


class Fallbacks:
    def __init__(self, chains: dict[str, FallbackChain], aliases: AliasTable) -> None:
        self.chains = chains
        self.aliases = aliases

    def plan(self, alias: str, first: str | None, sticky: str | None) -> list[str]:
        """The versions to try in order: `first` (the alias's choice), then the chain's targets,
        each version once."""
        versions = [first] if first else []
        chain = self.chains.get(alias)
        for target in chain.targets if chain else ():
            version: str | None = target
            if target in self.aliases:
                version = self.aliases.choose(target, sticky, exclude=frozenset(versions))
            if version and version not in versions:
                versions.append(version)
        return versions

    def allows(self, alias: str, reason: FallbackReason) -> bool:
        chain = self.chains.get(alias)
        return chain is not None and reason in chain.reasons


def error_reason(code: ErrorCode) -> FallbackReason | None:
    """Why the forward stage's error is one to fall back from (another version may not have
    it), or None for an error to answer with."""
    return _ERROR_REASONS.get(code)


def response_reason(status: int, body: bytes) -> FallbackReason | None:
    """Why an upstream's answer is one to fall back from, or None for an answer to pass on."""
    if status < 400:
        return None
    code, message = _error_of(body)
    if status == 400 and (code in _CONTEXT_CODES or "maximum context length" in message.lower()):
        return "context_window"
    if status in (429, 503) and code in _FULL_CODES:
        return "queue_full"
    if status == 504:
        return "timeout"
    return "server_error" if status >= 500 else None


def _error_of(body: bytes) -> tuple[str, str]:
    try:
        data: Any = json.loads(body)
        error = data.get("error") if isinstance(data.get("error"), dict) else data  # vLLM puts the fields at the top
        return str(error.get("code") or ""), str(error.get("message") or "")
    except (ValueError, AttributeError):
        return "", ""


def attempt(version: str, upstream: str | None, status: int | None, reason: FallbackReason | None) -> Attempt:
    return {"version": version, "upstream": upstream, "status": status, "reason": reason}
