"""The recorded `error_type` values are a contract: dashboards, alert rules and the console's
filter select on them, and rows already written hold them."""

from __future__ import annotations

import json
import pytest

from ledger.record import ErrorType, RequestRecord
from ledger.testing import make_record


def test_the_error_types_are_the_recorded_contract() -> None:
    assert {t.value for t in ErrorType} == {
        "invalid_request",
        "unauthenticated",
        "forbidden",
        "auth_unavailable",
        "request_too_large",
        "model_not_found",
        "prompt_too_long",
        "content_policy_violation",
        "rate_limited",
        "budget_exceeded",
        "overloaded",
        "no_healthy_upstream",
        "timeout",
        "deadline_exceeded",
        "upstream_error",
        "upstream_rejected",
        "upstream_bad_response",
        "upstream_disconnected",
        "client_disconnect",
        "internal_error",
    }


def test_an_error_type_is_its_string_on_the_wire() -> None:
    assert ErrorType.RATE_LIMITED == "rate_limited"
    assert json.dumps({"e": ErrorType.TIMEOUT}) == '{"e": "timeout"}'
    assert f"{ErrorType.UPSTREAM_ERROR}" == "upstream_error"


def test_a_record_built_from_stored_strings_carries_the_enum() -> None:
    rec = make_record(status_code=504, error_type="timeout")
    assert rec.error_type is ErrorType.TIMEOUT
    back = RequestRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back.error_type is ErrorType.TIMEOUT and back == rec


def test_a_record_refuses_an_error_type_outside_the_contract() -> None:
    with pytest.raises(ValueError):
        make_record(status_code=500, error_type="kaboom")
