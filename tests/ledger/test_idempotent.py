from sqlalchemy import Engine, func, select

from ledger.models import RequestRollupMinute, SafetyHitRow
from ledger.spool import Spool
from ledger.testing import random_records
from tests.ledger._support import counts, drain


def _cost_and_hits(engine: Engine) -> tuple[float, int]:
    with engine.connect() as c:
        cost = c.execute(select(func.sum(RequestRollupMinute.cost_usd))).scalar_one()
        hits = c.execute(select(func.count()).select_from(SafetyHitRow)).scalar_one()
    return float(cost), int(hits)


def test_same_records_twice_are_stored_and_counted_once(ledger_engine: Engine, make_writer):
    records = random_records(300, seed=5)
    w = make_writer(ledger_engine, batch_size=40)
    for r in records:
        w.submit(r)
    drain(w)
    first = _cost_and_hits(ledger_engine)
    for r in records + records[:10]:  # again, and duplicates inside one batch too
        w.submit(r)
    drain(w)
    assert counts(ledger_engine) == (300, 300)
    assert _cost_and_hits(ledger_engine) == first
    st = w.stats()
    assert st.written_total == 300 and st.duplicates_total == 310


def test_replaying_a_spool_twice_does_not_double_count(ledger_engine: Engine, make_writer, tmp_path):
    records = random_records(250, seed=8)
    spool = Spool(tmp_path / "spool")
    spool.write_batch(records[:150])
    spool.write_batch(records)  # overlaps the first file
    spool.write_batch(records[100:])  # and again
    w = make_writer(ledger_engine, spool_dir=tmp_path / "spool")  # startup replays the spool
    drain(w)
    assert counts(ledger_engine) == (250, 250)
    st = w.stats()
    assert (st.replayed_total, st.written_total, st.duplicates_total) == (550, 250, 300)
    assert (st.spool_files, st.spool_bytes) == (0, 0)
    assert not list((tmp_path / "spool").iterdir())
