from datetime import datetime, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, column, inspect, select, table

from ledger.db import alembic_config, create_engine_for, downgrade, migrate
from ledger.models import Base, Request, UTCDateTime

TABLES = {
    "requests",
    "safety_hits",
    "request_rollups_minute",
    "request_rollup_buckets_minute",
    "tenants",
    "api_keys",
    "model_aliases",
}


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_fresh_database_is_at_head_with_all_tables(ledger_engine: Engine):
    with ledger_engine.connect() as c:
        assert MigrationContext.configure(c).get_current_revision() == _head()
        assert TABLES <= set(inspect(c).get_table_names())


def test_models_and_migrated_schema_agree(ledger_engine: Engine):
    with ledger_engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_indexes_for_time_range_queries_exist(ledger_engine: Engine):
    with ledger_engine.connect() as c:
        idx = {tuple(i["column_names"]) for i in inspect(c).get_indexes("requests")}
    assert ("tenant", "started_at") in idx
    assert ("model_version", "started_at") in idx


def test_migrate_is_idempotent_and_downgrade_reverses_it(ledger_url: str):
    migrate(ledger_url)  # already at head: no-op
    downgrade(ledger_url, "base")
    engine = create_engine_for(ledger_url)
    try:
        with engine.connect() as c:
            assert not TABLES & set(inspect(c).get_table_names())
        migrate(engine)
        with engine.connect() as c:
            assert TABLES <= set(inspect(c).get_table_names())
            assert MigrationContext.configure(c).get_current_revision() == _head()
    finally:
        engine.dispose()


def test_cache_lookups_of_rows_from_before_0007_are_their_hits(ledger_url: str):
    downgrade(ledger_url, "0006")
    engine = create_engine_for(ledger_url)
    try:
        common = {
            "started_at": datetime(2026, 11, 2, tzinfo=timezone.utc),
            "tenant": "acme",
            "operation": "chat",
            "alias": "m",
            "status_code": 200,
            "status_class": "2xx",
            "latency_s": 0.1,
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "cost_usd": 0.0,
            "stream": False,
            "client_disconnected": False,
            "retries": 0,
        }
        old = table(
            "requests",
            column("request_id"),
            column("started_at", UTCDateTime()),
            column("cache_hit"),
            *(column(k) for k in common if k != "started_at"),
        )  # the 0006 schema

        with engine.begin() as c:
            c.execute(
                old.insert(),
                [
                    {"request_id": "hit", "cache_hit": True, **common},
                    {"request_id": "miss", "cache_hit": False, **common},
                ],
            )
        migrate(engine)
        with engine.connect() as c:
            got = dict(c.execute(select(Request.request_id, Request.cache_lookup)).all())
        assert got == {"hit": True, "miss": False}
    finally:
        engine.dispose()


def test_rows_from_before_0008_are_complete_and_exactly_counted(ledger_url: str):
    downgrade(ledger_url, "0007")
    engine = create_engine_for(ledger_url)
    try:
        row = {
            "request_id": "old",
            "started_at": datetime(2026, 11, 30, tzinfo=timezone.utc),
            "tenant": "acme",
            "operation": "chat",
            "alias": "m",
            "status_code": 502,
            "status_class": "5xx",
            "latency_s": 0.1,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "stream": True,
            "client_disconnected": False,
            "cache_hit": False,
            "cache_lookup": False,
            "retries": 0,
        }
        old = table(
            "requests", column("started_at", UTCDateTime()), *(column(k) for k in row if k != "started_at")
        )  # the 0007 schema
        with engine.begin() as c:
            c.execute(old.insert(), [row])
        migrate(engine)
        with engine.connect() as c:
            assert c.execute(select(Request.partial, Request.usage_estimated)).one() == (False, False)
    finally:
        engine.dispose()


def test_rows_from_before_0010_are_interactive_and_tried_one_version(ledger_url: str):
    downgrade(ledger_url, "0009")
    engine = create_engine_for(ledger_url)
    try:
        row = {
            "request_id": "old",
            "started_at": datetime(2026, 12, 1, tzinfo=timezone.utc),
            "tenant": "acme",
            "operation": "chat",
            "alias": "m",
            "status_code": 200,
            "status_class": "2xx",
            "latency_s": 0.1,
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "cost_usd": 0.0,
            "stream": False,
            "client_disconnected": False,
            "cache_hit": False,
            "cache_lookup": False,
            "retries": 0,
            "partial": False,
            "usage_estimated": False,
        }
        # the 0009 schema
        old = table("requests", column("started_at", UTCDateTime()), *(column(k) for k in row if k != "started_at"))
        with engine.begin() as c:
            c.execute(old.insert(), [row])
        migrate(engine)
        with engine.connect() as c:
            got = c.execute(select(Request.priority, Request.fallback_from, Request.attempts)).one()
        assert got == ("interactive", None, None)
    finally:
        engine.dispose()
