"""Engines and migrations for the ledger database (SQLite or PostgreSQL via psycopg 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine set up for the ledger.

    SQLite: WAL journal, busy_timeout, foreign keys on, usable from any thread.
    PostgreSQL: `postgresql://` is mapped to psycopg 3, sessions run in UTC, connections
    are pinged before use so a restarted server is picked up again.
    """
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
        if u.database in (None, "", ":memory:"):
            kwargs.setdefault("poolclass", StaticPool)  # one shared in-memory database
        engine = create_engine(u, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    if backend == "postgresql":
        if u.drivername in ("postgresql", "postgres"):
            u = u.set(drivername="postgresql+psycopg")
        connect_args = {"connect_timeout": 5, "options": "-c timezone=UTC", **kwargs.pop("connect_args", {})}
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(u, connect_args=connect_args, **kwargs)
    raise ValueError(f"unsupported ledger database {u.drivername!r}: use sqlite or postgresql")


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        if cur.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")  # durable across app crashes in WAL mode
    finally:
        cur.close()


def alembic_config() -> Config:
    """Alembic config pointing at the migrations shipped in this package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Run `alembic upgrade <revision>` (default head) on the database."""
    _alembic(command.upgrade, url_or_engine, revision)


def downgrade(url_or_engine: str | Engine, revision: str) -> None:
    """Run `alembic downgrade <revision>`, e.g. "base"."""
    _alembic(command.downgrade, url_or_engine, revision)


def _alembic(fn: Any, url_or_engine: str | Engine, revision: str) -> None:
    owned = isinstance(url_or_engine, str)
    engine = create_engine_for(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            fn(cfg, revision)
    finally:
        if owned:
            engine.dispose()
