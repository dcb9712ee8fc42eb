import fcntl
import json
import os
import time
from pathlib import Path

from sqlalchemy import Engine

from ledger.spool import Spool
from ledger.testing import random_records
from tests.ledger._support import counts, drain


def test_unfinished_file_of_a_crashed_process_is_recovered(ledger_engine: Engine, make_writer, tmp_path: Path):
    spool = tmp_path / "spool"
    spool.mkdir()
    records = random_records(3, seed=31)
    orphan = spool / f"{time.time_ns():020d}-999999-000000.jsonl.part"
    lines = [json.dumps(r.to_dict()) for r in records]
    orphan.write_text("\n".join(lines) + "\n" + lines[0][:40])  # torn last line
    old = time.time() - 3600
    os.utime(orphan, (old, old))

    w = make_writer(ledger_engine, spool_dir=spool)
    drain(w)
    assert counts(ledger_engine) == (3, 3)
    st = w.stats()
    assert (st.replayed_total, st.dropped_total, st.spool_files) == (3, 1, 0)


def test_a_file_locked_by_another_writer_is_left_alone(ledger_engine: Engine, make_writer, tmp_path: Path):
    spool = Spool(tmp_path / "spool")
    path = spool.write_batch(random_records(5, seed=32))
    fd = os.open(path, os.O_RDONLY)  # another process replaying it holds this lock
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        w = make_writer(ledger_engine, spool_dir=tmp_path / "spool")
        assert w.flush(0.3) is False
        assert counts(ledger_engine) == (0, 0) and path.exists()
    finally:
        os.close(fd)
    drain(w)
    assert counts(ledger_engine) == (5, 5) and not path.exists()


def test_full_disk_is_a_counted_error_and_leaves_no_torn_line(ledger_engine: Engine, make_writer, tmp_path: Path):
    """A real full filesystem: the spool sits on a 64 KiB tmpfs (see tests/reliability/_faults.py)."""
    from tests.reliability._faults import fill, tiny_tmpfs

    with tiny_tmpfs(tmp_path / "spool") as spool:
        records = random_records(200, seed=33)
        # database down, queue of one: every other record goes straight to the spool's segment
        w = make_writer(f"sqlite:///{tmp_path / 'missing' / 'x.db'}", spool_dir=spool, queue_size=1, start=False)
        for r in records[:20]:
            w.submit(r)
        filler = fill(spool)
        for r in records[20:]:
            w.submit(r)  # must not raise
        st = w.stats()
        assert st.spool_write_errors > 0 and st.dropped_total == st.spool_write_errors
        assert "No space left on device" in (st.last_error or "")
        w.close(timeout=1)
        filler.unlink()
        lines = [line for f in sorted(spool.iterdir()) for line in f.read_text().splitlines()]
        assert len(lines) == st.spooled_total >= 19  # what was spooled is whole: no torn line
        assert all(json.loads(line)["request_id"] for line in lines)
        w2 = make_writer(ledger_engine, spool_dir=spool)
        drain(w2)
        assert counts(ledger_engine) == (len(lines), len(lines))
        assert w2.stats().dropped_total == 0


def test_a_line_written_by_a_newer_version_is_replayed_without_its_new_fields(
    ledger_engine: Engine, make_writer, tmp_path: Path
):
    """After a rollback, the spool may hold lines with fields this version does not have."""
    spool = tmp_path / "spool"
    spool.mkdir()
    records = [r for r in random_records(20, seed=33) if r.safety][:2]  # with safety hits, to carry a new hit field
    lines = []
    for r in records:
        d = r.to_dict() | {"field_from_a_newer_version": 7}
        d["safety"] = [h | {"newer_hit_field": "x"} for h in d["safety"]]
        lines.append(json.dumps(d))
    (spool / f"{time.time_ns():020d}-999999-000000.jsonl").write_text("\n".join(lines) + "\n")

    w = make_writer(ledger_engine, spool_dir=spool)
    drain(w)
    assert counts(ledger_engine) == (2, 2)
    st = w.stats()
    assert (st.replayed_total, st.dropped_total, st.spool_files) == (2, 0, 0)
