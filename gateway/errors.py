"""Errors the gateway answers with, in the OpenAI format."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from inference.protocol import error_body


class GatewayError(Exception):
    """`error_type` is the bounded name recorded in metrics and the ledger."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        error_type: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.error_type = error_type or code
        self.headers = headers or {}

    def response(self, extra_headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            error_body(self.status, self.message, self.code, self.param),
            status_code=self.status,
            headers={**self.headers, **(extra_headers or {})},
        )


def no_healthy_upstream(alias: str) -> GatewayError:
    """No replica of any version the request may try can take it now."""
    return GatewayError(
        503,
        f"No healthy upstream for '{alias}' right now.",
        "no_healthy_upstream",
        headers={"Retry-After": "5"},
    )
