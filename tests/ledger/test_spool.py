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
