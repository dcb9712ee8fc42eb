"""The gateway's error codes (what clients match on) and what each is recorded as."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gateway.errors import ErrorCode, GatewayError, no_healthy_upstream
from gateway.fallbacks import error_reason
from gateway.overload import Shed
from ledger.record import ErrorType
from safety import review

T = ErrorType

RECORDED_AS = {
    "invalid_request": T.INVALID_REQUEST,
    "invalid_json": T.INVALID_REQUEST,
    "invalid_timeout": T.INVALID_REQUEST,
    "invalid_priority": T.INVALID_REQUEST,
    "request_too_large": T.REQUEST_TOO_LARGE,
    "model_not_found": T.MODEL_NOT_FOUND,
    "prompt_too_long": T.PROMPT_TOO_LONG,
    "content_policy_violation": T.CONTENT_POLICY_VIOLATION,
    "missing_api_key": T.UNAUTHENTICATED,
    "invalid_api_key": T.UNAUTHENTICATED,
    "auth_unavailable": T.AUTH_UNAVAILABLE,
    "admin_required": T.FORBIDDEN,
    "forbidden": T.FORBIDDEN,
    "priority_not_allowed": T.FORBIDDEN,
    "rate_limit_exceeded": T.RATE_LIMITED,
    "concurrency_limit_exceeded": T.RATE_LIMITED,
    "budget_exceeded": T.BUDGET_EXCEEDED,
    "overloaded": T.OVERLOADED,
    "no_healthy_upstream": T.NO_HEALTHY_UPSTREAM,
    "upstream_timeout": T.TIMEOUT,
    "upstream_unreachable": T.UPSTREAM_ERROR,
    "upstream_error": T.UPSTREAM_ERROR,
    "upstream_bad_response": T.UPSTREAM_BAD_RESPONSE,
    "upstream_disconnected": T.UPSTREAM_DISCONNECTED,
    "deadline_exceeded": T.DEADLINE_EXCEEDED,
    "internal_error": T.INTERNAL_ERROR,
    # no request record: the admin API, moderation, the metrics endpoint
    "invalid_metrics_token": None,
    "moderation_disabled": None,
    "tenant_not_found": None,
    "key_not_found": None,
    "alias_not_found": None,
    "unknown_version": None,
    "version_immutable": None,
    "invalid_weights": None,
    "nothing_to_roll_back": None,
    "invalid_range": None,
    "invalid_status": None,
    "invalid_label": None,
    "review_item_not_found": None,
    "review_item_taken": None,
    "review_item_resolved": None,
}


def test_the_error_codes_and_what_each_is_recorded_as_are_the_contract() -> None:
    assert {c.value: c.error_type for c in ErrorCode} == RECORDED_AS
    assert all(c.name == c.value.upper() for c in ErrorCode)  # so a code string names its member


def test_every_review_queue_error_is_an_error_code_of_the_admin_api() -> None:
    source = Path(review.__file__).read_text()
    codes = set(re.findall(r'raise ReviewError\(.*, "([a-z_]+)"\)$', source, re.M))
    assert len(codes) >= 5 and all(ErrorCode[c.upper()].error_type is None for c in codes)


def test_an_error_answer_carries_the_code_string_and_records_its_type() -> None:
    e = GatewayError(401, "Invalid or revoked API key.", ErrorCode.INVALID_API_KEY)
    assert e.error_type is ErrorType.UNAUTHENTICATED
    assert json.loads(bytes(e.response().body))["error"]["code"] == "invalid_api_key"
    e = no_healthy_upstream("chat")
    assert (e.status, e.error_type, e.headers["Retry-After"]) == (503, ErrorType.NO_HEALTHY_UPSTREAM, "5")


def test_a_shed_request_is_overloaded_at_503_and_rate_limited_at_a_tenant_cap() -> None:
    gate = Shed(503, "full", "no_slot", "interactive", 1)
    cap = Shed(429, "cap", "tenant_cap", "batch", 2, code=ErrorCode.CONCURRENCY_LIMIT_EXCEEDED)
    assert (gate.code, gate.error_type) == ("overloaded", ErrorType.OVERLOADED)
    assert (cap.code, cap.error_type) == ("concurrency_limit_exceeded", ErrorType.RATE_LIMITED)


def test_only_the_forward_stages_upstream_errors_fall_back() -> None:
    reasons = {c.value: error_reason(c) for c in ErrorCode if error_reason(c) is not None}
    assert reasons == {
        "upstream_timeout": "timeout",
        "upstream_unreachable": "unavailable",
        "no_healthy_upstream": "unavailable",
        "upstream_error": "server_error",
    }
