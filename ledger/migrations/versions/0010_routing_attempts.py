"""routing: a request's priority, and the versions it fell back from

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

`requests.priority` is interactive or batch (batch is shed first under overload); rows written
before this revision were all interactive. `requests.fallback_from` names the version first
chosen when another one (`model_version`) answered; `requests.attempts` lists every version
tried, in order, with its status and why the request left it (NULL when only one was tried).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # priority is added with a default for the rows already there, which is then dropped (the model has none)
    op.add_column("requests", sa.Column("priority", sa.String(), nullable=False, server_default="interactive"))
    op.add_column("requests", sa.Column("fallback_from", sa.String(), nullable=True))
    op.add_column("requests", sa.Column("attempts", sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("priority", existing_type=sa.String(), existing_nullable=False, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        for name in ("attempts", "fallback_from", "priority"):
            batch.drop_column(name)
