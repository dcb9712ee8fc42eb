"""The five scripted faults of the platform, each one test: real processes, real PostgreSQL,
a real full filesystem. Deadlines only, never timing thresholds."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway.config import UpstreamConfig, VersionTarget
from inference.config import FaultInjection, WorkerConfig
from inferwatch.workers import ManagedWorker, Supervisor
from ledger.models import Request as RequestRow
from safety.config import SafetyConfig
from tests.gateway.conftest import ADMIN_KEY, gateway_server, stub_server
from tests.reliability._faults import fill, tiny_tmpfs
from tests.reliability._procs import start_gateway
from tests.reliability._traffic import CHAT, Traffic, call
from tests.servers import wait_until
from tests.prom_text import total


def _running(url: str) -> float:
    """Sequences in a worker's running batch, from its /metrics."""
    return total(httpx.get(url + "/metrics", timeout=5).text, "inferwatch_worker_num_requests_running")


def test_worker_killed_during_streaming(tmp_path: Path):
    """Two co-located demo workers under the platform's Supervisor; the one serving a stream
    is SIGKILLed mid-stream. The client gets an error event, the record says so, the gateway
    keeps serving from the other replica, and the Supervisor restarts the dead worker."""
    # a slow decode step keeps the stream open long enough to kill its worker in the middle
    cfg = WorkerConfig(data_dir=tmp_path / "models", max_batch_size=4, fault=FaultInjection(extra_token_latency_s=0.05))
    workers = [ManagedWorker(cfg, None, tmp_path) for _ in range(2)]
    supervisor = Supervisor(workers)
    try:
        for w in workers:
            w.start()
        version = {w.wait_ready()["version"] for w in workers}.pop()
        supervisor.start()
        ups = {version: UpstreamConfig(urls=[w.url for w in workers])}
        with gateway_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'l.db'}",
            ups,
            {"m": [VersionTarget(version=version)]},
            health_interval_s=0.3,
            prices={"default": {"input_per_1m": 2.0, "output_per_1m": 6.0}},
            safety=SafetyConfig(enabled=False),
        ) as h:  # every chunk reaches the client as sent: exact checks
            body = CHAT | {
                "stream": True,
                "max_tokens": 400,
                "ignore_eos": True,
                "stream_options": {"include_usage": True, "continuous_usage_stats": True},
            }
            t0 = time.perf_counter()
            with httpx.stream("POST", h.url + "/v1/chat/completions", json=body, headers=h.headers(), timeout=120) as r:
                assert r.status_code == 200
                lines = r.iter_lines()
                events, text_at = [], []
                # two tokens have reached the client: the kill lands mid-stream, with a time per output token
                while len(text_at) < 2:
                    line = next(lines)
                    if line.startswith("data: "):
                        events.append(line[6:])
                        if (json.loads(line[6:]).get("choices") or [{}])[0].get("delta", {}).get("content"):
                            text_at.append(time.perf_counter() - t0)
                first_text_s = text_at[0]
                wait_until(
                    lambda: any(_running(w.url) for w in workers), "the stream to run on a worker", deadline_s=30
                )
                victim = next(w for w in workers if _running(w.url))
                survivor = next(w for w in workers if w is not victim)
                victim.process.send_signal(signal.SIGKILL)
                events += [line[6:] for line in lines if line.startswith("data: ")]
            assert json.loads(events[-1])["error"]["code"] == "upstream_disconnected", (len(events), events[-3:])
            assert any("choices" in e for e in events[:-1])  # it was mid-stream, not before it
            [row] = h.rows()
            assert (row.status_code, row.error_type, row.stream, row.upstream) == (
                502,
                "upstream_disconnected",
                True,
                victim.url,
            )
            # billed and timed for what it got: the last running usage the client saw, its first token
            got = [json.loads(e)["usage"] for e in events[:-1] if "usage" in json.loads(e)][-1]
            assert (row.prompt_tokens, row.completion_tokens, row.partial, row.usage_estimated) == (
                got["prompt_tokens"],
                got["completion_tokens"],
                True,
                False,
            )
            assert 1 < got["completion_tokens"] < 400
            assert row.cost_usd == pytest.approx((got["prompt_tokens"] * 2.0 + got["completion_tokens"] * 6.0) / 1e6)
            assert 0 < row.ttft_s <= first_text_s and row.tpot_s is not None

            # the gateway keeps serving, from the other replica, while the victim is down
            after = [
                httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers=h.headers(), timeout=60) for _ in range(4)
            ]
            assert [r.status_code for r in after] == [200] * 4
            assert {r.upstream for r in h.rows()[1:]} == {survivor.url}

            wait_until(lambda: victim.restarts == 1, "the supervisor to restart the worker")
            victim.wait_ready(timeout_s=120)
            replica = next(r for r in h.gateway.pools.all_replicas() if r.url == victim.url)
            wait_until(lambda: replica.healthy, "the restarted worker back in rotation")
            # the gauge is published when the whole health round is done, after the replica's flag
            wait_until(
                lambda: h.metric("inferwatch_worker_up", upstream=victim.url, model_version=version) == 1,
                "the worker_up gauge to say so",
            )
    finally:
        supervisor.stop()


