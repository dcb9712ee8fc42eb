"""slo_status: history of SLO evaluations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "slo_status",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("slo", sa.String(), nullable=False),
        sa.Column("evaluated_at", UTC, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("sli", sa.Float(), nullable=True),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("budget_remaining", sa.Float(), nullable=True),
        sa.Column("burn_rates", sa.JSON(), nullable=False),
        sa.Column("page", sa.Boolean(), nullable=False),
        sa.Column("ticket", sa.Boolean(), nullable=False),
        sa.Column("no_data", sa.Boolean(), nullable=False),
        sa.Column("notifications", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slo_status")),
    )
    op.create_index("ix_slo_status_service_slo_evaluated_at", "slo_status", ["service", "slo", "evaluated_at"])


def downgrade() -> None:
    op.drop_index("ix_slo_status_service_slo_evaluated_at", table_name="slo_status")
    op.drop_table("slo_status")
