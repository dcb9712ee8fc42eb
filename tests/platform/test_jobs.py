from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inferwatch.jobs import build_scheduler, purge_old_rows
from inferwatch.settings import Settings
from ledger.models import Request, RequestRollupMinute
from ledger.testing import make_record
from ledger.writer import LedgerWriter


def test_retention_purges_old_raw_rows_but_keeps_rollups(ledger_engine, tmp_path):
    now = datetime.now(timezone.utc)
    w = LedgerWriter(ledger_engine, tmp_path / "spool")
    w.submit(make_record(request_id="old", started_at=now - timedelta(days=100)))
    w.submit(make_record(request_id="new", started_at=now - timedelta(days=1)))
    assert w.close()
    assert purge_old_rows(ledger_engine, 90) == 1
    with Session(ledger_engine) as s:
        assert s.scalars(select(Request.request_id)).all() == ["new"]
        assert s.scalar(select(func.sum(RequestRollupMinute.requests))) == 2


def test_scheduler_registers_retention_only_when_set(ledger_engine):
    jobs = build_scheduler(Settings(retention_days=30), ledger_engine).get_jobs()
    assert [j.id for j in jobs] == ["ledger-retention"]
    assert build_scheduler(Settings(retention_days=None), ledger_engine).get_jobs() == []
