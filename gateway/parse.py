"""The first stage: read a request's body within the tenant's limit and validate it into the
operation's request model."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from .errors import ErrorCode, GatewayError
from .operations import Operation


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise GatewayError(
            413,
            f"Request body of {declared} bytes exceeds this tenant's limit of {limit} bytes.",
            ErrorCode.REQUEST_TOO_LARGE,
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise GatewayError(
                413, f"Request body exceeds this tenant's limit of {limit} bytes.", ErrorCode.REQUEST_TOO_LARGE
            )
        chunks.append(chunk)
    return b"".join(chunks)


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise GatewayError(400, f"The request body is not valid JSON: {exc}", ErrorCode.INVALID_JSON) from exc


def parse(operation: Operation, body: bytes) -> Any:
    data = json_body(body)
    if not isinstance(data, dict):
        raise GatewayError(400, "The request body must be a JSON object.", ErrorCode.INVALID_REQUEST)
    try:
        return operation.request_model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first.get("loc", ()))
        raise GatewayError(
            400,
            f"Invalid request: {loc + ': ' if loc else ''}{first['msg']}",
            ErrorCode.INVALID_REQUEST,
            param=loc or None,
        ) from exc


def estimate_tokens(text: str) -> int:
    """Cheap prompt-size estimate for limits (about 4 bytes per token); billing uses the
    upstream's exact usage."""
    return (len(text.encode()) + 3) // 4


def prompt_text(operation: Operation, req: Any) -> str:
    if operation is Operation.CHAT:
        return "".join(m.text() for m in req.messages)
    if operation is Operation.TEXT_COMPLETION:
        if isinstance(req.prompt, str):
            return req.prompt
        return req.prompt[0] if isinstance(req.prompt[0], str) else " " * 4 * len(req.prompt)
    inputs = req.input if isinstance(req.input, list) else [req.input]
    return "".join(x if isinstance(x, str) else " " * 4 * len(x) for x in inputs)
