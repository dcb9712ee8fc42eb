"""SQLAlchemy models of the ledger database.

Request rows and their per-minute and per-hour rollups (written only by `LedgerWriter`), plus the
governance state every gateway replica shares: tenants, API keys and model alias weights.
Timestamps are stored in UTC and always come back timezone-aware (UTC).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
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
    text,
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
    cache_lookup: Mapped[bool] = mapped_column(Boolean, nullable=False)  # looked up in the response cache, hit or miss
    retries: Mapped[int] = mapped_column(Integer, nullable=False)
    partial: Mapped[bool] = mapped_column(Boolean, nullable=False)  # ended early; counts are of what was delivered
    usage_estimated: Mapped[bool] = mapped_column(Boolean, nullable=False)  # counts estimated by the gateway
    priority: Mapped[str] = mapped_column(String, nullable=False)  # interactive | batch
    fallback_from: Mapped[str | None] = mapped_column(String)  # the version first chosen, when another one answered
    # ledger.record.Attempt per version tried, when more than one was
    attempts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    # overload | scan_failed | shutdown: the classifier's deferred scans did not read a text of it
    safety_unscanned: Mapped[str | None] = mapped_column(String)

    safety_hits: Mapped[list[SafetyHitRow]] = relationship(
        back_populates="request", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("ix_requests_tenant_started_at", "tenant", "started_at"),
        Index("ix_requests_model_version_started_at", "model_version", "started_at"),
        Index("ix_requests_started_at", "started_at"),
        # the request explorer's error-type filter; only failed requests are in it
        Index(
            "ix_requests_error_type_started_at",
            "error_type",
            "started_at",
            postgresql_where=text("error_type IS NOT NULL"),
            sqlite_where=text("error_type IS NOT NULL"),
        ),
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


class _RollupColumns:
    """The dimensions and sums shared by the minute and hour rollups."""

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
    cache_lookups: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # hits and misses
    # Requests with at least one hit whose action is block or flag in that direction (what
    # inferwatch_safety_incidents_total{direction} counts); redactions are not incidents.
    safety_incidents_input: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    safety_incidents_output: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class _BucketColumns:
    """The dimensions and count shared by the minute and hour histogram buckets."""

    tenant: Mapped[str] = mapped_column(String, primary_key=True)
    alias: Mapped[str] = mapped_column(String, primary_key=True)
    model_version: Mapped[str] = mapped_column(String, primary_key=True)
    status_class: Mapped[str] = mapped_column(String, primary_key=True)
    metric: Mapped[str] = mapped_column(String, primary_key=True)  # latency | ttft | tpot
    le: Mapped[float] = mapped_column(Float, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RequestRollupMinute(_RollupColumns, Base):
    """Additive per-minute sums; minute is `started_at` truncated to the UTC minute."""

    __tablename__ = "request_rollups_minute"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


class RequestRollupBucketMinute(_BucketColumns, Base):
    """Non-cumulative histogram counts: requests with prev_bound < value <= le.

    Values above the largest bound have no row; the total is in `request_rollups_minute`.
    """

    __tablename__ = "request_rollup_buckets_minute"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


class RequestRollupHour(_RollupColumns, Base):
    """The minute rollups summed per UTC hour (same columns, `hour` for `minute`); written by
    the same transaction as the minute rollups, so the two always agree."""

    __tablename__ = "request_rollups_hour"

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


class RequestRollupBucketHour(_BucketColumns, Base):
    """`request_rollup_buckets_minute` summed per UTC hour."""

    __tablename__ = "request_rollup_buckets_hour"

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)


# --- governance state shared by gateway replicas ---------------------------------------------


class TenantSettings(BaseModel):
    """`Tenant.settings`, parsed once where it is read. A limit the tenant did not set (not in
    `model_fields_set`) is the gateway's default; rpm or tpm set to None is no limit."""

    model_config = ConfigDict(frozen=True)

    rpm: int | None = None
    tpm: int | None = None
    max_body_bytes: int | None = None
    max_prompt_tokens: int | None = None
    max_concurrent_requests: int | None = None  # requests in progress at once per gateway replica
    priority: Literal["interactive", "batch"] = "interactive"  # batch: shed first under overload
    timeout_s: float | None = None  # default deadline of the tenant's requests, seconds
    store_content: bool = False  # opt-in to storing (redacted) prompts and completions
    cache: bool = False  # opt-in to the gateway's response cache
    budgets: list[dict[str, Any]] | None = None  # gateway.config.Budget dumps; None: the gateway's default budgets

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> TenantSettings:
        return cls.model_validate(raw or {})

    def given(self, names: Iterable[str]) -> dict[str, Any]:
        """The fields among `names` that the tenant set itself."""
        return {k: getattr(self, k) for k in names if k in self.model_fields_set}


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
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


