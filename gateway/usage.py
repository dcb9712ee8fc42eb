"""Token accounting of one streamed response, also when it ends early.

Every upstream is asked for running usage (vLLM's `stream_options: {"include_usage": true,
"continuous_usage_stats": true}`; our worker answers the same), so the last usage seen counts
what the client was sent up to wherever the stream ended: a worker that died, a stall, a safety
block, a client that left. Upstreams that report no usage get the gateway's own count (content
chunks since the last usage, the prompt estimate), marked as estimated. The client still gets
exactly the usage chunks it asked for.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .outcome import Outcome

CONTINUOUS = "continuous"  # UpstreamConfig.stream_usage: running usage in every chunk
TEMPLATE_FIELDS = ("id", "object", "created", "model", "system_fingerprint")


def upstream_stream_options(client: dict[str, Any] | None, stream_usage: str) -> dict[str, Any]:
    """The client's stream options plus what the gateway needs to count tokens."""
    options = {**(client or {}), "include_usage": True}
    if stream_usage == CONTINUOUS:
        options["continuous_usage_stats"] = True
    return options


def _has_output(choice: Any) -> bool:
    """A choice that carries generated output (text, reasoning or a tool call's piece)."""
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return any(delta.get(k) for k in ("content", "reasoning_content", "reasoning", "tool_calls", "function_call"))
    return bool(choice.get("text"))


def _without_usage(chunk: dict[str, Any], data: str) -> str:
    """`data` without its usage. Our worker and vLLM write usage last: cut it off the text (the
    other bytes stay as the upstream sent them, and no re-encoding costs a chunk's CPU)."""
    if next(reversed(chunk)) == "usage":
        head = data[: data.rfind('"usage"')].rstrip()
        if head.endswith(","):
            return head[:-1] + "}"
    return json.dumps({k: v for k, v in chunk.items() if k != "usage"})


class StreamUsage:
    """What one stream delivered, chunk by chunk, and the usage the client asked to see."""

    def __init__(self, *, client_usage: bool, client_continuous: bool, prompt_estimate: int) -> None:
        self.client_usage = client_usage  # the client asked for the final usage chunk
        self.client_continuous = client_continuous  # ... and for usage in every chunk
        self.prompt_estimate = prompt_estimate
        self.usage: dict[str, Any] | None = None  # the last usage the upstream reported
        self.closed = False  # the client was sent a usage-only chunk
        self.template: dict[str, Any] = {}  # the stream's id, object, created and model
        self.pieces_since_usage = 0  # output chunks after that usage (all of them when none came)
        self.last_piece_at: float | None = None

    def forward(self, chunk: Any, data: str) -> str | None:
        """Note the chunk (`data`, parsed as `chunk`); returns the data to send the client, with
        the usage it did not ask for removed, or None when nothing is left to send."""
        if not isinstance(chunk, dict):
            return data
        self.template.update((k, chunk[k]) for k in TEMPLATE_FIELDS if k in chunk)
        choices = chunk.get("choices")
        if isinstance(choices, list) and any(_has_output(c) for c in choices):
            self.pieces_since_usage += 1
            self.last_piece_at = time.perf_counter()
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage, self.pieces_since_usage = usage, 0
        if not usage:
            return data
        if choices == []:  # the usage-only chunk that closes a stream
            self.closed = self.closed or self.client_usage
            return data if self.client_usage else None
        if self.client_continuous:
            return data
        return _without_usage(chunk, data)

    def closing(self) -> str | None:
        """The usage-only chunk (`choices: []`, as OpenAI closes a stream) for a client that asked
        for usage and was not sent one: an upstream such as LiteLLM puts its final usage on a
        chunk that still has a choice, whose usage `forward` took off as running usage."""
        if not self.client_usage or self.closed or self.usage is None:
            return None
        self.closed = True
        return json.dumps({**self.template, "choices": [], "usage": self.usage})

    def settle(self, outcome: Outcome, *, partial: bool) -> None:
        """Put the counts into the outcome: the last usage seen, plus an estimate for output
        the upstream did not count (an upstream without usage, or output after its last usage)."""
        outcome.partial = partial
        u = self.usage
        if u is None and not self.pieces_since_usage and partial:
            return  # nothing came back: nothing to count
        outcome.prompt_tokens = int(u.get("prompt_tokens") or 0) if u else self.prompt_estimate
        outcome.completion_tokens = (int(u.get("completion_tokens") or 0) if u else 0) + self.pieces_since_usage
        outcome.usage_estimated = u is None or self.pieces_since_usage > 0
        if partial and self.last_piece_at is not None:
            outcome.last_token_at = self.last_piece_at
