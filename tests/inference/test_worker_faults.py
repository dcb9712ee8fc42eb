"""Queue limits, fault injection and graceful shutdown, each on its own worker process."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx

from tests.inference.conftest import DEMO
from tests.servers import start_worker
from tests.prom_text import samples

LONG = {
    "model": DEMO,
    "messages": [{"role": "user", "content": "go"}],
    "max_tokens": 1000,
    "stream": True,
    "ignore_eos": True,
}


def wait_stats(url: str, pred, deadline_s: float = 30) -> dict:
    end = time.monotonic() + deadline_s
    while True:
        stats = httpx.get(url + "/v1/engine/stats").json()
        if pred(stats) or time.monotonic() > end:
            return stats
        time.sleep(0.02)


def test_full_queue_answers_503_with_retry_after(demo_dir, tmp_path):
    # slow decode steps keep the first request running for the whole test, whatever the machine's load
    w = start_worker(
        demo_dir, tmp_path, "--max-batch-size", "1", "--max-queue", "1", "--fault.extra-token-latency-s", "0.05"
    )
    try:
        with httpx.Client(timeout=60) as c, c.stream("POST", w.url + "/v1/chat/completions", json=LONG) as first:
            lines = first.iter_lines()  # keep a reference: a collected iterator closes the connection
            next(lines)
            assert wait_stats(w.url, lambda s: s["running"] == 1)["running"] == 1
            with c.stream("POST", w.url + "/v1/chat/completions", json=LONG) as second:
                assert second.status_code == 200  # accepted: waits for the slot
                assert wait_stats(w.url, lambda s: s["waiting"] == 1)["waiting"] == 1
                third = c.post(w.url + "/v1/chat/completions", json=LONG | {"stream": False})
                assert third.status_code == 503
                assert third.headers["retry-after"] == "1"
                assert third.json()["error"]["code"] == "queue_full"
        # both streams closed: their sequences are cancelled and the worker is idle again
        stats = wait_stats(w.url, lambda s: s["running"] == 0 and s["waiting"] == 0)
        assert (stats["running"], stats["waiting"]) == (0, 0)
        assert "queue_full" in httpx.get(w.url + "/metrics").text
    finally:
        w.stop()


def _faults(url: str) -> dict[str, float]:
    """inferwatch_worker_faults_injected_total by kind, from the worker's /metrics."""
    text = httpx.get(url + "/metrics", timeout=5).text
    return {s.labels["kind"]: s.value for s in samples(text, "inferwatch_worker_faults_injected_total")}


def test_fault_injection_errors_and_latency(demo_dir, tmp_path):
    w = start_worker(demo_dir, tmp_path, "--fault.error-rate", "1.0")
    try:
        r = httpx.post(w.url + "/v1/chat/completions", json=LONG | {"stream": False, "max_tokens": 2})
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "injected_fault"
        assert _faults(w.url) == {"error": 1.0}
    finally:
        w.stop()
    w = start_worker(demo_dir, tmp_path, "--fault.extra-latency-s", "0.3", "--fault.extra-token-latency-s", "0.05")
    try:
        before = _faults(w.url)  # the warm-up's decode steps paused too
        r = httpx.post(w.url + "/v1/chat/completions", json=LONG | {"stream": False, "max_tokens": 4})
        assert r.status_code == 200
        after = _faults(w.url)
        # The worker's own count of the delays it applied, not a clock (no timing in tests):
        # one before the request's first token; then the prefill gives token 1, and each decode
        # step (tokens 2, 3 and 4) is preceded by one pause, so all three are counted by the time
        # the response is complete.
        assert {k: after[k] - before.get(k, 0.0) for k in after} == {"latency": 1.0, "token_latency": 3.0}
    finally:
        w.stop()


def test_sigterm_finishes_running_requests_then_exits(demo_dir, tmp_path):
    # paused decode steps keep the request running when the signal lands, and 40 of them end well
    # inside the worker's 60 s grace however loaded the machine is
    w = start_worker(demo_dir, tmp_path, "--fault.extra-token-latency-s", "0.05")
    events: list[str] = []

    def consume() -> None:
        body = LONG | {"max_tokens": 40}
        with httpx.stream("POST", w.url + "/v1/chat/completions", json=body, timeout=60) as r:
            events.extend(line for line in r.iter_lines() if line.startswith("data: "))

    t = threading.Thread(target=consume)
    t.start()
    wait_stats(w.url, lambda s: s["running"] == 1)
    w.process.send_signal(signal.SIGTERM)
    t.join(120)
    assert events, w.output()[-3000:]
    # uvicorn re-raises SIGTERM after a clean shutdown, so the exit status is -15, not a crash
    assert w.process.wait(60) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in w.output()
    assert events[-1] == "data: [DONE]"
    finish = json.loads(events[-2][6:])["choices"][0]["finish_reason"]
    assert finish == "length"
    # it stopped listening
    try:
        httpx.get(w.url + "/health", timeout=2)
        raise AssertionError("worker still answering after SIGTERM")
    except httpx.TransportError:
        pass