@pytest.mark.postgres
def test_database_unreachable_for_30s_during_traffic(tmp_path: Path, stub, pg_server, pg_ledger_template):
    """PostgreSQL is stopped for 30 s while clients keep sending chat, streaming and
    embeddings requests: every request is answered, spooled, replayed, and has its one row."""
    url = pg_server.create_database("reliability_outage", template=pg_ledger_template)
    ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
    with gateway_server(
        tmp_path, url, ups, {"m": [VersionTarget(version="stub@1")]}, default_limits={"rpm": None, "tpm": None}
    ) as h:
        writer = h.app.state.writer
        with Traffic(h.url, h.headers(), clients=3, pause_s=0.05) as traffic:
            wait_until(lambda: traffic.count() >= 30, "traffic before the outage")
            pg_server.stop()
            try:
                down_at = traffic.count()
                time.sleep(30)
                served_while_down = traffic.count() - down_at
                spooled = writer.stats().spooled_total
                assert h.metric("inferwatch_ledger_database_up") in (0.0, 1.0)
            finally:
                pg_server.start()
            recovered_at = traffic.count()
            wait_until(lambda: traffic.count() >= recovered_at + 30, "traffic after the outage")
        outcomes = traffic.outcomes
        assert served_while_down > 0 and spooled > 0
        assert [o for o in outcomes if o.status != 200 or (o.kind == "stream" and not o.done)] == []
        wait_until(lambda: writer.flush(1), "the spool to be replayed", deadline_s=120)
        rows = h.rows()
        assert sorted(r.request_id for r in rows) == sorted(o.request_id for o in outcomes)  # none lost, none twice
        st = writer.stats()
        assert st.replayed_total >= spooled and st.spool_files == 0 and st.dropped_total == 0
        assert st.db_available
        assert sum(r.completion_tokens for r in rows) == sum(
            (o.usage or {}).get("completion_tokens", 0) for o in outcomes
        )


def test_gateway_sigterm_during_traffic(tmp_path: Path):
    """A real `inferwatch serve` process gets SIGTERM while 12 streams are mid-flight: it
    stops taking new connections, every stream finishes with [DONE], the ledger queue is
    flushed before exit, and every request has its row."""
    with stub_server() as stub:
        stub.behaviour.chunk_delay_s = 0.05  # 30 tokens: each stream lasts about 1.5 s
        gw, _ = start_gateway(
            tmp_path,
            {
                "data_dir": str(tmp_path / "serve-data"),
                "admin_key": ADMIN_KEY,
                "gateway": {
                    "upstreams": {"stub@1": {"urls": [stub.url]}},
                    "aliases": {"m": [{"version": "stub@1"}]},
                    "default_limits": {"rpm": None, "tpm": None},
                },
            },
        )
        proc, url, ledger = gw.process, gw.url, tmp_path / "serve-data" / "ledger.db"
        key = re.search(r"^\s+(iw-\S+)$", gw.output(), re.M).group(1)  # the development key it prints once
        try:
            headers = {"authorization": f"Bearer {key}"}
            with httpx.Client(timeout=30) as c:
                warm = [call(c, url, headers, k) for k in ("chat", "embeddings", "chat")]
            started = threading.Barrier(13)
            results: list = []

            def stream() -> None:
                body = CHAT | {"stream": True, "max_tokens": 30}
                with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
                    lines = r.iter_lines()
                    head = next(lines)
                    started.wait(30)
                    results.append((r.status_code, r.headers["x-request-id"], [head, *lines]))

            threads = [threading.Thread(target=stream) for _ in range(12)]
            for t in threads:
                t.start()
            started.wait(30)  # every stream has its first event
            proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(60)
            # uvicorn re-raises the signal once its graceful shutdown is complete
            assert proc.wait(60) == -signal.SIGTERM
            assert "Application shutdown complete" in gw.output()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert len(results) == 12
    for status, _, lines in results:
        assert status == 200 and lines[-1] == "data: [DONE]" or lines[-2:] == ["data: [DONE]", ""]
        assert not any('"error"' in line for line in lines)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)
    engine = create_engine(f"sqlite:///{ledger}")
    try:
        with Session(engine) as s:
            rows = {r.request_id: r for r in s.scalars(select(RequestRow))}
    finally:
        engine.dispose()
    expected = {o.request_id for o in warm} | {rid for _, rid, _ in results}
    assert set(rows) == expected and len(expected) == 15
    assert all(rows[rid].status_code == 200 and rows[rid].completion_tokens == 30 for _, rid, _ in results)


