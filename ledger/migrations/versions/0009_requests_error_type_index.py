"""request explorer: a partial index on the failed requests by error type and time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

The console's request explorer filters by error type, newest first. Errors are a small share
of the rows, so a scan of the started_at index for a rare error type reads hundreds of
thousands of rows; this index holds only the rows that have an error type (a successful
request costs the writer nothing more).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("error_type IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_requests_error_type_started_at",
        "requests",
        ["error_type", "started_at"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_requests_error_type_started_at", table_name="requests")
