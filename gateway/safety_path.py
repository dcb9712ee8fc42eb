"""Safety on the data path: scan a request's texts before they go upstream, a complete
response before it goes back, and a stream chunk by chunk (never releasing an unredacted span)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from ledger.record import SafetyHit
from safety import Finding, Hit, StreamRedactor, Verdict
from safety.excerpt import excerpts as safety_excerpts
from safety.jsontext import redact_json_text
from safety.runtime import AsyncSafety, Later
from safety.spans import redact

from .errors import ErrorCode, GatewayError
from .operations import Operation
from .outcome import Outcome, observe

_SEP = "\n\n"  # between the texts of one request when they are scanned as one


class SafetyBlocked(GatewayError):
    """A text blocked by the tenant's content policy: 400 with the category named."""

    def __init__(self, verdict: Verdict, param: str) -> None:
        message, body = verdict.block_message(), verdict.error_body()
        if message is None or body is None:
            raise ValueError("SafetyBlocked takes a blocking verdict")
        super().__init__(400, message, ErrorCode.CONTENT_POLICY_VIOLATION, param=param)
        self.body = body
        self.body["error"]["param"] = param

    def response(self, extra_headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body, status_code=400, headers={**self.headers, **(extra_headers or {})})


REASONING_FIELDS = ("reasoning_content", "reasoning")  # vLLM / DeepSeek-style reasoning text


