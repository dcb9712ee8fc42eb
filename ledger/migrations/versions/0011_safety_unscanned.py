"""safety: requests recorded without their deferred classifier scans

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

`requests.safety_unscanned` says why the classifier's flag-only scans, run after the response,
did not read a text of the request: overload (skipped, its queue full), scan_failed (its process
died), shutdown. NULL: they ran, or none were due (every row before this revision).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("safety_unscanned", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("safety_unscanned")
