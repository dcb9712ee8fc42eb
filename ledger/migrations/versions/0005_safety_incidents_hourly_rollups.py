"""per-direction safety incidents in the rollups; hourly rollups

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

`request_rollups_minute` gains `safety_incidents_input` and `safety_incidents_output` (requests
with a blocked or flagged hit in that direction). Minutes written before this revision keep 0
there: the old rollups do not say the direction (the raw `safety_hits` rows do, while kept).

`request_rollups_hour` and `request_rollup_buckets_hour` are the minute tables summed per UTC
hour; they are filled here from the minute rollups already stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)
INCIDENTS = ("safety_incidents_input", "safety_incidents_output")
KEY = ("tenant", "alias", "model_version", "operation", "status_class", "error_type")
VALUES = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_sum_s",
    "ttft_sum_s",
    "ttft_count",
    "tpot_sum_s",
    "tpot_count",
    "safety_flagged",
    "safety_blocked",
    "client_disconnects",
    "cache_hits",
    *INCIDENTS,
)
BUCKET_KEY = ("tenant", "alias", "model_version", "status_class", "metric", "le")


def _hour_of(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"  # not the session's zone
    return f"strftime('%Y-%m-%d %H:00:00.000000', {column})"  # naive UTC text (ledger.models.UTCDateTime)


def upgrade() -> None:
    # Added with a default for the rows already there, which is then dropped (the models have none).
    for name in INCIDENTS:
        op.add_column(
            "request_rollups_minute", sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("request_rollups_minute") as batch:
        for name in INCIDENTS:
            batch.alter_column(name, existing_type=sa.Integer(), existing_nullable=False, server_default=None)

    op.create_table(
        "request_rollups_hour",
        sa.Column("hour", UTC, nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("operation", sa.String(), nullable=False),
        sa.Column("status_class", sa.String(), nullable=False),
        sa.Column("error_type", sa.String(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_sum_s", sa.Float(), nullable=False),
        sa.Column("ttft_sum_s", sa.Float(), nullable=False),
        sa.Column("ttft_count", sa.Integer(), nullable=False),
        sa.Column("tpot_sum_s", sa.Float(), nullable=False),
        sa.Column("tpot_count", sa.Integer(), nullable=False),
        sa.Column("safety_flagged", sa.Integer(), nullable=False),
        sa.Column("safety_blocked", sa.Integer(), nullable=False),
        sa.Column("client_disconnects", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("safety_incidents_input", sa.Integer(), nullable=False),
        sa.Column("safety_incidents_output", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hour",
            "tenant",
            "alias",
            "model_version",
            "operation",
            "status_class",
            "error_type",
            name=op.f("pk_request_rollups_hour"),
        ),
    )
    op.create_table(
        "request_rollup_buckets_hour",
        sa.Column("hour", UTC, nullable=False),
        sa.Column("tenant", sa.String(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("status_class", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("le", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hour",
            "tenant",
            "alias",
            "model_version",
            "status_class",
            "metric",
            "le",
            name=op.f("pk_request_rollup_buckets_hour"),
        ),
    )

    hour = _hour_of("minute")
    keys = ", ".join(KEY)
    op.execute(
        f"INSERT INTO request_rollups_hour (hour, {keys}, {', '.join(VALUES)}) "
        f"SELECT {hour}, {keys}, {', '.join(f'SUM({v})' for v in VALUES)} "
        f"FROM request_rollups_minute GROUP BY {hour}, {keys}"
    )
    bkeys = ", ".join(BUCKET_KEY)
    op.execute(
        f"INSERT INTO request_rollup_buckets_hour (hour, {bkeys}, count) "
        f"SELECT {hour}, {bkeys}, SUM(count) FROM request_rollup_buckets_minute GROUP BY {hour}, {bkeys}"
    )


def downgrade() -> None:
    op.drop_table("request_rollup_buckets_hour")
    op.drop_table("request_rollups_hour")
    with op.batch_alter_table("request_rollups_minute") as batch:
        for name in reversed(INCIDENTS):
            batch.drop_column(name)