def test_slow_upstream_timeouts_and_circuit_breaker(tmp_path: Path):
    """An upstream that answers too late: 504s, then the breaker opens and the gateway answers
    503 without calling it; a stream that stalls mid-way ends with an error event and counts
    toward the breaker like the 504s; once the upstream is fast again, the half-open trial
    closes the breaker."""
    with stub_server() as slow:
        ups = {"stub@1": UpstreamConfig(urls=[slow.url])}
        with gateway_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'l.db'}",
            ups,
            {"m": [VersionTarget(version="stub@1")]},
            first_byte_timeout_s=0.5,
            breaker_failures=3,
            breaker_open_s=5,  # the gauge reads 2 only while open: long enough to see on a stalled machine
            max_retries=0,
            health_interval_s=0.2,
        ) as h:
            post = lambda: httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers=h.headers(), timeout=30)  # noqa: E731
            # a stream whose chunks stall longer than the read timeout: an in-band error, recorded as a timeout
            slow.behaviour.chunk_delay_s = 1.5
            with httpx.stream(
                "POST", h.url + "/v1/chat/completions", json=CHAT | {"stream": True}, headers=h.headers(), timeout=30
            ) as r:
                events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
            assert r.status_code == 200 and json.loads(events[-1])["error"]["code"] == "upstream_disconnected"
            slow.behaviour.chunk_delay_s = 0

            slow.behaviour.delay_s = 3.0
            seen_before = slow.behaviour.requests
            codes = [post().status_code for _ in range(5)]
            assert codes == [504, 504, 503, 503, 503]  # the stalled stream was the first of 3 failures
            assert slow.behaviour.requests - seen_before == 2  # an open circuit is not even tried
            wait_until(
                lambda: h.metric("inferwatch_circuit_breaker_state", upstream=slow.url) == 2, "the breaker gauge"
            )

            slow.behaviour.delay_s = 0
            wait_until(lambda: post().status_code == 200, "the half-open trial to close the breaker", deadline_s=30)
            assert post().status_code == 200
            rows = h.rows()
            assert [(r.status_code, r.error_type) for r in rows[:6]] == [
                (502, "upstream_disconnected"),
                (504, "timeout"),
                (504, "timeout"),
                (503, "no_healthy_upstream"),
                (503, "no_healthy_upstream"),
                (503, "no_healthy_upstream"),
            ]
            assert rows[-1].status_code == 200


@pytest.mark.postgres
def test_spool_disk_full(tmp_path: Path, stub, pg_server, pg_ledger_template):
    """The database is down and the spool's filesystem is full (a real 256 KiB tmpfs mounted
    on the spool directory, filled to the last byte): requests are still served, the loss is
    counted (`spool_write_errors`, `inferwatch_ledger_dropped_records`) with a clear error,
    nothing crashes, and once disk and database are back, what was spooled is replayed."""
    url = pg_server.create_database("reliability_disk_full", template=pg_ledger_template)
    ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
    with tiny_tmpfs(tmp_path / "gw" / "spool", size_kib=256) as spool:
        with gateway_server(
            tmp_path, url, ups, {"m": [VersionTarget(version="stub@1")]}, default_limits={"rpm": None, "tpm": None}
        ) as h:
            writer = h.app.state.writer
            with httpx.Client(timeout=30) as c:
                ok = [call(c, h.url, h.headers(), "chat") for _ in range(5)]
                h.flush()
                pg_server.stop()
                try:
                    spooled = [call(c, h.url, h.headers(), k) for k in ("chat", "stream", "embeddings") * 4]
                    wait_until(lambda: writer.stats().spooled_total == 12, "records to reach the spool")
                    filler = fill(spool)
                    lost = [call(c, h.url, h.headers(), k) for k in ("chat", "stream", "embeddings") * 4]
                    wait_until(lambda: writer.stats().dropped_total == 12, "the spool writes to fail")
                    st = writer.stats()
                    assert st.spool_write_errors > 0 and "No space left on device" in (st.last_error or "")
                    assert c.get(h.url + "/health").status_code == 200  # still serving, still healthy
                    metrics = c.get(h.url + "/metrics").text
                    assert "inferwatch_ledger_dropped_records 12.0" in metrics
                    filler.unlink()
                finally:
                    pg_server.start()
                after = [call(c, h.url, h.headers(), "chat") for _ in range(3)]
            assert all(o.status == 200 for o in ok + spooled + lost + after)
            assert all(o.done for o in spooled + lost if o.kind == "stream")
            wait_until(lambda: writer.flush(1), "the spool to be replayed", deadline_s=60)
            stored = {r.request_id for r in h.rows()}
            assert stored == {o.request_id for o in ok + spooled + after}
            assert writer.stats().spool_files == 0
