"""On-disk spool of records the database could not take yet: JSON-lines files, fsynced.

Files `<time_ns>-<pid>-<seq>.jsonl` are complete and replayed oldest first. Batches are
written as `.jsonl.tmp` and renamed; the overflow segment that `append` fills is
`.jsonl.part` until rotated. A process holds an flock on each file it is writing or
replaying, so several writers may share one directory; a `.tmp`/`.part` file whose owner
died is recovered (renamed to `.jsonl`) once its lock is free and it is a minute old
(at once when it carries this process id: a crashed earlier run with the same pid).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ledger.record import RequestRecord

log = logging.getLogger(__name__)

READY = ".jsonl"
PARTIAL = (".jsonl.tmp", ".jsonl.part")
ORPHAN_MIN_AGE_S = 60.0

_dir_locks: dict[str, threading.Lock] = {}
_dir_locks_guard = threading.Lock()


def _dir_lock(path: Path) -> threading.Lock:
    """One lock per directory in this process, shared by every Spool on it."""
    with _dir_locks_guard:
        return _dir_locks.setdefault(os.path.abspath(path), threading.Lock())


def _json_default(o: object) -> object:
    # numpy scalars, Decimal and the like: keep numbers numbers, anything else as text
    if hasattr(o, "__index__"):
        return int(o)
    if hasattr(o, "__float__"):
        return float(o)
    return str(o)


def _encode(r: RequestRecord) -> bytes:
    return (json.dumps(r.to_dict(), separators=(",", ":"), default=_json_default) + "\n").encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@dataclass
class Claimed:
    """A spool file locked for replay; call `done()` after its records are committed."""

    path: Path
    fd: int
    records: list[RequestRecord] = field(default_factory=list)
    bad_lines: int = 0

    def done(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
            _fsync_dir(self.path.parent)
        finally:
            self.release()

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: str | os.PathLike[str], segment_max_records: int = 1000) -> None:
        self.dir = Path(directory)
        self.segment_max_records = segment_max_records
        self._lock = _dir_lock(self.dir)
        self._seq = itertools.count()
        self._seg_fd = -1
        self._seg_path: Path | None = None
        self._seg_records = 0

    def _new_name(self, suffix: str) -> Path:
        return self.dir / f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}{suffix}"

    def _create_locked_file(self, suffix: str) -> tuple[int, Path]:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._new_name(suffix)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd, path

    def write_batch(self, records: Iterable[RequestRecord]) -> Path:
        """Write records as one complete spool file (fsynced); raises OSError on failure."""
        data = b"".join(_encode(r) for r in records)
        with self._lock:  # only while the file is created and not yet locked
            fd, tmp = self._create_locked_file(PARTIAL[0])
        try:
            _write_all(fd, data)
            os.fsync(fd)
            final = tmp.with_name(tmp.name.removesuffix(PARTIAL[0]) + READY)
            os.rename(tmp, final)
            _fsync_dir(self.dir)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return final

    def append(self, record: RequestRecord) -> None:
        """Append one record to the overflow segment (fsynced); raises OSError on failure."""
        line = _encode(record)
        with self._lock:
            if self._seg_fd < 0:
                self._seg_fd, self._seg_path = self._create_locked_file(PARTIAL[1])
                self._seg_records = 0
            end = os.lseek(self._seg_fd, 0, os.SEEK_END)
            try:
                _write_all(self._seg_fd, line)
                os.fsync(self._seg_fd)
            except OSError:
                os.ftruncate(self._seg_fd, end)  # a full disk must not leave a torn line behind
                raise
            self._seg_records += 1
            if self._seg_records >= self.segment_max_records:
                self._rotate_locked()

    def rotate(self) -> None:
        """Close the overflow segment so it can be replayed."""
        with self._lock:
            self._rotate_locked()

    def _rotate_locked(self) -> None:
        if self._seg_fd < 0 or self._seg_path is None:
            return
        try:
            os.rename(self._seg_path, self._seg_path.with_name(self._seg_path.name.removesuffix(PARTIAL[1]) + READY))
            _fsync_dir(self.dir)
        finally:
            os.close(self._seg_fd)
            self._seg_fd, self._seg_path = -1, None

    def _scan(self) -> list[os.DirEntry[str]]:
        try:
            return list(os.scandir(self.dir))
        except OSError:  # missing or unusable directory: nothing spooled there
            return []

    def ready_files(self) -> list[Path]:
        """Complete spool files, oldest first (recovers orphaned partial files first)."""
        with self._lock:
            for e in self._scan():
                if e.name.endswith(PARTIAL) and Path(e.path) != self._seg_path:
                    self._recover_orphan(Path(e.path))
            return sorted(Path(e.path) for e in self._scan() if e.name.endswith(READY))

    def _recover_orphan(self, path: Path) -> None:
        try:
            if time.time() - path.stat().st_mtime < ORPHAN_MIN_AGE_S and path.name.split("-")[1] != str(os.getpid()):
                return  # maybe still being created by another live process
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            if _try_lock(fd):
                base = path.name.removesuffix(PARTIAL[0]).removesuffix(PARTIAL[1])
                os.rename(path, path.with_name(base + READY))
                log.warning("ledger spool: recovered unfinished spool file %s", path.name)
        finally:
            os.close(fd)

    def claim(self, path: Path) -> Claimed | None:
        """Lock and read a spool file; None if another process holds it or it is gone."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        if not _try_lock(fd) or os.fstat(fd).st_nlink == 0:
            os.close(fd)
            return None
        claimed = Claimed(path, fd)
        with os.fdopen(os.dup(fd), "rb") as f:
            for line in f:
                try:
                    claimed.records.append(RequestRecord.from_dict(json.loads(line)))
                except (ValueError, TypeError, KeyError):
                    claimed.bad_lines += 1  # a torn last line after a crash, or corruption
        return claimed

    def has_replayable(self) -> bool:
        """A complete file exists, or this spool has an overflow segment to rotate."""
        return self._seg_fd >= 0 or any(e.name.endswith(READY) for e in self._scan())

    def has_pending(self) -> bool:
        """Any spool file at all, complete or not."""
        return any(e.name.endswith((READY, *PARTIAL)) for e in self._scan())

    def usage(self) -> tuple[int, int]:
        """(number of spool files, total bytes)."""
        files = size = 0
        for e in self._scan():
            if e.name.endswith((READY, *PARTIAL)):
                try:
                    size += e.stat().st_size
                    files += 1
                except FileNotFoundError:
                    pass
        return files, size

    def close(self) -> None:
        with self._lock:
            self._rotate_locked()
