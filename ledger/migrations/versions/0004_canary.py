"""canary: analyses, rollouts and rollout events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "canary_analyses",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("baseline", sa.String(), nullable=False),
        sa.Column("canary", sa.String(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("window_start", UTC, nullable=False),
        sa.Column("window_end", UTC, nullable=True),
        sa.Column("deadline", UTC, nullable=True),
        sa.Column("cursor", UTC, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("verdict", sa.String(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("rollout_id", sa.String(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_analyses")),
    )
    op.create_index("ix_canary_analyses_status", "canary_analyses", ["status"])
    op.create_index(op.f("ix_canary_analyses_rollout_id"), "canary_analyses", ["rollout_id"])
    op.create_table(
        "canary_rollouts",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("baseline", sa.String(), nullable=False),
        sa.Column("canary", sa.String(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", UTC, nullable=False),
        sa.Column("min_step_s", sa.Float(), nullable=False),
        sa.Column("min_step_samples", sa.Integer(), nullable=False),
        sa.Column("max_step_s", sa.Float(), nullable=False),
        sa.Column("on_inconclusive", sa.String(), nullable=False),
        sa.Column("notify_url", sa.String(), nullable=True),
        sa.Column("analysis_id", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_rollouts")),
    )
    op.create_index("ix_canary_rollouts_state", "canary_rollouts", ["state"])
    op.create_table(
        "canary_rollout_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.String(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_rollout_events")),
    )
    op.create_index(op.f("ix_canary_rollout_events_rollout_id"), "canary_rollout_events", ["rollout_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_canary_rollout_events_rollout_id"), table_name="canary_rollout_events")
    op.drop_table("canary_rollout_events")
    op.drop_index("ix_canary_rollouts_state", table_name="canary_rollouts")
    op.drop_table("canary_rollouts")
    op.drop_index(op.f("ix_canary_analyses_rollout_id"), table_name="canary_analyses")
    op.drop_index("ix_canary_analyses_status", table_name="canary_analyses")
    op.drop_table("canary_analyses")