# --- SLO status history (written by slo.service) ------------------------------------------------


class SLOStatusRow(Base):
    """One evaluation of one SLO: what the API's history and the notifier's restart state read."""

    __tablename__ = "slo_status"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String, nullable=False)
    slo: Mapped[str] = mapped_column(String, nullable=False)  # the SLO's name within its service
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String, nullable=False)  # ok|ticket|page|no_data|unsupported|error
    reason: Mapped[str | None] = mapped_column(String)  # why unsupported or error
    sli: Mapped[float | None] = mapped_column(Float)
    total: Mapped[float | None] = mapped_column(Float)  # valid events over the period
    budget_remaining: Mapped[float | None] = mapped_column(Float)
    burn_rates: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)  # window -> rate | null
    page: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    ticket: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    no_data: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Alert states as delivered to the webhooks, so a restart does not send them again.
    notifications: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (Index("ix_slo_status_service_slo_evaluated_at", "service", "slo", "evaluated_at"),)


# --- safety review queue (written by safety.review) ---------------------------------------------


class ReviewItem(Base):
    """A flagged or blocked safety hit waiting for a human verdict.

    Filled from `safety_hits` rows (so it inherits the ledger writer's batching, spool and
    idempotency); no foreign key, so an item outlives the raw request row's retention.
    """

    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    safety_hit_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))  # safety_hits.id
    request_id: Mapped[str] = mapped_column(String, nullable=False, index=True)
    tenant: Mapped[str] = mapped_column(String, nullable=False)
    direction: Mapped[str] = mapped_column(String, nullable=False)  # input | output
    category: Mapped[str] = mapped_column(String, nullable=False)
    scanner: Mapped[str] = mapped_column(String, nullable=False)
    action: Mapped[str] = mapped_column(String, nullable=False)  # flag | block
    score: Mapped[float] = mapped_column(Float, nullable=False)
    excerpt: Mapped[str | None] = mapped_column(String)  # redacted only, never raw content
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)  # when the request started
    status: Mapped[str] = mapped_column(String, nullable=False, default="open")  # open | claimed | resolved
    claimed_by: Mapped[str | None] = mapped_column(String)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    label: Mapped[str | None] = mapped_column(String)  # true_positive | false_positive
    note: Mapped[str | None] = mapped_column(String)

    __table_args__ = (
        # With the request id: SQLite may hand out a purged safety_hits id again.
        Index("ix_review_items_safety_hit_id_request_id", "safety_hit_id", "request_id", unique=True),
        Index("ix_review_items_status_category", "status", "category"),
        Index("ix_review_items_created_at", "created_at"),
    )


# --- canary analyses and rollouts (written by canary.service and canary.rollout) -----------------

import json as _json  # noqa: E402 - kept with the canary tables

from sqlalchemy import Text as _Text  # noqa: E402


class LaxJSON(TypeDecorator[Any]):
    """JSON kept as text, NaN and infinities included (statistics state has them; PostgreSQL's
    json type would refuse them)."""

    impl = _Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else _json.dumps(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else _json.loads(value)


class CanaryAnalysisRow(Base):
    """One canary analysis: fixed over a window, or live until decided or its deadline."""

    __tablename__ = "canary_analyses"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    alias: Mapped[str] = mapped_column(String, nullable=False)
    baseline: Mapped[str] = mapped_column(String, nullable=False)
    canary: Mapped[str] = mapped_column(String, nullable=False)
    profile: Mapped[dict[str, Any]] = mapped_column(LaxJSON, nullable=False)
    mode: Mapped[str] = mapped_column(String, nullable=False)  # fixed | live
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)  # fixed: end of the window
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)  # live: finish() at this time
    cursor: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)  # live: samples read up to here
    status: Mapped[str] = mapped_column(String, nullable=False, default="running")  # running | done
    verdict: Mapped[str | None] = mapped_column(String)
    result: Mapped[dict[str, Any] | None] = mapped_column(LaxJSON)
    state: Mapped[dict[str, Any] | None] = mapped_column(LaxJSON)  # SequentialAnalysis.state_dict()
    rollout_id: Mapped[str | None] = mapped_column(String, index=True)
    step: Mapped[int | None] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # optimistic lock
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_canary_analyses_status", "status"),)