def call_arguments(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects holding a message's (or delta's) tool-call arguments: each tool call's
    ``function`` and the legacy ``function_call``; their ``arguments`` is a JSON string."""
    out = [
        tc["function"]
        for tc in message.get("tool_calls") or []
        if isinstance(tc, dict) and isinstance(tc.get("function"), dict)
    ]
    if isinstance(message.get("function_call"), dict):
        out.append(message["function_call"])
    return [f for f in out if isinstance(f.get("arguments"), str)]


def message_slots(m: dict[str, Any]) -> list[tuple[Any, Any, bool]]:
    """(container, key, is_json) of each text of one chat message: its content (or text
    parts), reasoning and tool-call arguments. Tool results are often JSON: where they
    parse, redaction keeps them valid JSON."""
    slots: list[tuple[Any, Any, bool]] = []
    c = m.get("content")
    if isinstance(c, str):
        slots.append((m, "content", m.get("role") == "tool"))
    elif isinstance(c, list):
        slots.extend(
            (part, "text", False) for part in c if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    slots.extend((m, k, False) for k in REASONING_FIELDS if isinstance(m.get(k), str))
    slots.extend((f, "arguments", True) for f in call_arguments(m))
    return slots


def text_slots(operation: Operation, body: dict[str, Any]) -> list[tuple[Any, Any, bool]]:
    """(container, key, is_json) of every text the upstream will read from the request body,
    in order (token-id prompts carry no text to scan)."""
    if operation is Operation.CHAT:
        return [s for m in body.get("messages") or [] if isinstance(m, dict) for s in message_slots(m)]
    slots: list[tuple[Any, Any, bool]] = []
    key = operation.prompt_field
    v = body.get(key)
    if isinstance(v, str):
        slots.append((body, key, False))
    elif isinstance(v, list):
        slots.extend((v, i, False) for i, x in enumerate(v) if isinstance(x, str))
    return slots


def redact_slot(text: str, hits: list[Hit], is_json: bool) -> str:
    return redact_json_text(text, hits) if is_json else redact(text, hits)


class SafetyPath:
    """The tenant's policies applied to one request's texts; findings become record entries."""

    def __init__(self, safety: AsyncSafety, store_content: Callable[[str], bool], guard_calls: Any = None) -> None:
        self.safety = safety
        self.store_content = store_content  # tenant opted in to storing (redacted) content
        guard = safety.guard
        if guard is not None and guard_calls is not None:  # the guard's latency, a histogram by format and outcome
            guard.on_call = lambda outcome, seconds: guard_calls.labels(guard.cfg.format, outcome).observe(seconds)

    def stream_guard(self, tenant: str, operation: Operation, prompt_estimate: int) -> "StreamGuard | None":
        """A guard for a streamed response, or None when the tenant's output is not scanned."""
        if not self.safety.wants(tenant, "output"):
            return None
        return StreamGuard(self, tenant, operation, prompt_estimate)

    async def hits(self, findings: list[Finding], text: str, tenant: str, direction: str) -> list[SafetyHit]:
        """Findings as record entries (at most `max_hits_recorded`); excerpts are redacted, with
        context only for tenants that opted in to storing content."""
        findings = findings[: self.safety.max_hits]
        excerpts = await self.safety.excerpts(text, findings, self.store_content(tenant))
        return self._to_record(findings, excerpts, direction)

    def hits_now(self, findings: list[Finding], text: str, tenant: str, direction: str) -> list[SafetyHit]:
        """The same, on the calling thread (where awaiting is not safe: a stream's cleanup)."""
        findings = findings[: self.safety.max_hits]
        excerpts = safety_excerpts(self.safety.engine, text, findings, with_context=self.store_content(tenant))
        return self._to_record(findings, excerpts, direction)

    @staticmethod
    def _to_record(findings: list[Finding], excerpts: list[str], direction: str) -> list[SafetyHit]:
        return [
            SafetyHit(direction, f.hit.category.value, f.hit.scanner, f.action, round(float(f.hit.score), 4), x)
            for f, x in zip(findings, excerpts, strict=True)
        ]

    def defer(self, later: Later | None, text: str, tenant: str, outcome: Outcome) -> None:
        """Leave a text's flag-only scans for after the response (the recorder runs them)."""
        if later is not None:
            outcome.later.append(lambda: self._record_later(later, text, tenant, outcome))

    async def _record_later(self, later: Later, text: str, tenant: str, outcome: Outcome) -> None:
        findings, unscanned = await later.run()
        if unscanned is not None:
            outcome.safety_unscanned = unscanned
        room = self.safety.max_hits - sum(h.direction == later.direction for h in outcome.safety)
        if findings and room > 0:
            outcome.safety.extend(await self.hits(findings[:room], text, tenant, later.direction))

    async def scan_input(self, operation: Operation, body: dict[str, Any], tenant: str, outcome: Outcome) -> None:
        """Scan every text of the request as one; block, or rewrite redacted spans in place."""
        slots = text_slots(operation, body)
        texts = [c[k] for c, k, _ in slots]
        if not any(texts):
            return
        joined = _SEP.join(texts)
        verdict, later = await self.safety.scan_split(joined, tenant, "input")
        self.defer(later, joined, tenant, outcome)
        if not verdict.findings:
            return
        outcome.safety.extend(await self.hits(verdict.findings, joined, tenant, "input"))
        if verdict.blocked:
            raise SafetyBlocked(verdict, operation.prompt_field)
        acting = [f.hit for f in verdict.findings if f.action in ("redact", "block")]
        pos = 0
        for (container, key, is_json), text in zip(slots, texts, strict=True):
            spans = [
                dataclasses.replace(h, start=max(h.start - pos, 0), end=min(h.end - pos, len(text)))
                for h in acting
                if h.start < pos + len(text) and h.end > pos
            ]
            if spans:
                container[key] = redact_slot(text, spans, is_json)
            pos += len(text) + len(_SEP)

    async def scan_output(self, data: dict[str, Any], tenant: str, outcome: Outcome) -> bool:
        """Scan each choice of a complete response (its content, reasoning and tool-call
        arguments, each on its own); True when a text changed. A block replaces the choice's
        message with the policy's message and sets finish_reason 'content_filter'."""
        changed = False
        for c in data.get("choices") or []:
            if not isinstance(c, dict):
                continue
            if c.get("logprobs") is not None and self.safety.rewrites(tenant, "output"):
                c["logprobs"] = None  # its tokens would repeat the unredacted text
                changed = True
            msg = c.get("message")
            slots = message_slots(msg) if isinstance(msg, dict) else [(c, "text", False)]
            for holder, key, is_json in slots:
                text = holder.get(key)
                if not isinstance(text, str) or not text:
                    continue
                verdict, later = await self.safety.scan_split(text, tenant, "output")
                self.defer(later, text, tenant, outcome)
                if not verdict.findings:
                    continue
                outcome.safety.extend(await self.hits(verdict.findings, text, tenant, "output"))
                changed = changed or verdict.action in ("redact", "block")
                if verdict.blocked:
                    if isinstance(msg, dict):  # nothing of the message stays: tool calls and reasoning may carry it
                        c["message"] = {"role": msg.get("role", "assistant"), "content": verdict.block_message()}
                    else:
                        c["text"] = verdict.block_message()
                    c["finish_reason"] = "content_filter"
                    break
                if verdict.action == "redact":
                    holder[key] = redact_slot(text, [f.hit for f in verdict.findings if f.action == "redact"], is_json)
        return changed


