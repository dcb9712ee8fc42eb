"""A complete (not streamed) upstream answer: read it, pass it through output safety, count
its usage, and answer the client; an upstream's error stays an OpenAI-format error."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from fastapi.responses import Response

from inference import protocol as p
from ledger.record import ErrorType

from .context import RequestContext
from .errors import ErrorCode, GatewayError
from .operations import Operation
from .outcome import Outcome
from .safety_path import SafetyPath
from .upstreams import Replica


async def complete_answer(
    ctx: RequestContext, resp: aiohttp.ClientResponse, replica: Replica, safety: SafetyPath | None
) -> Response:
    outcome = ctx.outcome
    headers = {**ctx.headers, "x-request-id": ctx.request_id, "x-model-version": outcome.model_version or ""}
    if resp.status in (429, 503) and "Retry-After" in resp.headers:  # a full worker says when to come back
        headers["Retry-After"] = resp.headers["Retry-After"]
    try:
        content = await resp.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        if ctx.deadline_passed():
            return _deadline_exceeded(ctx, headers)
        replica.breaker.failure(time.monotonic())
        outcome.status, outcome.error_type = 502, ErrorType.UPSTREAM_ERROR
        err = GatewayError(
            502, f"The upstream failed while answering ({type(exc).__name__}).", ErrorCode.UPSTREAM_ERROR
        )
        return err.response(headers)
    finally:
        resp.release()
    outcome.status = resp.status
    if resp.status == 504 and ctx.deadline_passed():  # the worker stopped at the deadline
        return _deadline_exceeded(ctx, headers)
    if resp.status >= 400:
        outcome.error_type = ErrorType.UPSTREAM_ERROR if resp.status >= 500 else ErrorType.UPSTREAM_REJECTED
        try:
            failed = json.loads(content)
            failed["error"]["message"]
            _partial_usage(failed, outcome)
        except (ValueError, KeyError, TypeError):
            body = p.error_body(resp.status, "The upstream failed this request.", ErrorCode.UPSTREAM_ERROR)
            content = json.dumps(body).encode()
        return Response(content, status_code=resp.status, media_type="application/json", headers=headers)
    try:
        data = json.loads(content)
        if (
            safety is not None
            and ctx.operation is not Operation.EMBEDDINGS
            and await safety.scan_output(data, ctx.tenant, outcome)
        ):
            content = json.dumps(data).encode()
        usage = data.get("usage") or {}
        outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
        choices = data.get("choices") or []
        outcome.finish_reason = choices[0].get("finish_reason") if choices else None
    except (ValueError, AttributeError, TypeError):
        outcome.status, outcome.error_type = 502, ErrorType.UPSTREAM_BAD_RESPONSE
        bad = GatewayError(502, "The upstream sent a response that is not valid JSON.", ErrorCode.UPSTREAM_BAD_RESPONSE)
        return bad.response(headers)
    return Response(content, status_code=200, media_type="application/json", headers=headers)


def _deadline_exceeded(ctx: RequestContext, headers: dict[str, str]) -> Response:
    assert ctx.deadline is not None
    ctx.outcome.status, ctx.outcome.error_type = 504, ErrorType.DEADLINE_EXCEEDED
    return ctx.deadline.error().response(headers)


def _partial_usage(body: dict[str, Any], outcome: Outcome) -> None:
    """A failed answer's usage, where the upstream says what it generated before failing."""
    usage = body.get("usage")
    if isinstance(usage, dict) and (usage.get("prompt_tokens") or usage.get("completion_tokens")):
        outcome.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        outcome.completion_tokens = int(usage.get("completion_tokens") or 0)
        outcome.partial = True
