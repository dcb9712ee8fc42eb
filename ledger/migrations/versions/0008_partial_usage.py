"""partial usage: records of responses that ended early say so

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

`requests.partial` marks a response that ended early (the upstream failed or stalled, a safety
block, the client left): its tokens, TTFT and TPOT are of what was delivered until then.
`requests.usage_estimated` marks token counts the gateway estimated because the upstream
reported none. Rows written before this revision are neither (they were recorded as complete).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("partial", "usage_estimated")


def upgrade() -> None:
    # Added with a default for the rows already there, which is then dropped (the models have none).
    for name in COLUMNS:
        op.add_column("requests", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("requests") as batch:
        for name in COLUMNS:
            batch.alter_column(name, existing_type=sa.Boolean(), existing_nullable=False, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