class CanaryRolloutRow(Base):
    """A progressive rollout of `canary` behind `alias`; `steps` are canary percentages."""

    __tablename__ = "canary_rollouts"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    alias: Mapped[str] = mapped_column(String, nullable=False)
    baseline: Mapped[str] = mapped_column(String, nullable=False)
    canary: Mapped[str] = mapped_column(String, nullable=False)
    profile: Mapped[dict[str, Any]] = mapped_column(LaxJSON, nullable=False)
    steps: Mapped[list[float]] = mapped_column(LaxJSON, nullable=False)
    current_step: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    min_step_s: Mapped[float] = mapped_column(Float, nullable=False)
    min_step_samples: Mapped[int] = mapped_column(Integer, nullable=False)
    max_step_s: Mapped[float] = mapped_column(Float, nullable=False)
    on_inconclusive: Mapped[str] = mapped_column(String, nullable=False, default="pause")  # pause | rollback
    notify_url: Mapped[str | None] = mapped_column(String)
    analysis_id: Mapped[str | None] = mapped_column(String)  # the current step's analysis
    state: Mapped[str] = mapped_column(String, nullable=False)  # running|paused|promoted|rolled_back|aborted
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # optimistic lock
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_canary_rollouts_state", "state"),)


class CanaryRolloutEvent(Base):
    __tablename__ = "canary_rollout_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    rollout_id: Mapped[str] = mapped_column(String, nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    kind: Mapped[str] = mapped_column(
        String, nullable=False
    )  # started|step|promoted|rolled_back|paused|resumed|aborted|...
    detail: Mapped[dict[str, Any] | None] = mapped_column(LaxJSON)


# --- model registry, audit log and budget notices (written by gateway and ledger.audit) ---------


class ModelVersion(Base):
    """A registered model version: immutable metadata, the expected side of what workers report."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String, primary_key=True)  # e.g. mistral-7b-instruct@3f2a9c01b7d4
    digest: Mapped[str | None] = mapped_column(String)  # sha256:<hex> over weights, tokenizer, config
    source: Mapped[str | None] = mapped_column(String)  # model folder or upstream URL
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    notes: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String)


class ModelAliasChange(Base):
    """Every mapping an alias has had, newest last; `model_aliases` holds the current one."""

    __tablename__ = "model_alias_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    alias: Mapped[str] = mapped_column(String, nullable=False)
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)  # [{"version", "weight"}]
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String, nullable=False)
    reason: Mapped[str | None] = mapped_column(String)

    __table_args__ = (Index("ix_model_alias_history_alias_id", "alias", "id"),)


class AuditEntry(Base):
    """Append-only: each entry's `hash` covers its content and the previous entry's hash."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String, nullable=False)  # key id, "admin", "config" or "system"
    action: Mapped[str] = mapped_column(String, nullable=False)  # e.g. tenant.update, alias.set, rollout.step
    target: Mapped[str | None] = mapped_column(String)
    before: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    after: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_action", "action"))


class AuditHead(Base):
    """One row: the last sequence number and hash. Appenders lock it, so the chain stays linear
    across processes; verification compares it with the last entry (a cut tail shows)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class BudgetNotice(Base):
    """A soft-budget crossing already notified: one row per (scope, budget, period), so the
    webhook goes out once however many gateway replicas see the crossing."""

    __tablename__ = "budget_notices"

    scope: Mapped[str] = mapped_column(String, primary_key=True)  # tenant, or tenant/key_id
    budget: Mapped[str] = mapped_column(String, primary_key=True)  # e.g. month-spend
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    used_ratio: Mapped[float] = mapped_column(Float, nullable=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
