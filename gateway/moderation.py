"""`POST /v1/moderations`: the scanners' view of each input, OpenAI-compatible."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from safety.runtime import AsyncSafety

from .admission import Admission, ratelimit_headers
from .auth import Authenticator
from .errors import ErrorCode, GatewayError
from .parse import estimate_tokens, json_body, read_body
from .ratelimit import retry_after_header


async def moderate(request: Request, auth: Authenticator, admission: Admission, safety: AsyncSafety | None) -> Response:
    principal = await auth.authenticate(request.headers.get("authorization"))
    if safety is None:
        raise GatewayError(
            404, "Moderation is disabled on this gateway (safety.enabled is false).", ErrorCode.MODERATION_DISABLED
        )
    tenant = principal.tenant or "admin"
    limits = (await admission.policy(tenant)).limits
    data = json_body(await read_body(request, limits.max_body_bytes))
    raw = data.get("input") if isinstance(data, dict) else None
    items = [raw] if isinstance(raw, (str, dict)) else raw
    if not isinstance(items, list) or not items:
        raise GatewayError(
            400,
            "Invalid request: 'input' must be a string, a list of strings or a list of text parts.",
            ErrorCode.INVALID_REQUEST,
            param="input",
        )
    texts: list[str] = []
    for x in items:
        if isinstance(x, dict) and x.get("type") == "text" and isinstance(x.get("text"), str):
            x = x["text"]
        if not isinstance(x, str):
            raise GatewayError(
                400,
                "Invalid request: only text inputs can be moderated here.",
                ErrorCode.INVALID_REQUEST,
                param="input",
            )
        texts.append(x)
    decision = await admission.limiter.check(tenant, limits.rpm, limits.tpm, estimate_tokens("".join(texts)))
    if not decision.allowed:
        admission.metrics.rate_limited.labels(tenant, decision.limit_name).inc()
        wait = retry_after_header(decision.retry_after_s)
        raise GatewayError(
            429,
            f"Rate limit reached for {decision.limit_name} per minute. Retry after {wait} s.",
            ErrorCode.RATE_LIMIT_EXCEEDED,
            headers={"Retry-After": wait},
        )
    result = await safety.moderate(texts, principal.tenant)
    return JSONResponse(result, headers=ratelimit_headers(limits, decision))
