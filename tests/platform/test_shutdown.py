"""SIGTERM and SIGINT to `inferwatch serve` on its embedded default: the stream in flight
finishes, then the co-located workers are stopped too, and none is left behind (on a GPU
node such an orphan would keep the GPU's memory)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.reliability._procs import start_gateway
from tests.servers import wait_until


def _children(pid: int) -> set[int]:
    """Direct children of `pid`, from every thread's /proc entry (the supervisor thread
    restarts workers, so a worker's parent thread need not be the main one)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_co_located_workers(tmp_path: Path, sig: signal.Signals):
    # no upstreams configured: `serve` starts its own demo worker; a slow decode step keeps the
    # stream open across the signal
    gw, _ = start_gateway(
        tmp_path, {"data_dir": str(tmp_path / "data"), "worker": {"fault": {"extra_token_latency_s": 0.05}}}
    )
    proc = gw.process
    workers = _children(proc.pid)
    try:
        assert len(workers) == 1 and all(_alive(w) for w in workers)
        key = re.search(r"^\s+(iw-\S+)$", gw.output(), re.M).group(1)
        body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 40, "stream": True}
        with httpx.stream(
            "POST", gw.url + "/v1/chat/completions", json=body, timeout=60, headers={"authorization": f"Bearer {key}"}
        ) as r:
            lines = r.iter_lines()
            first = next(lines)
            proc.send_signal(sig)
            rest = list(lines)
        assert r.status_code == 200 and first.startswith("data: ")
        assert "data: [DONE]" in rest and not any('"error"' in line for line in rest)
        # it dies of the signal, as uvicorn alone would, but only after stopping its workers
        assert proc.wait(90) == -sig
        wait_until(lambda: not any(_alive(w) for w in workers), what="workers to be gone", deadline_s=5)
        assert "workers stopped; exiting on " + sig.name in gw.output()
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:  # a failed run must not leave its orphan behind either
            if _alive(w):
                os.kill(w, signal.SIGKILL)
