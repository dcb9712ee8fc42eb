"""The worker stops generating for a caller whose deadline (x-inferwatch-timeout) has passed."""

from __future__ import annotations

import json

import httpx
import pytest

from inference.protocol import TIMEOUT_HEADER
from tests.inference.conftest import DEMO
from tests.inference.test_worker_faults import wait_stats
from tests.servers import start_worker

# 1000 tokens at 50 ms a decode step take at least 50 s: a 0.5 s deadline passes first on any machine
LONG = {"model": DEMO, "messages": [{"role": "user", "content": "go"}], "max_tokens": 1000, "ignore_eos": True}


@pytest.fixture(scope="module")
def slow_worker(demo_dir, tmp_path_factory):
    w = start_worker(
        demo_dir, tmp_path_factory.mktemp("deadline"), "--max-batch-size", "4", "--fault.extra-token-latency-s", "0.05"
    )
    yield w
    w.stop()


def _idle_after(url: str, cancelled_before: int) -> dict:
    return wait_stats(url, lambda s: s["running"] == 0 and s["waiting"] == 0 and s["cancelled"] > cancelled_before)


def test_a_passed_deadline_answers_504_and_frees_the_slot(slow_worker):
    before = httpx.get(slow_worker.url + "/v1/engine/stats").json()["cancelled"]
    r = httpx.post(slow_worker.url + "/v1/chat/completions", json=LONG, headers={TIMEOUT_HEADER: "0.5"}, timeout=60)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "deadline_exceeded"
    stats = _idle_after(slow_worker.url, before)
    assert (stats["running"], stats["waiting"]) == (0, 0) and stats["cancelled"] == before + 1


def test_a_stream_past_its_deadline_ends_with_an_error_event(slow_worker):
    before = httpx.get(slow_worker.url + "/v1/engine/stats").json()["cancelled"]
    with httpx.stream(
        "POST",
        slow_worker.url + "/v1/completions",
        json={**LONG, "prompt": "go", "stream": True},
        headers={TIMEOUT_HEADER: "0.5"},
        timeout=60,
    ) as r:
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "deadline_exceeded"
    assert len(events) < 1000  # it stopped generating
    stats = _idle_after(slow_worker.url, before)
    assert stats["cancelled"] == before + 1


def test_a_request_within_its_deadline_is_answered(slow_worker):
    r = httpx.post(
        slow_worker.url + "/v1/chat/completions",
        json={**LONG, "max_tokens": 4},
        headers={TIMEOUT_HEADER: "120"},
        timeout=60,
    )
    assert r.status_code == 200
    assert r.json()["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf", "1e9"])
def test_a_bad_timeout_header_is_refused_naming_it(slow_worker, value):
    r = httpx.post(
        slow_worker.url + "/v1/chat/completions", json={**LONG, "max_tokens": 4}, headers={TIMEOUT_HEADER: value}
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == TIMEOUT_HEADER and TIMEOUT_HEADER in error["message"]
