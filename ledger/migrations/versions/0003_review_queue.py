"""review_queue: flagged and blocked safety hits waiting for a human verdict

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("safety_hit_id", ID, nullable=True),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("scanner", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("excerpt", sa.String(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("claimed_at", UTC, nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        sa.Column("resolved_at", UTC, nullable=True),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
    )
    op.create_index(op.f("ix_review_items_request_id"), "review_items", ["request_id"])
    # With the request id: SQLite may hand out the id of a purged safety_hits row again.
    op.create_index(
        "ix_review_items_safety_hit_id_request_id", "review_items", ["safety_hit_id", "request_id"], unique=True
    )
    op.create_index("ix_review_items_status_category", "review_items", ["status", "category"])
    op.create_index("ix_review_items_created_at", "review_items", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_review_items_created_at", table_name="review_items")
    op.drop_index("ix_review_items_status_category", table_name="review_items")
    op.drop_index("ix_review_items_safety_hit_id_request_id", table_name="review_items")
    op.drop_index(op.f("ix_review_items_request_id"), table_name="review_items")
    op.drop_table("review_items")
