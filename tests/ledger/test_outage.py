"""The database goes away and comes back: nothing is lost, nothing is counted twice."""

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ledger.db import create_engine_for, migrate
from ledger.testing import TempPostgres, make_record, random_records
from tests.ledger._support import counts, drain
from tests.servers import wait_until


def _spool_files(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.jsonl")) if spool.exists() else []


def test_sqlite_unreachable_then_restored(tmp_path: Path, make_writer, caplog):
    db_dir = tmp_path / "not-yet"  # the database file cannot be opened until this exists
    url = f"sqlite:///{db_dir / 'ledger.db'}"
    spool = tmp_path / "spool"
    records = random_records(400, seed=21)
    w = make_writer(url, spool_dir=spool, batch_size=50)
    with caplog.at_level(logging.ERROR, logger="ledger.writer"):
        for r in records[:300]:
            w.submit(r)
        wait_until(lambda: w.stats().spooled_total == 300, "records to reach the spool")
    assert _spool_files(spool)
    st = w.stats()
    assert not st.db_available and st.spool_files > 0 and st.spool_bytes > 0
    assert "database unavailable" in (st.last_error or "")
    assert any("database unavailable" in m for m in caplog.messages)
    assert w.flush(0.05) is False  # cannot reach the database yet

    db_dir.mkdir()
    migrate(url)
    for r in records[300:] + records[:20]:  # more traffic, including repeats
        w.submit(r)
    drain(w)
    engine = create_engine_for(url)
    try:
        assert counts(engine) == (400, 400)
    finally:
        engine.dispose()
    st = w.stats()
    assert (st.written_total, st.dropped_total, st.spool_files) == (400, 0, 0)
    assert st.db_available and st.replayed_total >= 300
    assert not _spool_files(spool)


@pytest.mark.postgres
def test_postgres_stopped_then_restarted(pg_server: TempPostgres, pg_ledger_template: str, make_writer, tmp_path: Path):
    url = pg_server.create_database("outage", template=pg_ledger_template)
    engine = create_engine_for(url)
    spool = tmp_path / "spool"
    records = random_records(300, seed=22)
    w = make_writer(engine, spool_dir=spool, batch_size=40)
    try:
        for r in records[:100]:
            w.submit(r)
        drain(w)  # pooled connections exist before the outage
        pg_server.stop()
        for r in records[100:250]:
            w.submit(r)
        wait_until(lambda: w.stats().spooled_total == 150, "records to reach the spool")
        assert _spool_files(spool) and not w.stats().db_available
    finally:
        pg_server.start()
    for r in records[250:]:
        w.submit(r)
    drain(w)
    assert counts(engine) == (300, 300)
    st = w.stats()
    assert (st.written_total, st.dropped_total, st.spool_files) == (300, 0, 0)
    engine.dispose()


def test_restart_replays_an_existing_spool(ledger_engine: Engine, make_writer, tmp_path: Path):
    spool = tmp_path / "spool"
    records = random_records(120, seed=23)
    down = make_writer(f"sqlite:///{tmp_path / 'missing' / 'x.db'}", spool_dir=spool, batch_size=25)
    for r in records:
        down.submit(r)
    assert down.close(timeout=60) is False  # drained to the spool, not the database
    assert not down._thread.is_alive()  # under load a short timeout left it spooling beside the next writer
    assert down.stats().spooled_total == 120 and _spool_files(spool)

    w = make_writer(ledger_engine, spool_dir=spool)  # a new process starting on the same spool
    drain(w)
    assert counts(ledger_engine) == (120, 120)
    assert w.stats().replayed_total == 120 and not _spool_files(spool)


def test_full_queue_spills_to_the_spool_without_loss(ledger_engine: Engine, make_writer, tmp_path: Path):
    records = random_records(500, seed=24)
    w = make_writer(ledger_engine, spool_dir=tmp_path / "spool", queue_size=10, start=False)
    for r in records:
        w.submit(r)
    st = w.stats()
    assert (st.queue_depth, st.spooled_total, st.dropped_total) == (10, 490, 0)
    assert st.spool_files >= 1
    w.start()
    drain(w)
    assert counts(ledger_engine) == (500, 500)
    st = w.stats()
    assert (st.written_total, st.dropped_total, st.spool_files) == (500, 0, 0)


def test_spool_write_failure_counts_dropped_and_never_raises(make_writer, tmp_path: Path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    w = make_writer(
        f"sqlite:///{tmp_path / 'missing' / 'x.db'}",  # database down, and ...
        spool_dir=blocker / "spool",  # ... the spool cannot be written either
        queue_size=5,
        batch_size=5,
        start=False,
    )
    with caplog.at_level(logging.ERROR, logger="ledger.writer"):
        for i in range(20):
            w.submit(make_record(request_id=f"d{i}"))  # must not raise
        assert w.stats().dropped_total == 15  # the queue held 5
        w.start()
        wait_until(lambda: w.stats().dropped_total == 20, "the queued batch to be dropped")
    st = w.stats()
    assert st.spooled_total == 0 and st.written_total == 0
    assert "dropped" in (st.last_error or "")
    assert any("spool write failed" in m for m in caplog.messages)


def test_records_the_database_rejects_are_isolated(ledger_engine: Engine, make_writer, caplog):
    good = random_records(30, seed=25)
    bad = make_record(request_id="poison", prompt_tokens=2**70)  # fits no integer column
    nan = make_record(request_id="nan", latency_s=float("nan"))  # would poison rollup sums
    w = make_writer(ledger_engine, batch_size=100, max_delay_s=0.2)
    with caplog.at_level(logging.ERROR, logger="ledger.writer"):
        for r in good[:10] + [bad] + good[10:20] + [nan] + good[20:]:
            w.submit(r)
        w.submit({"request_id": "not-a-record"})  # type: ignore[arg-type]
        drain(w)
    assert counts(ledger_engine) == (30, 30)
    st = w.stats()
    assert (st.written_total, st.dropped_total) == (30, 3)
    assert any("'poison'" in m for m in caplog.messages)
    assert any("latency_s is nan" in m for m in caplog.messages)
    assert any("takes a RequestRecord" in m for m in caplog.messages)
