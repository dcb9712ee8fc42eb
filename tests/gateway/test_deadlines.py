"""Deadlines end to end: the tenant's default timeout or the client's header, a real worker on
the demo model that is slow on purpose (50 ms a token, so 900 tokens cannot finish within a
2 s deadline on any machine), the gateway, the `openai` client, the ledger on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from gateway.config import TenantConfig, UpstreamConfig, VersionTarget
from inference.protocol import TIMEOUT_HEADER
from safety.config import SafetyConfig
from tests.gateway.conftest import Harness, Stub, gateway_server
from tests.servers import Proc, start_worker, wait_until

MSG = [{"role": "user", "content": "Tell me a long story"}]
LONG = {"max_tokens": 900, "extra_body": {"ignore_eos": True}}
# long enough for the gateway's own path to the upstream's headers (a key lookup in the
# ledger, on PostgreSQL too) on a stalled machine, far too short for LONG
DEADLINE = "2"


@pytest.fixture(scope="module")
def slow_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    w = start_worker(
        tmp_path_factory.mktemp("slow"),
        tmp_path_factory.mktemp("logs"),
        "--max-batch-size",
        "4",
        "--fault.extra-token-latency-s",
        "0.05",
    )
    yield w
    w.stop()


@pytest.fixture
def gw(tmp_path: Path, ledger_url: str, slow_worker: Proc, stub: Stub) -> Iterator[Harness]:
    ups = {"demo-slow": UpstreamConfig(urls=[slow_worker.url]), "stub@1": UpstreamConfig(urls=[stub.url])}
    tenants = {"acme": TenantConfig(), "hasty": TenantConfig(timeout_s=float(DEADLINE))}
    with gateway_server(
        tmp_path,
        ledger_url,
        ups,
        {"demo": [VersionTarget(version="demo-slow")], "m": [VersionTarget(version="stub@1")]},
        tenants=tenants,
        safety=SafetyConfig(enabled=False),
    ) as h:
        yield h


def worker_idle(url: str) -> None:
    wait_until(lambda: httpx.get(url + "/v1/engine/stats").json()["running"] == 0, "the worker stopped generating")


def breakers_closed(h: Harness) -> bool:
    return all(r.breaker.consecutive == 0 for r in h.gateway.pools.all_replicas())


def test_a_request_past_its_deadline_gets_504_and_the_worker_stops(gw: Harness, slow_worker: Proc):
    with pytest.raises(openai.APIStatusError) as late:
        gw.client().chat.completions.create(
            model="demo", messages=MSG, extra_headers={TIMEOUT_HEADER: DEADLINE}, **LONG
        )
    assert late.value.status_code == 504 and late.value.code == "deadline_exceeded"
    [row] = gw.rows()
    assert (row.status_code, row.error_type, row.model_version) == (504, "deadline_exceeded", "demo-slow")
    worker_idle(slow_worker.url)
    assert breakers_closed(gw)  # a client's short deadline says nothing about the worker's health


def test_a_stream_past_its_deadline_ends_with_a_504_event(gw: Harness):
    body = {"model": "demo", "messages": MSG, "max_tokens": 900, "ignore_eos": True, "stream": True}
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        headers={**gw.headers(), TIMEOUT_HEADER: DEADLINE},
        timeout=60,
        json=body,
    ) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["code"] == "deadline_exceeded"
    [row] = gw.rows()
    assert (row.status_code, row.error_type) == (504, "deadline_exceeded") and row.stream
    assert breakers_closed(gw)


def test_the_tenants_default_timeout_applies_without_a_header(gw: Harness):
    with pytest.raises(openai.APIStatusError) as late:
        gw.client("hasty").chat.completions.create(model="demo", messages=MSG, **LONG)
    assert late.value.status_code == 504
    [row] = gw.rows()
    assert (row.tenant, row.error_type) == ("hasty", "deadline_exceeded")


def test_the_worker_is_told_the_time_left(gw: Harness, stub: Stub):
    gw.client().chat.completions.create(model="m", messages=MSG, max_tokens=2, extra_headers={TIMEOUT_HEADER: "30"})
    left = float(stub.behaviour.seen_headers[-1][TIMEOUT_HEADER])
    assert 0 < left <= 30
    gw.client("hasty").chat.completions.create(model="m", messages=MSG, max_tokens=2)
    assert 0 < float(stub.behaviour.seen_headers[-1][TIMEOUT_HEADER]) <= float(DEADLINE)


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan"])
def test_a_bad_timeout_header_is_400_naming_it_and_recorded(gw: Harness, value: str):
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "m", "messages": MSG},
        headers={**gw.headers(), TIMEOUT_HEADER: value},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == TIMEOUT_HEADER
    [row] = gw.rows()
    assert (row.status_code, row.error_type) == (400, "invalid_request")
