from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from ledger.db import alembic_config, create_engine_for, downgrade, migrate
from ledger.models import Base

TABLES = {
    "requests", "safety_hits", "request_rollups_minute", "request_rollup_buckets_minute",
    "tenants", "api_keys", "model_aliases",
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
