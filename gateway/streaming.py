"""A streamed upstream answer, relayed event by event: output safety chunk by chunk, usage
as the client asked for it, an in-band error event when the upstream fails mid-stream, and
the request's one record when the stream ends, however it ends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import aiohttp
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from inference import protocol as p
from ledger.record import ErrorType

from .context import RequestContext
from .errors import ErrorCode
from .outcome import observe
from .safety_path import StreamGuard
from .upstreams import Replica
from .usage import StreamUsage

Events = AsyncIterator[bytes]


def relay(
    ctx: RequestContext,
    resp: aiohttp.ClientResponse,
    replica: Replica,
    guard: StreamGuard | None,
    record: Callable[[RequestContext], None],
    tee: Callable[[AsyncGenerator[bytes, None]], Events] | None = None,
) -> StreamingResponse:
    """`tee` passes the events on as they are sent (the response cache keeps them)."""
    outcome, req = ctx.outcome, ctx.req
    headers = {
        **ctx.headers,
        "x-request-id": ctx.request_id,
        "x-model-version": outcome.model_version or "",
        "cache-control": "no-cache",
    }
    outcome.status = 200
    want_usage = bool(req.include_usage)
    usage = StreamUsage(
        client_usage=want_usage, client_continuous=bool(req.continuous_usage), prompt_estimate=ctx.prompt_estimate
    )

    async def events() -> AsyncGenerator[bytes, None]:
        complete = False
        try:
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    if guard is not None:
                        tail = guard.flush(outcome)
                        if tail:
                            yield tail
                    closing = usage.closing()
                    if closing is not None:
                        yield b"data: " + closing.encode() + b"\n\n"
                    complete = outcome.error_type is None
                    yield b"data: [DONE]\n\n"
                    break  # the stream is complete: a client closing now is not a disconnect
                chunk = _json(data)
                sent = usage.forward(chunk, data)
                if sent is None:
                    continue
                if guard is None:
                    observe(chunk, outcome)
                    yield b"data: " + sent.encode() + b"\n\n"
                    continue
                out, stop = guard.chunk(sent, outcome, want_usage)
                if out:
                    yield out
                if stop:  # blocked: end the stream here and stop the upstream's generation
                    yield b"data: [DONE]\n\n"
                    resp.close()
                    break
            else:
                if guard is not None:  # the upstream ended without [DONE]
                    tail = guard.flush(outcome)
                    if tail:
                        yield tail
                complete = outcome.error_type is None and outcome.finish_reason is not None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # the worker went away or stalled mid-stream: tell the client in-band, the record
            # says so, and the replica's breaker counts it like a failure before the headers
            # (not when the client's deadline ended it)
            late = ctx.deadline if ctx.deadline_passed() else None
            if late is None:
                replica.breaker.failure(time.monotonic())
            if guard is not None:
                tail = guard.flush(outcome)
                if tail:
                    yield tail
            if late is not None:
                outcome.status, outcome.error_type = 504, ErrorType.DEADLINE_EXCEEDED
                err = p.error_body(504, late.error().message, ErrorCode.DEADLINE_EXCEEDED)
            else:
                outcome.status, outcome.error_type = 502, ErrorType.UPSTREAM_DISCONNECTED
                err = p.error_body(
                    502, f"The upstream failed mid-stream ({type(exc).__name__}).", ErrorCode.UPSTREAM_DISCONNECTED
                )
            yield b"data: " + json.dumps(err).encode() + b"\n\n"
        except asyncio.CancelledError:
            if outcome.error_type is None:  # a client closing on the upstream's error event does not hide the error
                outcome.client_left()
            raise
        finally:
            resp.release()
            if guard is not None:
                guard.finalize(outcome)
            usage.settle(outcome, partial=not complete)
            record(ctx)

    async def after() -> None:
        # Starlette runs this even when the client left before the stream started, when
        # `events()` never ran: the request still gets its one record.
        if not outcome.recorded:
            resp.release()
            if guard is not None:
                guard.finalize(outcome)
            outcome.client_left()
            record(ctx)

    stream = events() if tee is None else tee(events())
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers, background=BackgroundTask(after))


def _json(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
