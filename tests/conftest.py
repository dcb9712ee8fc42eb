"""Shared fixtures: a throwaway PostgreSQL server and fresh, migrated ledger databases.

`ledger_url` is parametrised over SQLite and PostgreSQL. PostgreSQL tests are skipped when
no server binaries exist, unless CI is set, where that is a failure (CI installs them).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ledger.db import create_engine_for, migrate
from ledger.testing import TempPostgres, find_pg_bin
from tests.servers import RedisServer, start_redis

_db_names = itertools.count()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TempPostgres]:
    """A local PostgreSQL server for the whole session; tests may stop() and start() it."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        reason = "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (set INFERWATCH_PG_BIN)"
        if _in_ci():
            pytest.fail(reason + "; CI must install postgresql", pytrace=False)
        pytest.skip(reason)
    server = TempPostgres(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis for the session (shared limits, budgets and cache across replicas).
    Skipped without `redis-server`, except in CI, which installs it."""
    if shutil.which("redis-server") is None:
        if _in_ci():
            pytest.fail("redis-server not found; CI must install redis-server", pytrace=False)
        pytest.skip("redis-server not found")
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def pg_ledger_template(pg_server: TempPostgres) -> str:
    """Name of a migrated template database; fresh test databases are copies of it."""
    name = "ledger_template"
    migrate(pg_server.create_database(name))
    return name


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh database migrated to head (SQLite file or PostgreSQL database)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        migrate(url)
        return url
    server: TempPostgres = request.getfixturevalue("pg_server")
    if not server.running:
        server.start()  # a failed outage test may have left it stopped
    template = request.getfixturevalue("pg_ledger_template")
    return server.create_database(f"t{next(_db_names)}", template=template)


@pytest.fixture
def ledger_engine(ledger_url: str) -> Iterator[Engine]:
    engine = create_engine_for(ledger_url)
    try:
        yield engine
    finally:
        engine.dispose()
