"""Fixtures of the SLO service tests (helpers are in tests.slo._support)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ledger.db import create_engine_for, migrate
from tests.slo._support import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh migrated SQLite ledger (for tests where the backend does not matter)."""
    url = f"sqlite:///{tmp_path / 'slo-ledger.db'}"
    migrate(url)
    engine = create_engine_for(url)
    yield engine
    engine.dispose()
