"""The classifier's deferred (flag-only) scans in a child process of the lowest priority.

Why a process and not a thread: the classifier's Python and tokenizer work holds the GIL, so
a nice-19 thread still delays the event loop whenever it holds the GIL and the scheduler
runs it (priority inversion; measured: event-loop p99 lag 0.2 ms idle, 8.9 ms beside such a
thread, 0.2 ms beside such a process, and the process scanned 2.7x the texts per second).
A process has its own GIL, and under SCHED_IDLE (nice 19 where that is refused) the kernel
gives it only the CPU the gateway leaves: a waking gateway thread preempts it at once and may
take its core as an idle one, which nice 19 alone does not grant (at 300 rps on 2 vCPUs, two
quiet side-by-side runs in BENCHMARKS.md: added p99 10.6–13.4 ms against 20.6–23.1 ms).

The child (``python -m safety.scanproc FD THREADS``) loads ``get_classifier()`` and answers
``(job id, texts, harm)`` messages over a socket pair with ``scan_many``'s hits. It ignores
SIGTERM and SIGINT, so the scans queued when the gateway is told to stop still run (the
gateway's shutdown waits for them), and it exits when its socket closes, which the kernel
does when the gateway exits however it exits: no process is left behind. A child that dies
(killed, out of memory) fails the scans it held with ``ScanFailed``; the next scan starts a
new one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from .types import Hit

log = logging.getLogger(__name__)

READY = -1  # the job id of the child's first message: the classifier is loaded


class ScanFailed(RuntimeError):
    """The scan process died, or the classifier raised, before answering."""


class ScanProcess:
    """One child process running the classifier; ``await scan_many(texts, harm)``."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.starts = 0  # processes started (a restart is a start after the first)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._sock: socket.socket | None = None  # the socket under _conn, to shut down on close
        self._ready = threading.Event()
        self._pending: dict[int, concurrent.futures.Future[list[list[Hit]]]] = {}
        self._ids = itertools.count()
        self._closed = False

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, wait_s: float | None = None) -> None:
        """Start the child unless it runs; with ``wait_s``, block until it has loaded the
        classifier (raises ScanFailed when it has not by then)."""
        with self._lock:
            if self._conn is None:
                self._spawn()
            ready = self._ready
        if wait_s is not None and not ready.wait(wait_s):
            raise ScanFailed(f"the scan process did not load the classifier within {wait_s:.0f} s")

    def _spawn(self) -> None:
        if self._closed:
            raise ScanFailed("the scan process is shut down")
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parent.parent)  # the child imports this very package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        proc = subprocess.Popen(
            [sys.executable, "-m", "safety.scanproc", str(theirs.fileno()), str(self.threads)],
            pass_fds=(theirs.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        conn = Connection(os.dup(ours.fileno()))
        if self._sock is not None:
            self._sock.close()
        self._proc, self._conn, self._sock, self._ready = proc, conn, ours, threading.Event()
        self.starts += 1
        if self.starts > 1:
            log.warning("safety: scan process restarted (start %d)", self.starts)
        threading.Thread(
            target=self._read, args=(proc, conn, self._ready), name="safety-scan-reader", daemon=True
        ).start()

    def _read(self, proc: subprocess.Popen[bytes], conn: Connection, ready: threading.Event) -> None:
        """The answers of one child, until it is gone; then every scan it held fails."""
        while True:
            try:
                job, ok, value = conn.recv()
            except (EOFError, OSError):
                break
            if job == READY:
                ready.set()
                continue
            with self._lock:
                fut = self._pending.pop(job, None)
            if fut is not None and not fut.done():
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(ScanFailed(value))
        conn.close()
        code = proc.wait()
        with self._lock:
            if self._conn is conn:
                self._conn = None
            lost, self._pending = self._pending, {}
        if not self._closed:
            log.warning("safety: scan process exited (code %s); %d batch(es) unscanned", code, len(lost))
        for fut in lost.values():
            if not fut.done():
                fut.set_exception(ScanFailed(f"the scan process exited (code {code})"))

    def submit(self, texts: Sequence[str], harm: bool) -> concurrent.futures.Future[list[list[Hit]]]:
        """Send one batch (blocking while the socket is full: call it off the event loop)."""
        fut: concurrent.futures.Future[list[list[Hit]]] = concurrent.futures.Future()
        with self._lock:
            if self._conn is None:
                self._spawn()
            conn, job = self._conn, next(self._ids)
            assert conn is not None
            self._pending[job] = fut
        try:
            conn.send((job, list(texts), harm))
        except OSError as exc:  # the child died meanwhile; its reader fails the future too
            if not fut.done():
                fut.set_exception(ScanFailed(f"the scan process is gone ({exc})"))
        return fut

    async def scan_many(self, texts: Sequence[str], harm: bool) -> list[list[Hit]]:
        """``InjectionClassifier.scan_many`` in the child; raises ScanFailed when it dies first."""
        fut = await asyncio.to_thread(self.submit, texts, harm)  # a long batch must not block the loop
        return await asyncio.wrap_future(fut)

    def close(self, timeout_s: float = 10) -> None:
        """Stop the child: it reads the end of its input and exits after the batch it is on
        (killed past ``timeout_s``)."""
        with self._lock:
            self._closed = True
            proc, sock = self._proc, self._sock
        if sock is None or proc is None:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # already gone
            pass
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()


def _serve(conn: Connection, threads: int) -> None:
    """The child: load the classifier, then answer batches until the socket closes."""
    import torch

    from .classifier import get_classifier

    torch.set_num_threads(threads)
    clf = get_classifier()
    clf.scan_many(["warm up"])
    conn.send((READY, True, None))
    while True:
        try:
            job, texts, harm = conn.recv()
        except (EOFError, OSError):
            return  # the gateway closed it, or exited
        msg: tuple[int, bool, list[list[Hit]] | str]
        try:
            msg = (job, True, clf.scan_many(texts, harm))
        except Exception as exc:  # noqa: BLE001 - the gateway records the texts as unscanned
            msg = (job, False, f"{type(exc).__name__}: {exc}")
        try:
            conn.send(msg)
        except OSError:
            return


def _lowest_priority() -> None:
    """SCHED_IDLE where the kernel has it, else nice 19, for every thread of this process.

    Linux keeps both per thread, and threads inherit them: set now, before torch starts its
    own, and on the threads the imports already started."""
    tasks = Path("/proc/self/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            pass
        try:
            os.setpriority(os.PRIO_PROCESS, tid, 19)
        except (AttributeError, OSError):  # not allowed: the same priority as the gateway
            pass


def main(argv: Sequence[str] | None = None) -> None:
    fd, threads = (int(a) for a in (argv or sys.argv[1:]))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the gateway's shutdown drains the queued scans, then closes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lowest_priority()
    _serve(Connection(fd), threads)


if __name__ == "__main__":
    main()
