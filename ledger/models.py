"""SQLAlchemy models of the ledger database.

Request rows and their per-minute rollups (written only by `LedgerWriter`), plus the
governance state every gateway replica shares: tenants, API keys and model alias weights.
Timestamps are stored in UTC and always come back timezone-aware (UTC).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (naive input is taken as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        # SQLite keeps text without an offset: store naive UTC so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- requests -------------------------------------------------------------------------------


class Request(Base):
    """One row per RequestRecord (safety hits in `safety_hits`)."""

    __tablename__ = "requests"

    request_id: Mapped[str] = mapped_column(String, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    tenant: Mapped[str] = mapped_column(String, nullable=False)
    key_id: Mapped[str | None] = mapped_column(String)
    operation: Mapped[str] = mapped_column(String, nullable=False)
    alias: Mapped[str] = mapped_column(String, nullable=False)
    model_version: Mapped[str | None] = mapped_column(String)
    upstream: Mapped[str | None] = mapped_column(String)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    status_class: Mapped[str] = mapped_column(String, nullable=False)
    error_type: Mapped[str | None] = mapped_column(String)
    latency_s: Mapped[float] = mapped_column(Float, nullable=False)
    ttft_s: Mapped[float | None] = mapped_column(Float)
    tpot_s: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    cost_usd: Mapped[float] = mapped_column(Float, nullable=False)
    stream: Mapped[bool] = mapped_column(Boolean, nullable=False)
    finish_reason: Mapped[str | None] = mapped_column(String)
    trace_id: Mapped[str | None] = mapped_column(String)
    client_disconnected: Mapped[bool] = mapped_column(Boolean, nullable=False)
    cache_hit: Mapped[bool] = mapped_column(Boolean, nullable=False)
    retries: Mapped[int] = mapped_column(Integer, nullable=False)

    safety_hits: Mapped[list[SafetyHitRow]] = relationship(
        back_populates="request", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_requests_tenant_started_at", "tenant", "started_at"),
        Index("ix_requests_model_version_started_at", "model_version", "started_at"),
        Index("ix_requests_started_at", "started_at"),
    )


class SafetyHitRow(Base):
    __tablename__ = "safety_hits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("requests.request_id", ondelete="CASCADE"), nullable=False, index=True
    )
    direction: Mapped[str] = mapped_column(String, nullable=False)
    category: Mapped[str] = mapped_column(String, nullable=False)
    scanner: Mapped[str] = mapped_column(String, nullable=False)
    action: Mapped[str] = mapped_column(String, nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    excerpt: Mapped[str | None] = mapped_column(String)  # redacted only, never raw content

    request: Mapped[Request] = relationship(back_populates="safety_hits")


# --- rollups --------------------------------------------------------------------------------


class RequestRollupMinute(Base):
    """Additive per-minute sums; minute is `started_at` truncated to the UTC minute."""

    __tablename__ = "request_rollups_minute"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    tenant: Mapped[str] = mapped_column(String, primary_key=True)
    alias: Mapped[str] = mapped_column(String, primary_key=True)
    model_version: Mapped[str] = mapped_column(String, primary_key=True)  # '' when none
    operation: Mapped[str] = mapped_column(String, primary_key=True)
    status_class: Mapped[str] = mapped_column(String, primary_key=True)
    error_type: Mapped[str] = mapped_column(String, primary_key=True)  # '' when none
    requests: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    latency_sum_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    ttft_sum_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    ttft_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    tpot_sum_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    tpot_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    safety_flagged: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    safety_blocked: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    client_disconnects: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cache_hits: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RequestRollupBucketMinute(Base):
    """Non-cumulative histogram counts: requests with prev_bound < value <= le.

    Values above the largest bound have no row; the total is in `request_rollups_minute`.
    """

    __tablename__ = "request_rollup_buckets_minute"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    tenant: Mapped[str] = mapped_column(String, primary_key=True)
    alias: Mapped[str] = mapped_column(String, primary_key=True)
    model_version: Mapped[str] = mapped_column(String, primary_key=True)
    status_class: Mapped[str] = mapped_column(String, primary_key=True)
    metric: Mapped[str] = mapped_column(String, primary_key=True)  # latency | ttft | tpot
    le: Mapped[float] = mapped_column(Float, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


# --- governance state shared by gateway replicas ---------------------------------------------


class TenantSettings(TypedDict, total=False):
    """Keys of `Tenant.settings`; a missing key means the gateway's default."""

    rpm: int
    tpm: int
    max_body_bytes: int
    max_prompt_tokens: int
    store_content: bool  # opt-in to storing (redacted) prompts and completions


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Reassign the dict to persist a change: in-place mutation is not tracked.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="tenant_row")


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String, primary_key=True)  # public prefix of the key
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.id"), nullable=False, index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # hex digest
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    tenant_row: Mapped[Tenant] = relationship(back_populates="api_keys")


class ModelAlias(Base):
    """Weighted versions behind an alias, as a rollout sets them."""

    __tablename__ = "model_aliases"

    alias: Mapped[str] = mapped_column(String, primary_key=True)
    model_version: Mapped[str] = mapped_column(String, primary_key=True)
    weight: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
