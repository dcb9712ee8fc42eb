"""Start real server processes for tests and wait until they are ready."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def wait_until(pred: Callable[[], bool], what: str, deadline_s: float = 60) -> None:
    """Poll until ``pred()`` holds; fail naming ``what`` after the deadline (never a speed check)."""
    end = time.monotonic() + deadline_s
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, for a child server to bind seconds later.

    Drawn below the kernel's ephemeral range: a port from bind(("", 0)) is free again once we
    close it, and the kernel may give it to any outgoing connection (the tests open thousands)
    before the child binds it. Below the range only another explicit bind can take it, and this
    process never hands one out twice."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range after 200 tries")


@dataclass
class Proc:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def spawn_logged(cmd: list[str], log: Path, **kw: Any) -> subprocess.Popen:
    """`subprocess.Popen` with stdout and stderr to `log`; our copy of the file is closed at once
    (the child holds its own), so no test leaks an open file."""
    with log.open("w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)


def wait_ready(url: str, proc: subprocess.Popen, log: Path, path: str = "/health", deadline_s: float = 180) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server at {url} not ready after {deadline_s}s:\n{log.read_text(errors='replace')[-4000:]}")


def start_worker(data_dir: Path, log_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Proc:
    """`python -m inference` on a free port with the demo model under `data_dir`."""
    port = free_port()
    log = log_dir / f"worker-{port}.log"
    cmd = [sys.executable, "-m", "inference", "--port", str(port), "--data-dir", str(data_dir), *flags]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = spawn_logged(cmd, log, cwd=ROOT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, log)
    return Proc(url, proc, log)


class ThreadedServer:
    """A uvicorn server for an in-process app, in a background thread (so tests can look
    inside the app: its metrics registry, ledger writer, span exporter)."""

    def __init__(self, app, port: int | None = None) -> None:
        import threading

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=10,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        end = time.monotonic() + 180  # the app's startup loads models: slow on a loaded machine
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("in-process server failed to start (its thread ended)")
            if time.monotonic() > end:
                raise RuntimeError("in-process server not started after 180 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@dataclass
class RedisServer:
    """A private `redis-server` (no persistence) on a free port."""

    url: str
    process: subprocess.Popen
    log: Path

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_redis(log_dir: Path, binary: str = "redis-server") -> RedisServer:
    import redis

    port = free_port()
    log = log_dir / f"redis-{port}.log"
    proc = spawn_logged([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], log)
    url = f"redis://127.0.0.1:{port}/0"
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                return RedisServer(url, proc, log)
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server on port {port} not ready:\n{log.read_text(errors='replace')}")
