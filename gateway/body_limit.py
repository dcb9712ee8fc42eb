"""A size cap on the request bodies that FastAPI parses (admin, canary, SLO and report routes).

The OpenAI routes and ``/v1/moderations`` read their own bodies under each tenant's
``max_body_bytes``; every other route's body is read here, at most ``max_bytes`` of it, and
handed on in one piece. Past the cap the answer is 413 without parsing anything.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.protocol import error_body

from .errors import ErrorCode

# Routes whose handlers read (and limit) the body themselves.
SELF_LIMITED = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/moderations"})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or scope["path"] in SELF_LIMITED:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                first: Message = message
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        pending: Message | None = first

        async def replay() -> Message:
            nonlocal pending
            if pending is not None:
                message, pending = pending, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = error_body(
            413,
            f"Request body exceeds the limit of {self.max_bytes} bytes for this route.",
            ErrorCode.REQUEST_TOO_LARGE,
        )
        await JSONResponse(body, status_code=413, headers={"connection": "close"})(scope, receive, send)
