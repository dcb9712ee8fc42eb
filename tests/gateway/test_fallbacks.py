"""Fallback chains end to end: real workers on the demo model (one with a 64-token context, one
whose queue is always full, one that answers), stub upstreams for failures a worker cannot be
told to have, the gateway, the real `openai` client, the ledger on SQLite and PostgreSQL.

Each test checks what the client got, the ledger row (which version answered, which were tried
and why) and the fallback metric.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from canary.service import CanaryService
from gateway.config import UpstreamConfig, VersionTarget
from ledger.models import RequestRollupMinute
from safety.config import SafetyConfig
from tests.gateway.conftest import Harness, Stub, gateway_server, stub_server
from tests.inference.conftest import DEMO
from tests.inference.test_worker_faults import wait_stats
from tests.servers import Proc, start_worker

MSG = [{"role": "user", "content": "Hello"}]
LONG_PROMPT = [{"role": "user", "content": "word " * 200}]  # about 250 tokens by the gateway's estimate: over 64


@pytest.fixture(scope="module")
def small_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    w = start_worker(
        tmp_path_factory.mktemp("small"),
        tmp_path_factory.mktemp("logs"),
        "--max-model-len",
        "64",
        "--max-batch-size",
        "4",
    )
    yield w
    w.stop()


@pytest.fixture(scope="module")
def full_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """One slot and a queue of one, slow steps: two long streams saturate it (see `saturated`)."""
    w = start_worker(
        tmp_path_factory.mktemp("full"),
        tmp_path_factory.mktemp("logs"),
        "--max-queue",
        "1",
        "--max-batch-size",
        "1",
        "--fault.extra-token-latency-s",
        "0.05",
    )
    yield w
    w.stop()


@contextlib.contextmanager
def saturated(w: Proc) -> Iterator[None]:
    """`w` running one long stream and queueing another, sent to it directly: its next request gets 503 queue_full."""
    body = {"model": DEMO, "messages": MSG, "max_tokens": 1000, "ignore_eos": True, "stream": True}
    with httpx.Client(timeout=60) as c, c.stream("POST", w.url + "/v1/chat/completions", json=body) as first:
        lines = first.iter_lines()  # keep a reference: a collected iterator closes the connection
        next(lines)
        wait_stats(w.url, lambda s: s["running"] == 1)
        with c.stream("POST", w.url + "/v1/chat/completions", json=body) as second:
            assert second.status_code == 200
            wait_stats(w.url, lambda s: s["waiting"] == 1)
            yield


@pytest.fixture
def stubs() -> Iterator[dict[str, Stub]]:
    with stub_server("broken") as broken, stub_server("down") as down, stub_server("dying") as dying:
        broken.behaviour.fail_status = 500
        down.behaviour.healthy = False
        dying.behaviour.die_after_chunks = 2
        yield {"broken": broken, "down": down, "dying": dying}


@pytest.fixture
def gw(
    tmp_path: Path, ledger_url: str, real_worker: Proc, small_worker: Proc, full_worker: Proc, stubs: dict[str, Stub]
) -> Iterator[Harness]:
    urls = {
        "demo-big": real_worker.url,
        "demo-small": small_worker.url,
        "demo-full": full_worker.url,
        **{f"stub-{k}": s.url for k, s in stubs.items()},
    }
    ups = {v: UpstreamConfig(urls=[u]) for v, u in urls.items()}
    aliases = {
        "big": "demo-big",
        "small": "demo-small",
        "strict": "demo-small",
        "gpu": "demo-full",
        "flaky": "stub-broken",
        "down": "stub-down",
        "dying": "stub-dying",
    }
    fallbacks = {a: ["big"] for a in aliases if a not in ("big", "strict")}
    fallbacks["strict"] = {"targets": ["big"], "reasons": ["server_error"]}  # no context-window fallback
    with gateway_server(
        tmp_path,
        ledger_url,
        ups,
        {a: [VersionTarget(version=v)] for a, v in aliases.items()},
        fallbacks=fallbacks,
        safety=SafetyConfig(enabled=False),
    ) as h:
        yield h


def fallbacks(h: Harness, alias: str, reason: str) -> float:
    return h.metric_sum("inferwatch_fallbacks_total", model_alias=alias, reason=reason)


def test_a_prompt_longer_than_the_context_goes_to_the_next_version_unsent(gw: Harness, real_worker: Proc):
    raw = gw.client().chat.completions.with_raw_response.create(model="small", messages=LONG_PROMPT, max_tokens=4)
    assert raw.headers["x-model-version"] == "demo-big"
    [row] = gw.rows()
    assert (row.alias, row.model_version, row.status_code) == ("small", "demo-big", 200)
    assert row.fallback_from == "demo-small"
    assert row.attempts == [
        {"version": "demo-small", "upstream": None, "status": None, "reason": "context_window"},
        {"version": "demo-big", "upstream": real_worker.url, "status": 200, "reason": None},
    ]
    assert fallbacks(gw, "small", "context_window") == 1


def test_a_worker_refusing_the_context_is_left_for_the_next_version(gw: Harness, small_worker: Proc):
    # a short prompt passes the gateway's estimate; prompt + max_tokens is over the worker's 64
    raw = gw.client().chat.completions.with_raw_response.create(model="small", messages=MSG, max_tokens=100)
    assert raw.headers["x-model-version"] == "demo-big"
    [row] = gw.rows()
    assert row.attempts[0] == {
        "version": "demo-small",
        "upstream": small_worker.url,
        "status": 400,
        "reason": "context_window",
    }
    assert row.model_version == "demo-big" and row.completion_tokens > 0


def test_a_chain_without_context_window_passes_the_workers_400_on(gw: Harness):
    with pytest.raises(openai.BadRequestError) as refused:
        gw.client().chat.completions.create(model="strict", messages=MSG, max_tokens=100)
    assert "maximum context length" in refused.value.message
    [row] = gw.rows()
    assert (row.status_code, row.model_version, row.fallback_from, row.attempts) == (400, "demo-small", None, None)
    assert fallbacks(gw, "strict", "context_window") == 0


def test_a_saturated_pool_overflows_to_the_next_one(gw: Harness, full_worker: Proc):
    with saturated(full_worker):
        raw = gw.client().chat.completions.with_raw_response.create(model="gpu", messages=MSG, max_tokens=4)
    assert raw.headers["x-model-version"] == "demo-big"
    [row] = gw.rows()
    assert row.attempts[0] == {
        "version": "demo-full",
        "upstream": full_worker.url,
        "status": 503,
        "reason": "queue_full",
    }
    assert (row.model_version, row.fallback_from) == ("demo-big", "demo-full")
    assert fallbacks(gw, "gpu", "queue_full") == 1


def test_a_failing_or_unhealthy_version_falls_back(gw: Harness, stubs: dict[str, Stub]):
    c = gw.client()
    assert c.chat.completions.create(model="flaky", messages=MSG, max_tokens=4).choices[0].message.content is not None
    assert c.chat.completions.create(model="down", messages=MSG, max_tokens=4).usage.completion_tokens > 0
    rows = {r.alias: r for r in gw.rows()}
    broken = rows["flaky"].attempts[0]
    assert (broken["version"], broken["status"], broken["reason"]) == ("stub-broken", 500, "server_error")
    assert rows["down"].attempts[0] == {
        "version": "stub-down",
        "upstream": None,
        "status": None,
        "reason": "unavailable",
    }
    assert all(r.model_version == "demo-big" and r.status_code == 200 for r in rows.values())
    assert fallbacks(gw, "flaky", "server_error") == 1 and fallbacks(gw, "down", "unavailable") == 1
    assert stubs["down"].behaviour.requests == 0


def test_a_stream_is_switched_before_its_first_byte(gw: Harness):
    chunks = list(
        gw.client().chat.completions.create(
            model="flaky", messages=MSG, max_tokens=6, stream=True, extra_body={"ignore_eos": True}
        )
    )
    assert chunks[-1].choices[0].finish_reason == "length"
    [row] = gw.rows()
    assert row.stream and (row.status_code, row.model_version, row.fallback_from) == (200, "demo-big", "stub-broken")
    assert row.completion_tokens == 6


def test_a_stream_that_broke_after_its_first_byte_is_never_switched(gw: Harness, stubs: dict[str, Stub]):
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        headers=gw.headers(),
        timeout=30,
        json={"model": "dying", "messages": MSG, "max_tokens": 8, "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert '"upstream_disconnected"' in events[-1]  # the error event, after the chunks that came
    [row] = gw.rows()
    assert (row.status_code, row.error_type, row.model_version) == (502, "upstream_disconnected", "stub-dying")
    assert row.fallback_from is None and row.attempts is None
    assert fallbacks(gw, "dying", "server_error") == 0 and stubs["dying"].behaviour.requests == 1


def test_canary_samples_and_slo_rollups_count_a_request_by_the_version_that_answered(gw: Harness, full_worker: Proc):
    with saturated(full_worker):
        gw.client().chat.completions.create(model="gpu", messages=MSG, max_tokens=4)
    gw.flush()
    now = datetime.now(timezone.utc)
    canary = CanaryService(gw.gateway.store.engine)
    window = (now - timedelta(hours=1), now + timedelta(hours=1))
    assert len(canary.records("gpu", "demo-big", *window)) == 1
    assert canary.records("gpu", "demo-full", *window) == []
    with Session(gw.gateway.store.engine) as s:
        versions = set(s.scalars(select(RequestRollupMinute.model_version).where(RequestRollupMinute.alias == "gpu")))
    assert versions == {"demo-big"}
