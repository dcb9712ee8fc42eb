"""Polling helpers for ledger tests: deadlines only, never assertions on speed."""

from __future__ import annotations


import pytest
from sqlalchemy import Engine, func, select

from ledger.models import Request, RequestRollupMinute
from ledger.writer import LedgerWriter

DEADLINE_S = 30.0


def drain(writer: LedgerWriter, deadline_s: float = DEADLINE_S) -> None:
    """Flush until everything is in the database, or fail with the writer's stats."""
    if not writer.flush(deadline_s):
        pytest.fail(f"writer did not drain within {deadline_s}s: {writer.stats()}")


def counts(engine: Engine) -> tuple[int, int]:
    """(request rows, requests counted in the rollups)."""
    with engine.connect() as c:
        rows = c.execute(select(func.count()).select_from(Request)).scalar_one()
        rolled = c.execute(select(func.coalesce(func.sum(RequestRollupMinute.requests), 0))).scalar_one()
    return int(rows), int(rolled)
