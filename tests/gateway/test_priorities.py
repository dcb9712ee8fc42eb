"""Priorities, shedding and per-tenant concurrency caps through the real gateway.

A stub upstream streams slowly (0.2 s a chunk), so a stream the test has opened holds its slot
until the test closes it, whatever the machine's speed; the assertions never depend on time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config import Limits, TenantConfig, UpstreamConfig, VersionTarget
from gateway.priority import PRIORITY_HEADER
from safety.config import SafetyConfig
from tests.gateway.conftest import ADMIN_KEY, Harness, Stub, gateway_server, stub_server
from tests.servers import wait_until

MSG = [{"role": "user", "content": "Hello"}]
TENANTS = {
    "acme": TenantConfig(),
    "bulk": TenantConfig(priority="batch"),
    "capped": TenantConfig(limits=Limits(max_concurrent_requests=1)),
}


@pytest.fixture
def slow_stub() -> Iterator[Stub]:
    with stub_server("slow") as s:
        s.behaviour.chunk_delay_s = 0.2
        yield s


@pytest.fixture
def gw(tmp_path: Path, ledger_url: str, slow_stub: Stub) -> Iterator[Harness]:
    ups = {"stub-slow": UpstreamConfig(urls=[slow_stub.url], max_parallel_requests=2)}
    with gateway_server(
        tmp_path,
        ledger_url,
        ups,
        {"m": [VersionTarget(version="stub-slow")]},
        tenants=TENANTS,
        overload={"batch_share": 0.5, "batch_max_wait_s": 0.2, "retry_after_s": 3},
        safety=SafetyConfig(enabled=False),
    ) as h:
        yield h


@contextlib.contextmanager
def held_stream(h: Harness, tenant: str, headers: dict[str, str] | None = None) -> Iterator[None]:
    """A stream of 1000 slow chunks, open (its first chunk read) until the block ends."""
    body = {"model": "m", "messages": MSG, "max_tokens": 1000, "stream": True}
    with (
        httpx.Client(timeout=60) as c,
        c.stream(
            "POST", h.url + "/v1/chat/completions", json=body, headers={**h.headers(tenant), **(headers or {})}
        ) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        next(line for line in lines if line.startswith("data: "))
        yield


def chat(h: Harness, tenant: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        h.url + "/v1/chat/completions",
        json={"model": "m", "messages": MSG, "max_tokens": 1},
        headers={**h.headers(tenant), **(headers or {})},
        timeout=60,
    )


def idle(h: Harness) -> None:
    gate = h.gateway.gates.gates["stub-slow"]
    caps = h.gateway.admission.concurrency
    wait_until(lambda: sum(gate.held.values()) == 0 and not caps.inflight, "slots given back")


def test_batch_is_shed_while_interactive_gets_the_slot_kept_for_it(gw: Harness):
    with held_stream(gw, "bulk"):  # holds the one batch slot of two
        shed = chat(gw, "bulk")
        assert shed.status_code == 503 and shed.headers["retry-after"] == "3"
        assert shed.json()["error"]["code"] == "overloaded"
        answered = chat(gw, "acme")
        assert answered.status_code == 200
    idle(gw)
    rows = gw.rows()
    assert sorted((r.tenant, r.priority, r.status_code, r.error_type or "") for r in rows) == [
        ("acme", "interactive", 200, ""),
        ("bulk", "batch", 499, "client_disconnect"),
        ("bulk", "batch", 503, "overloaded"),
    ]
    assert gw.metric("inferwatch_requests_shed_total", tenant="bulk", priority="batch", reason="wait_timeout") == 1
    assert chat(gw, "bulk").status_code == 200  # the slot came back


def test_interactive_traffic_asking_for_batch_is_treated_as_batch(gw: Harness):
    with held_stream(gw, "acme", {PRIORITY_HEADER: "batch"}):
        assert chat(gw, "acme", {PRIORITY_HEADER: "batch"}).status_code == 503
        assert chat(gw, "acme").status_code == 200
    idle(gw)
    assert {(r.priority, r.status_code) for r in gw.rows()} >= {("batch", 503), ("interactive", 200)}


def test_bad_priority_headers_are_refused_naming_the_header_and_recorded(gw: Harness):
    bad = chat(gw, "acme", {PRIORITY_HEADER: "urgent"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == PRIORITY_HEADER
    lifted = chat(gw, "bulk", {PRIORITY_HEADER: "interactive"})
    assert lifted.status_code == 403 and PRIORITY_HEADER in lifted.json()["error"]["message"]
    assert sorted(r.status_code for r in gw.rows()) == [400, 403]


def test_a_tenant_over_its_concurrency_cap_gets_429_and_its_next_request_after_that_passes(gw: Harness):
    with held_stream(gw, "capped"):
        refused = chat(gw, "capped")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
        assert chat(gw, "acme").status_code == 200  # another tenant is not capped by it
    idle(gw)
    assert chat(gw, "capped").status_code == 200
    shed = gw.metric("inferwatch_requests_shed_total", tenant="capped", priority="interactive", reason="tenant_cap")
    assert shed == 1
    assert sum(r.status_code == 429 and r.error_type == "rate_limited" for r in gw.rows()) == 1


@pytest.mark.parametrize(("field", "value"), [("priority", "urgent"), ("timeout_s", -1), ("timeout_s", "soon")])
def test_the_admin_api_refuses_bad_routing_settings_naming_the_field(gw: Harness, field: str, value: object):
    r = httpx.post(
        gw.url + "/v1/admin/tenants",
        json={"id": "newco", field: value},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 400 and field in json.dumps(r.json()["error"])


def test_the_admin_api_stores_routing_settings_the_gateway_applies(gw: Harness):
    r = httpx.post(
        gw.url + "/v1/admin/tenants",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"id": "nightly", "priority": "batch", "timeout_s": 30, "limits": {"max_concurrent_requests": 4}},
    )
    assert r.status_code == 201
    assert r.json()["settings"].items() >= {"priority": "batch", "timeout_s": 30, "max_concurrent_requests": 4}.items()
    gw.keys["nightly"] = gw.gateway.store.create_key("nightly").secret
    assert chat(gw, "nightly").status_code == 200
    [row] = [r for r in gw.rows() if r.tenant == "nightly"]
    assert row.priority == "batch"
