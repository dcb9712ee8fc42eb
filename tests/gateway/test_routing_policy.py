"""Fallback plans and reasons, priorities and deadlines: the rules, without servers."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from gateway.config import FALLBACK_REASONS, GatewayConfig, TenantConfig
from gateway.deadline import Deadline
from gateway.errors import GatewayError
from gateway.fallbacks import Fallbacks, response_reason
from gateway.priority import PRIORITY_HEADER, priority_of
from gateway.routing import AliasTable
from inference.protocol import TIMEOUT_HEADER

UPSTREAMS = {v: {"urls": [f"http://{v.replace('@', '-')}"]} for v in ("gpu@1", "gpu@2", "cpu@1", "big@1")}
ALIASES = {"m": [{"version": "gpu@1"}, {"version": "gpu@2"}], "m-cpu": [{"version": "cpu@1"}]}


def config(**fallbacks: object) -> GatewayConfig:
    return GatewayConfig(upstreams=UPSTREAMS, aliases=ALIASES, fallbacks=fallbacks)


def test_a_chain_written_as_a_list_falls_back_on_every_reason():
    chain = config(m=["m-cpu"]).fallbacks["m"]
    assert chain.targets == ["m-cpu"] and tuple(chain.reasons) == FALLBACK_REASONS


@pytest.mark.parametrize(
    ("fallbacks", "named"),
    [
        ({"nope": ["m-cpu"]}, "fallbacks.nope"),
        ({"m": ["missing"]}, "'missing' is neither an alias nor a version"),
        ({"m": ["m"]}, "cannot fall back to itself"),
        ({"m": {"targets": ["m-cpu"], "reasons": ["sunspots"]}}, "reasons"),
        ({"m": {"targets": []}}, "targets"),
        ({"m": {"targets": ["m-cpu"], True: ["queue_full"]}}, "Keys should be strings"),  # YAML 1.1 reads `on:` as true
        ({"m": {"targets": ["m-cpu"], "reason": ["queue_full"]}}, "reason"),
    ],
)
def test_a_bad_fallback_chain_is_refused_naming_what_is_wrong(fallbacks, named):
    with pytest.raises(ValidationError, match=named):
        GatewayConfig(upstreams=UPSTREAMS, aliases=ALIASES, fallbacks=fallbacks)


@pytest.mark.parametrize(
    ("tenant", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"limits": {"max_concurrent_requests": 0}}, "max_concurrent_requests"),
    ],
)
def test_bad_tenant_routing_settings_are_refused_naming_the_field(tenant, field):
    with pytest.raises(ValidationError, match=field):
        TenantConfig.model_validate(tenant)


def test_the_plan_tries_the_chosen_version_then_each_target_once():
    cfg = config(m=["gpu@2", "m-cpu", "big@1"])
    plan = Fallbacks(cfg.fallbacks, AliasTable(cfg.aliases)).plan("m", "gpu@2", sticky="k")
    assert plan == ["gpu@2", "cpu@1", "big@1"]  # gpu@2 was chosen already: not twice


def test_an_alias_target_picks_another_version_than_the_ones_tried():
    cfg = GatewayConfig(
        upstreams=UPSTREAMS,
        aliases={**ALIASES, "m-any": [{"version": "gpu@1"}, {"version": "gpu@2"}]},
        fallbacks={"m": ["m-any"]},
    )
    f = Fallbacks(cfg.fallbacks, AliasTable(cfg.aliases))
    assert {f.plan("m", "gpu@1", sticky=str(i))[1] for i in range(50)} == {"gpu@2"}
    assert {f.plan("m", "gpu@2", sticky=str(i))[1] for i in range(50)} == {"gpu@1"}


def test_without_a_chain_the_plan_is_the_chosen_version_and_nothing_falls_back():
    f = Fallbacks({}, AliasTable(config().aliases))
    assert f.plan("m", "gpu@1", None) == ["gpu@1"]
    assert not f.allows("m", "server_error")


def test_only_the_listed_reasons_fall_back():
    cfg = config(m={"targets": ["m-cpu"], "reasons": ["context_window"]})
    f = Fallbacks(cfg.fallbacks, AliasTable(cfg.aliases))
    assert f.allows("m", "context_window") and not f.allows("m", "server_error")


def _body(code: str | None, message: str = "x") -> bytes:
    return json.dumps({"error": {"message": message, "type": "t", "code": code, "param": None}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b"{}", None),
        (400, _body("invalid_request"), None),
        (404, _body("model_not_found"), None),
        (400, _body("context_length_exceeded"), "context_window"),
        (
            400,
            json.dumps({"object": "error", "message": "This model's maximum context length is 2048 tokens."}).encode(),
            "context_window",
        ),  # vLLM's shape
        (503, _body("queue_full"), "queue_full"),
        (503, _body("model_not_ready"), "server_error"),
        (500, b"not json", "server_error"),
        (504, _body("deadline_exceeded"), "timeout"),
    ],
)
def test_an_upstream_answer_is_classified_by_status_and_code(status, body, reason):
    assert response_reason(status, body) == reason


@pytest.mark.parametrize(
    ("header", "default", "want"),
    [
        (None, "interactive", "interactive"),
        (None, "batch", "batch"),
        ("batch", "interactive", "batch"),
        (" Interactive ", "interactive", "interactive"),
        ("batch", "batch", "batch"),
    ],
)
def test_the_priority_comes_from_the_header_within_the_tenants_own(header, default, want):
    assert priority_of(header, default) == want


def test_a_bad_priority_header_is_400_and_a_batch_tenant_cannot_ask_for_interactive():
    with pytest.raises(GatewayError) as bad:
        priority_of("urgent", "interactive")
    assert (bad.value.status, bad.value.param) == (400, PRIORITY_HEADER) and PRIORITY_HEADER in bad.value.message
    with pytest.raises(GatewayError) as lifted:
        priority_of("interactive", "batch")
    assert (lifted.value.status, lifted.value.param) == (403, PRIORITY_HEADER)


def test_the_deadline_is_the_header_else_the_tenant_default_else_the_cap_and_never_beyond_the_cap():
    assert Deadline.start("2.5", 10, 600, now=100).at == 102.5
    assert Deadline.start(None, 10, 600, now=100).at == 110
    assert Deadline.start(None, None, 600, now=100).at == 700
    assert Deadline.start("5000", None, 600, now=100).timeout_s == 600
    d = Deadline.start("2", None, 600, now=100)
    assert d.remaining(now=101.5) == 0.5 and not d.expired(now=101.5) and d.expired(now=102)
    assert d.header(now=101.5) == {TIMEOUT_HEADER: "0.500"}
    assert d.error().status == 504 and d.error().error_type == "deadline_exceeded"


@pytest.mark.parametrize("value", ["", "soon", "0", "-3", "nan", "inf", "86401"])
def test_a_bad_timeout_header_is_400_naming_it(value):
    with pytest.raises(GatewayError) as bad:
        Deadline.start(value, None, 600)
    assert (bad.value.status, bad.value.param) == (400, TIMEOUT_HEADER) and TIMEOUT_HEADER in bad.value.message
