from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.writer import LedgerWriter


@pytest.fixture
def make_writer(tmp_path: Path) -> Iterator[Callable[..., LedgerWriter]]:
    """LedgerWriter factory with short delays and retries; closes every writer at the end."""
    writers: list[LedgerWriter] = []

    def make(engine: Engine | str, spool_dir: Path | None = None, **kw: Any) -> LedgerWriter:
        kw.setdefault("max_delay_s", 0.01)
        kw.setdefault("retry_initial_s", 0.05)
        kw.setdefault("retry_max_s", 0.5)
        w = LedgerWriter(engine, spool_dir or tmp_path / "spool", **kw)
        writers.append(w)
        return w

    yield make
    for w in writers:
        w.close(timeout=5)