class StreamGuard:
    """Output safety of one streamed response: a stream redactor per choice.

    Each chunk's text goes through its choice's redactor and only what the redactor releases
    is sent. Released text that no redaction touched goes out in the upstream's own pieces (a
    token per chunk stays a token per chunk, only later); a chunk left with nothing to say is
    dropped. On a block the released part is sent with finish_reason 'content_filter', then
    [DONE], and the upstream is cut off. Time to first token is when the client got its first
    text, not when the upstream sent it.
    """

    def __init__(self, path: SafetyPath, tenant: str, operation: Operation, prompt_estimate: int) -> None:
        self.path, self.tenant, self.chat = path, tenant, operation is Operation.CHAT
        self.engine = path.safety.engine
        self.prompt_estimate = prompt_estimate
        self.redactors: dict[int, StreamRedactor] = {}
        # Reasoning and tool-call arguments: a redactor per (choice, field), released in place.
        self.side: dict[tuple[int, Any], StreamRedactor] = {}
        self.side_done: set[tuple[int, Any]] = set()
        self.pending: dict[int, list[str]] = {}  # raw pieces of each choice not yet released
        self.pending_off: dict[int, int] = {}  # characters of the first pending piece already released
        self.finished: set[int] = set()
        self.template: dict[str, Any] = {}
        self.blocked = False
        self.text_chunks = 0
        self.rewrites = path.safety.rewrites(tenant, "output")

    def _redactor(self, idx: int) -> StreamRedactor:
        r = self.redactors.get(idx)
        if r is None:
            r = self.redactors[idx] = self.engine.stream_redactor(self.tenant)
            self.pending[idx], self.pending_off[idx] = [], 0
        return r

    @staticmethod
    def _event(chunk: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    def _text_event(self, idx: int, text: str, finish_reason: str | None = None) -> bytes:
        choice = {"index": idx, "delta": {"content": text}} if self.chat else {"index": idx, "text": text}
        return self._event({**self.template, "choices": [{**choice, "logprobs": None, "finish_reason": finish_reason}]})

    def _segments(self, idx: int, out: str, released: int) -> list[str]:
        """Split released text along the upstream's pieces when no redaction touched it."""
        pieces, slices, need = self.pending[idx], [], released
        while need > 0 and pieces:
            rest = pieces[0][self.pending_off[idx] :]
            take = rest[:need]
            slices.append(take)
            need -= len(take)
            if len(take) == len(rest):
                pieces.pop(0)
                self.pending_off[idx] = 0
            else:
                self.pending_off[idx] += len(take)
        if len(slices) > 1 and "".join(slices) == out:
            return [x for x in slices if x]
        return [out] if out else []

    def _side_redactor(self, idx: int, field: Any) -> StreamRedactor:
        r = self.side.get((idx, field))
        if r is None:
            r = self.side[(idx, field)] = self.engine.stream_redactor(self.tenant, json=isinstance(field, tuple))
        return r

    @staticmethod
    def _side_holders(delta: dict[str, Any]) -> list[tuple[Any, dict[str, Any], str]]:
        """(field, holder, key) of each reasoning and argument piece in one delta; a tool
        call's field is ("tool", its index), the legacy function call's ("function_call",)."""
        out: list[tuple[Any, dict[str, Any], str]] = [
            (k, delta, k) for k in REASONING_FIELDS if isinstance(delta.get(k), str)
        ]
        for tc in delta.get("tool_calls") or []:
            if (
                isinstance(tc, dict)
                and isinstance(tc.get("function"), dict)
                and isinstance(tc["function"].get("arguments"), str)
            ):
                out.append((("tool", tc.get("index", 0)), tc["function"], "arguments"))
        fc = delta.get("function_call")
        if isinstance(fc, dict) and isinstance(fc.get("arguments"), str):
            out.append((("function_call",), fc, "arguments"))
        return out

    @staticmethod
    def _side_put(delta: dict[str, Any], field: Any, text: str) -> None:
        """Append released text of a field to a delta, adding the entry it needs."""
        if isinstance(field, str):
            delta[field] = delta.get(field, "") + text
        elif field[0] == "function_call":
            fc = delta.setdefault("function_call", {})
            fc["arguments"] = fc.get("arguments", "") + text
        else:
            calls = delta.setdefault("tool_calls", [])
            tc = next((t for t in calls if isinstance(t, dict) and t.get("index", 0) == field[1]), None)
            if tc is None:
                calls.append(tc := {"index": field[1], "function": {}})
            fn = tc.setdefault("function", {})
            fn["arguments"] = fn.get("arguments", "") + text

    def _side_fields(self, idx: int, delta: dict[str, Any], *, finish: bool) -> bool:
        """Pass the delta's reasoning and argument pieces through their redactors (what is not
        released yet stays held); on finish flush every field of the choice. True on a block."""
        for field, holder, key in self._side_holders(delta):
            r = self._side_redactor(idx, field)
            holder[key] = r.feed(holder[key])
            if r.blocked is not None:
                return True
        if finish:
            for (i, field), r in sorted(self.side.items(), key=lambda kv: str(kv[0])):
                if i != idx or (i, field) in self.side_done:
                    continue
                self.side_done.add((i, field))
                tail = r.finish()
                if r.blocked is not None:
                    return True
                if tail:
                    self._side_put(delta, field, tail)
        return False

    def _release(self, idx: int, r: StreamRedactor, text: str | None, *, finish: bool) -> list[str]:
        before = r.released
        out = ""
        if text:
            self.pending[idx].append(text)
            out = r.feed(text)
        if finish and idx not in self.finished and r.blocked is None:
            out += r.finish()
            self.finished.add(idx)
        return self._segments(idx, out, r.released - before)

    def chunk(self, data: str, outcome: Outcome, want_usage: bool) -> tuple[bytes, bool]:
        """(bytes to send, whether the stream ends here)."""
        try:
            chunk = json.loads(data)
        except ValueError:
            return b"", False  # cannot be checked, so not sent
        if not isinstance(chunk, dict):
            return b"", False
        forward = observe(chunk, outcome, mark_first=False)
        choices = chunk.get("choices")
        if "error" in chunk:  # the upstream failed in-band: what was held goes first (scanned as final)
            return self.flush(outcome) + self._event(chunk), False
        if not choices or not isinstance(choices, list):
            return (self._event(chunk) if forward or want_usage else b""), False
        self.template = {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}
        had_text = keep = False
        before: list[bytes] = []  # whole pieces released ahead of this chunk's own
        emitted = False
        for c in choices:
            if not isinstance(c, dict):
                continue
            idx = c.get("index", 0) if isinstance(c.get("index", 0), int) else 0
            if c.get("logprobs") is not None and self.rewrites:
                c["logprobs"] = None  # its tokens would repeat the unredacted text
            delta = c.get("delta")
            holder, key = (delta, "content") if isinstance(delta, dict) else (c, "text")
            text = holder.get(key)
            r = self._redactor(idx)
            if isinstance(text, str) and text:
                had_text = True
                self.text_chunks += 1
            segments = self._release(
                idx, r, text if isinstance(text, str) else None, finish=bool(c.get("finish_reason"))
            )
            if isinstance(delta, dict):
                if self._side_fields(idx, delta, finish=bool(c.get("finish_reason"))):
                    for k in (*REASONING_FIELDS, "tool_calls", "function_call"):
                        delta.pop(k, None)  # nothing of a blocked field goes out, not even what was released with it
                    c["finish_reason"] = "content_filter"
                    self.blocked = True
                emitted = emitted or any(h[k] for _, h, k in self._side_holders(delta))
            if r.blocked is not None:
                c["finish_reason"] = "content_filter"
                self.blocked = True
            if len(segments) > 1 and len(choices) == 1:
                before.extend(self._text_event(idx, s) for s in segments[:-1])
                segments = segments[-1:]
            out = "".join(segments)
            if isinstance(text, str) or out:
                holder[key] = out
            emitted = emitted or bool(out) or bool(before)
            keep = (
                keep or bool(c.get("finish_reason")) or (isinstance(delta, dict) and any(k != "content" for k in delta))
            )
        if emitted and outcome.first_token_at is None:
            outcome.first_token_at = time.perf_counter()
        if self.blocked:
            outcome.finish_reason = "content_filter"
            return b"".join(before) + self._event(chunk), True
        if (
            had_text
            and not keep
            and not any(
                (c.get("delta") or {}).get("content") if isinstance(c.get("delta"), dict) else c.get("text")
                for c in choices
                if isinstance(c, dict)
            )
        ):
            return b"".join(before), False
        return b"".join(before) + self._event(chunk), False

    def flush(self, outcome: Outcome) -> bytes:
        """Release what choices that never finished still hold, scanned as the end of their
        text (as a completion cut by max_tokens is); nothing after a block."""
        if self.blocked:
            return b""
        out: list[bytes] = []
        for idx, r in sorted(self.redactors.items()):
            if idx in self.finished:
                continue
            out.extend(self._text_event(idx, s) for s in self._release(idx, r, None, finish=True))
            delta: dict[str, Any] = {}
            if self.chat and self._side_fields(idx, delta, finish=True):
                self.blocked = True
                out.append(
                    self._event(
                        {**self.template, "choices": [{"index": idx, "delta": {}, "finish_reason": "content_filter"}]}
                    )
                )
                break
            if delta:
                out.append(
                    self._event({**self.template, "choices": [{"index": idx, "delta": delta, "finish_reason": None}]})
                )
        if out and outcome.first_token_at is None:
            outcome.first_token_at = time.perf_counter()
        return b"".join(out)

    def finalize(self, outcome: Outcome) -> None:
        """Every choice's findings into the record (flag-only categories are scanned here,
        over the whole text); a blocked stream never got its usage, so it is estimated."""
        for r in [*(r for _, r in sorted(self.redactors.items())), *self.side.values()]:
            if r.blocked is not None:
                r.finish()  # sends nothing after a block; runs the flag-only pass (once)
            v = r.verdict()
            if v.findings:
                outcome.safety.extend(self.path.hits_now(v.findings, r.raw_text(), self.tenant, "output"))
        if self.blocked and not outcome.completion_tokens:
            outcome.prompt_tokens = outcome.prompt_tokens or self.prompt_estimate
            outcome.completion_tokens = self.text_chunks
