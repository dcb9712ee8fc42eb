"""model registry, alias history, audit log, budget notices

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The current alias mappings become the first entry of each alias's history, so a rollback
right after this upgrade has something to go back to once the alias changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("notes", sa.String(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    history = op.create_table(
        "model_alias_history",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("changed_at", UTC, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_alias_history")),
    )
    op.create_index("ix_model_alias_history_alias_id", "model_alias_history", ["alias", "id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", ID, autoincrement=False, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("before", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("after", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])
    op.create_table(
        "budget_notices",
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("budget", sa.String(), nullable=False),
        sa.Column("period_start", UTC, nullable=False),
        sa.Column("used_ratio", sa.Float(), nullable=False),
        sa.Column("sent_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("scope", "budget", "period_start", name=op.f("pk_budget_notices")),
    )
    rows = op.get_bind().execute(
        sa.text("SELECT alias, model_version, weight FROM model_aliases ORDER BY alias, model_version")
    )
    current: dict[str, list[dict[str, object]]] = {}
    for alias, version, weight in rows:
        current.setdefault(alias, []).append({"version": version, "weight": weight})
    now = datetime.now(timezone.utc)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # naive UTC text, as ledger.models.UTCDateTime stores it
    if current:
        op.bulk_insert(
            history,
            [
                {
                    "alias": a,
                    "targets": json.loads(json.dumps(t)),
                    "changed_at": now,
                    "actor": "migration",
                    "reason": "mapping before the registry",
                }
                for a, t in current.items()
            ],
        )


def downgrade() -> None:
    op.drop_table("budget_notices")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_model_alias_history_alias_id", table_name="model_alias_history")
    op.drop_table("model_alias_history")
    op.drop_table("model_versions")
