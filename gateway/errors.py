"""Errors the gateway answers with, in the OpenAI format."""

from __future__ import annotations

from enum import StrEnum

from fastapi.responses import JSONResponse

from inference.protocol import error_body
from ledger.record import ErrorType


class ErrorCode(StrEnum):
    """The `error.code` of the gateway's answers, each with the `ErrorType` a request that ends
    with it is recorded as (None: the admin API's errors, which end no request record). A
    contract, as clients and tests match on it (pinned by tests/gateway/test_errors.py)."""

    error_type: ErrorType | None

    def __new__(cls, code: str, error_type: ErrorType | None) -> ErrorCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.error_type = error_type
        return member

    # the request
    INVALID_REQUEST = "invalid_request", ErrorType.INVALID_REQUEST
    INVALID_JSON = "invalid_json", ErrorType.INVALID_REQUEST
    INVALID_TIMEOUT = "invalid_timeout", ErrorType.INVALID_REQUEST
    INVALID_PRIORITY = "invalid_priority", ErrorType.INVALID_REQUEST
    REQUEST_TOO_LARGE = "request_too_large", ErrorType.REQUEST_TOO_LARGE
    MODEL_NOT_FOUND = "model_not_found", ErrorType.MODEL_NOT_FOUND
    PROMPT_TOO_LONG = "prompt_too_long", ErrorType.PROMPT_TOO_LONG
    CONTENT_POLICY_VIOLATION = "content_policy_violation", ErrorType.CONTENT_POLICY_VIOLATION
    # who sent it
    MISSING_API_KEY = "missing_api_key", ErrorType.UNAUTHENTICATED
    INVALID_API_KEY = "invalid_api_key", ErrorType.UNAUTHENTICATED
    AUTH_UNAVAILABLE = "auth_unavailable", ErrorType.AUTH_UNAVAILABLE
    ADMIN_REQUIRED = "admin_required", ErrorType.FORBIDDEN
    FORBIDDEN = "forbidden", ErrorType.FORBIDDEN
    PRIORITY_NOT_ALLOWED = "priority_not_allowed", ErrorType.FORBIDDEN
    INVALID_METRICS_TOKEN = "invalid_metrics_token", None
    # limits and capacity
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded", ErrorType.RATE_LIMITED
    CONCURRENCY_LIMIT_EXCEEDED = "concurrency_limit_exceeded", ErrorType.RATE_LIMITED
    BUDGET_EXCEEDED = "budget_exceeded", ErrorType.BUDGET_EXCEEDED
    OVERLOADED = "overloaded", ErrorType.OVERLOADED
    # upstreams and time
    NO_HEALTHY_UPSTREAM = "no_healthy_upstream", ErrorType.NO_HEALTHY_UPSTREAM
    UPSTREAM_TIMEOUT = "upstream_timeout", ErrorType.TIMEOUT
    UPSTREAM_UNREACHABLE = "upstream_unreachable", ErrorType.UPSTREAM_ERROR
    UPSTREAM_ERROR = "upstream_error", ErrorType.UPSTREAM_ERROR
    UPSTREAM_BAD_RESPONSE = "upstream_bad_response", ErrorType.UPSTREAM_BAD_RESPONSE
    UPSTREAM_DISCONNECTED = "upstream_disconnected", ErrorType.UPSTREAM_DISCONNECTED
    DEADLINE_EXCEEDED = "deadline_exceeded", ErrorType.DEADLINE_EXCEEDED
    INTERNAL_ERROR = "internal_error", ErrorType.INTERNAL_ERROR
    # the admin API and moderation (no request record)
    MODERATION_DISABLED = "moderation_disabled", None
    TENANT_NOT_FOUND = "tenant_not_found", None
    KEY_NOT_FOUND = "key_not_found", None
    ALIAS_NOT_FOUND = "alias_not_found", None
    UNKNOWN_VERSION = "unknown_version", None
    VERSION_IMMUTABLE = "version_immutable", None
    INVALID_WEIGHTS = "invalid_weights", None
    NOTHING_TO_ROLL_BACK = "nothing_to_roll_back", None
    INVALID_RANGE = "invalid_range", None
    # the review queue's (safety.review.ReviewError's codes, answered by the admin API)
    INVALID_STATUS = "invalid_status", None
    INVALID_LABEL = "invalid_label", None
    REVIEW_ITEM_NOT_FOUND = "review_item_not_found", None
    REVIEW_ITEM_TAKEN = "review_item_taken", None
    REVIEW_ITEM_RESOLVED = "review_item_resolved", None


class GatewayError(Exception):
    """An error answer; its code's `error_type` is what the request is recorded as."""

    def __init__(
        self,
        status: int,
        message: str,
        code: ErrorCode,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.error_type = code.error_type
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
        ErrorCode.NO_HEALTHY_UPSTREAM,
        headers={"Retry-After": "5"},
    )
