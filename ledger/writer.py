"""LedgerWriter: the request path hands records over and never waits on the database.

`submit()` appends to a bounded in-memory queue. A background thread writes batches (request
rows, safety rows and rollup increments in one transaction per batch). While the database
is unreachable, batches go to an on-disk spool that is replayed, oldest first, once it is
back; the request id makes every replay idempotent. A full queue spills straight to the
spool; only a failing spool write loses records, and those are counted in `dropped_total`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from ledger.buckets import normalize
from ledger.db import create_engine_for
from ledger.record import RequestRecord
from ledger.spool import Spool
from ledger.store import write_records

log = logging.getLogger(__name__)

# Errors that say "the database is not reachable or not ready now": keep the records, retry.
# Anything else is about the records themselves and is isolated record by record.
_TRANSIENT = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.ProgrammingError,  # e.g. tables not migrated yet
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # connection pool exhausted
)
_LOG_EVERY_S = 10.0


def _is_transient(e: BaseException) -> bool:
    return isinstance(e, _TRANSIENT) or (isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated)


@dataclass(frozen=True)
class WriterStats:
    queue_depth: int
    spool_files: int
    spool_bytes: int
    written_total: int  # new request rows committed (from the queue or the spool)
    replayed_total: int  # records committed from spool files (new or already stored)
    duplicates_total: int  # records skipped because their request_id was already stored
    spooled_total: int  # records written to the spool
    dropped_total: int  # records lost: spool write failed, or the record cannot be stored
    spool_write_errors: int  # failed spool writes (full disk, unwritable directory): alert on any
    db_available: bool
    last_error: str | None


class LedgerWriter:
    """Batched, spooled writer of RequestRecords. Thread-safe; one per process and spool dir
    is the usual setup (several may share a spool dir safely)."""

    def __init__(
        self,
        engine: Engine | str,
        spool_dir: str | os.PathLike[str],
        *,
        batch_size: int = 500,
        max_delay_s: float = 0.25,
        queue_size: int = 10_000,
        buckets: Mapping[str, Sequence[float]] | None = None,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        start: bool = True,
    ) -> None:
        """`buckets` maps "latency"/"ttft"/"tpot" to histogram bounds (default: ledger.buckets);
        `start=False` leaves the background thread for `start()` (records queue up meanwhile)."""
        self._owns_engine = isinstance(engine, str)
        self.engine = create_engine_for(engine) if isinstance(engine, str) else engine
        self.bounds = normalize(buckets)
        self._spool = Spool(spool_dir)
        self._batch_size = batch_size
        self._max_delay = max_delay_s
        self._queue_size = queue_size
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s

        self._lock = threading.Lock()
        self._queue: deque[RequestRecord] = deque()
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._inflight = False
        self._closing = False
        self._closed = False
        self._close_deadline = 0.0
        self._flush_waiters = 0
        self._force_retry = False
        self._replay_idle = False

        self._db_ok = True
        self._backoff = 0.0
        self._next_retry = 0.0

        self._written = self._replayed = self._duplicates = self._spooled = self._dropped = 0
        self._spool_errors = 0
        self._last_error: str | None = None
        self._last_log: dict[str, float] = {}

        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        if start:
            self._thread.start()

    # --- request path -------------------------------------------------------------------

    def submit(self, record: RequestRecord) -> None:
        """Hand a record over; never blocks on the database and never raises."""
        if not isinstance(record, RequestRecord):
            with self._lock:
                self._dropped += 1
            self._error(
                f"ledger: submit() takes a RequestRecord, got {type(record).__name__}; dropped", None, key="type"
            )
            return
        try:
            with self._lock:
                accepted = not self._closed and len(self._queue) < self._queue_size
                if accepted:
                    self._queue.append(record)
                    n = len(self._queue)
            if accepted:
                if n >= self._batch_size:
                    self._wake.set()
                return
            if self._closed:
                self._spool.write_batch([record])  # a complete file: no segment left open
            else:
                self._spool.append(record)  # queue full: straight to disk
            with self._lock:
                self._spooled += 1
        except Exception as e:  # noqa: BLE001 - the caller's request must not fail on us
            with self._lock:
                self._dropped += 1
                self._spool_errors += 1
            self._error("ledger: queue full and spool write failed; record dropped", e, key="drop")

    # --- control ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (only needed after `start=False`)."""
        if self._thread.ident is None:
            self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the queue and the spool are empty, i.e. everything submitted is
        committed. Retries an unavailable database once right away. False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_waiters += 1
            self._force_retry = True
        self._wake.set()
        try:
            with self._drained:
                while not self._is_drained():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._drained.wait(0.2 if remaining is None else min(remaining, 0.2))
            return True
        finally:
            with self._lock:
                self._flush_waiters -= 1

    def close(self, timeout: float = 30.0) -> bool:
        """Drain the queue to the database (or the spool if it is down) and stop. Records
        submitted afterwards go to the spool. True if everything reached the database."""
        with self._lock:
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            self._closed = True
            leftover = list(self._queue)
            self._queue.clear()
        if leftover:  # the thread did not finish in time (or never started)
            self._spill(leftover)
        try:
            self._spool.close()
        except OSError as e:
            self._error("ledger: closing the spool segment failed", e)
        if self._owns_engine and not self._thread.is_alive():
            self.engine.dispose()
        return self._is_drained()

    def stats(self) -> WriterStats:
        files, size = self._spool.usage()
        with self._lock:
            return WriterStats(
                queue_depth=len(self._queue),
                spool_files=files,
                spool_bytes=size,
                written_total=self._written,
                replayed_total=self._replayed,
                duplicates_total=self._duplicates,
                spooled_total=self._spooled,
                dropped_total=self._dropped,
                spool_write_errors=self._spool_errors,
                db_available=self._db_ok,
                last_error=self._last_error,
            )

    # --- background thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                self._wait_for_work()
                batch = self._take()
                if batch:
                    self._store(batch)
                self._replay_one()
            except Exception as e:  # noqa: BLE001 - the thread must survive anything
                self._error("ledger: writer loop error", e)
                time.sleep(self._max_delay)
            finally:
                with self._lock:
                    self._inflight = False
            with self._drained:
                self._drained.notify_all()
            if self._should_stop():
                return

    def _wait_for_work(self) -> None:
        with self._lock:
            busy = (
                self._closing or len(self._queue) >= self._batch_size or (self._flush_waiters > 0 and bool(self._queue))
            )
        if not busy and self._db_ok and not self._replay_idle and self._spool.has_replayable():
            busy = True  # replay the backlog without pausing
        if not busy:
            timeout = self._max_delay
            if not self._db_ok:
                timeout = min(timeout, max(0.0, self._next_retry - time.monotonic()))
            self._wake.wait(timeout)
        self._wake.clear()

    def _take(self) -> list[RequestRecord]:
        with self._lock:
            n = min(len(self._queue), self._batch_size)
            batch = [self._queue.popleft() for _ in range(n)]
            self._inflight = bool(batch)
        return batch

    def _should_stop(self) -> bool:
        with self._lock:
            if not self._closing or self._queue:
                return False
            past_deadline = time.monotonic() >= self._close_deadline
        # Stop once nothing more can reach the database: it is down, or no spool file is
        # left that this writer could claim.
        return past_deadline or not self._db_ok or self._replay_idle

    def _is_drained(self) -> bool:
        with self._lock:
            if self._queue or self._inflight:
                return False
        return not self._spool.has_pending()

    def _db_due(self) -> bool:
        """Whether to try the database now (it is up, its retry time came, or a flush asks)."""
        with self._lock:
            forced, self._force_retry = self._force_retry, False
        return self._db_ok or forced or time.monotonic() >= self._next_retry

    def _store(self, batch: list[RequestRecord]) -> None:
        if self._db_due():
            batch = self._write(batch)
        if batch:
            self._spill(batch)

    def _replay_one(self) -> None:
        """Replay the oldest spool file if the database is due; delete it after commit."""
        self._replay_idle = True
        if not self._spool.has_pending() or not self._db_due():
            return
        files = self._spool.ready_files()
        if not files:
            self._spool.rotate()  # let the overflow segment be replayed
            files = self._spool.ready_files()
        for path in files:
            claimed = self._spool.claim(path)
            if claimed is None:
                continue  # another writer is replaying it, or it is gone
            self._replay_idle = False
            try:
                recs = claimed.records
                for i in range(0, len(recs), self._batch_size):
                    if self._write(recs[i : i + self._batch_size]):
                        return  # database down again; the file stays for the next retry
                claimed.done()
                with self._lock:
                    self._replayed += len(recs)
                    self._dropped += claimed.bad_lines
                log.info("ledger: replayed %d records from spool file %s", len(recs), path.name)
                if claimed.bad_lines:
                    self._error(
                        f"ledger: {claimed.bad_lines} unreadable line(s) in spool file {path.name} dropped",
                        None,
                        key=f"bad:{path.name}",
                    )
            finally:
                claimed.release()
            return

    def _write(self, records: list[RequestRecord]) -> list[RequestRecord]:
        """Commit records; returns those left for the spool (all of them if the database is
        unreachable). Records the database rejects are isolated one by one and dropped."""
        try:
            with self.engine.begin() as conn:
                new = write_records(conn, records, self.bounds)
        except Exception as e:  # noqa: BLE001
            if _is_transient(e):
                self._mark_down(e)
                return records
            if len(records) == 1:
                with self._lock:
                    self._dropped += 1
                self._error(
                    f"ledger: record cannot be stored, dropped: {records[0]!r}",
                    e,
                    key=f"reject:{records[0].request_id}",
                )
                return []
            log.warning("ledger: batch of %d rejected (%r); writing records one by one", len(records), e)
            for i, r in enumerate(records):
                if self._write([r]):
                    return records[i:]
            return []
        self._mark_up()
        with self._lock:
            self._written += len(new)
            self._duplicates += len({r.request_id for r in records}) - len(new)
        return []

    def _spill(self, records: list[RequestRecord]) -> None:
        try:
            self._spool.write_batch(records)
        except Exception as e:  # noqa: BLE001
            with self._lock:
                self._dropped += len(records)
                self._spool_errors += 1
            self._error(f"ledger: spool write failed; {len(records)} records dropped", e, key="drop")
            return
        with self._lock:
            self._spooled += len(records)

    def _mark_down(self, e: BaseException) -> None:
        was_ok = self._db_ok
        self._db_ok = False
        self._backoff = self._retry_initial if was_ok else min(self._retry_max, self._backoff * 2)
        self._next_retry = time.monotonic() + self._backoff * random.uniform(0.8, 1.2)
        self._error("ledger: database unavailable; spooling records to disk", e, key="down")

    def _mark_up(self) -> None:
        if not self._db_ok:
            log.info("ledger: database available again")
        self._db_ok = True
        self._backoff = 0.0

    def _error(self, msg: str, e: BaseException | None, key: str | None = None) -> None:
        """Record last_error and log it; repeats of the same `key` are logged once per 10 s."""
        text = msg if e is None else f"{msg}: {type(e).__name__}: {e}"
        key = key or msg
        now = time.monotonic()
        with self._lock:
            self._last_error = text[:1000]
            quiet = now - self._last_log.get(key, -_LOG_EVERY_S) < _LOG_EVERY_S
            if not quiet:
                if len(self._last_log) > 1000:
                    self._last_log.clear()
                self._last_log[key] = now
        if not quiet:
            log.error("%s", text)
