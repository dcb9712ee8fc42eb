"""cache lookups: which requests the response cache was asked about

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

`requests.cache_lookup` and the rollups' `cache_lookups` count the requests the gateway looked
up in its response cache (deterministic requests of tenants that opted in), hit or miss, so
that a hit rate is hits over lookups rather than over all requests. Rows written before this
revision get what is known: every hit was a lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = ("request_rollups_minute", "request_rollups_hour")


def upgrade() -> None:
    # Added with a default for the rows already there, which is then dropped (the models have none).
    op.add_column("requests", sa.Column("cache_lookup", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE requests SET cache_lookup = cache_hit")
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("cache_lookup", existing_type=sa.Boolean(), existing_nullable=False, server_default=None)
    for table in ROLLUPS:
        op.add_column(table, sa.Column("cache_lookups", sa.Integer(), nullable=False, server_default=sa.text("0")))
        op.execute(f"UPDATE {table} SET cache_lookups = cache_hits")
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "cache_lookups", existing_type=sa.Integer(), existing_nullable=False, server_default=None
            )


def downgrade() -> None:
    for table in ROLLUPS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("cache_lookups")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("cache_lookup")
