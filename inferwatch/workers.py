"""Co-located inference workers: start them, wait until ready, restart them if they die."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from inference.config import WorkerConfig

log = logging.getLogger("inferwatch")


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no usable torch means no GPU
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ManagedWorker:
    def __init__(self, config: WorkerConfig, gpu: int | None, log_dir: Path) -> None:
        self.config = config.model_copy(update={"port": _free_port(), "host": "127.0.0.1"})
        self.gpu = gpu
        self.log_path = log_dir / f"worker-{gpu if gpu is not None else 'cpu'}-{self.config.port}.log"
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    def start(self) -> None:
        c = self.config
        cmd = [
            sys.executable,
            "-m",
            "inference",
            "--port",
            str(c.port),
            "--host",
            c.host,
            "--data-dir",
            str(c.data_dir),
            "--device",
            c.device,
            "--max-batch-size",
            str(c.max_batch_size),
            "--max-queue",
            str(c.max_queue),
        ]
        optional = (
            ("--model", c.model),
            ("--alias", c.alias),
            ("--max-model-len", c.max_model_len),
            ("--dtype", c.dtype),
        )
        for flag, value in optional:
            if value is not None:
                cmd += [flag, str(value)]
        for name, value in c.fault.model_dump().items():  # fault injection, for tests and drills
            if value:
                cmd += [f"--fault.{name.replace('_', '-')}", str(value)]
        env = dict(os.environ)
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
        with self.log_path.open("a") as log:  # the worker holds its own copy of the file
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout_s: float = 600) -> dict:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_path}")
            try:
                r = httpx.get(self.url + "/health", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"worker at {self.url} not ready after {timeout_s}s; see {self.log_path}")

    def terminate(self) -> None:
        """Ask the worker to finish (SIGTERM); `wait` collects it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()

    def wait(self, timeout_s: float = 60) -> None:
        """Wait for an exit that `terminate` asked for; SIGKILL past `timeout_s`."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("worker %s did not stop within %.0f s; killing it", self.url, timeout_s)
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.terminate()
        self.wait()


class Supervisor:
    """Restarts a worker that exits while the platform runs; the gateway's health checks
    take it out of rotation meanwhile and back in when it is ready."""

    def __init__(self, workers: list[ManagedWorker]) -> None:
        self.workers = workers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for w in self.workers:
                if w.process and w.process.poll() is not None and not self._stop.is_set():
                    log.warning("worker %s exited with %s; restarting", w.url, w.process.returncode)
                    w.start()
                    w.restarts += 1  # after start: whoever sees the count sees the new process

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        """Stop restarting, then stop every worker at once (not one after another)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for w in self.workers:
            w.terminate()
        for w in self.workers:
            w.wait()
