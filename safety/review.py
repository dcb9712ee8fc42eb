"""Review queue: flagged and blocked safety hits waiting for a human verdict.

The gateway never writes here on the request path. Its safety hits travel in the
`RequestRecord` through the ledger writer (batched, spooled while the database is down,
idempotent by request id) into `safety_hits`; ``sync`` copies the flag and block rows that
are not queued yet into `review_items` (run periodically by the gateway and before every
read, so a listing is never behind the ledger). Several gateways may sync at once: the
unique (`safety_hit_id`, `request_id`) makes a row queued once.

Reviewers ``claim`` an item (so two people do not work on the same one) and ``resolve`` it
as a true or false positive with a note; ``precision_by_category`` turns the labels into the
measured precision the weekly report shows.

Every function takes a SQLAlchemy ``Engine`` and runs its own short transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger import audit
from ledger.models import Request, ReviewItem, SafetyHitRow

STATUSES = ("open", "claimed", "resolved")
LABELS = ("true_positive", "false_positive")
QUEUED_ACTIONS = ("flag", "block")
SYNC_LOOKBACK = 10_000  # safety_hits ids below the newest queued one that are still checked
LABEL_ALIASES = {"tp": "true_positive", "true": "true_positive", "fp": "false_positive", "false": "false_positive"}


class ReviewError(Exception):
    """``status`` is the HTTP status the API answers with (404, 409, 400)."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class CategoryPrecision:
    category: str
    true_positive: int
    false_positive: int

    @property
    def resolved(self) -> int:
        return self.true_positive + self.false_positive

    @property
    def precision(self) -> float | None:
        return self.true_positive / self.resolved if self.resolved else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "true_positive": self.true_positive,
            "false_positive": self.false_positive,
            "resolved": self.resolved,
            "precision": self.precision,
        }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def to_dict(item: ReviewItem) -> dict[str, Any]:
    def iso(d: datetime | None) -> str | None:
        return d.isoformat() if d else None

    return {
        "id": item.id,
        "request_id": item.request_id,
        "tenant": item.tenant,
        "direction": item.direction,
        "category": item.category,
        "scanner": item.scanner,
        "action": item.action,
        "score": item.score,
        "excerpt": item.excerpt,
        "created_at": iso(item.created_at),
        "status": item.status,
        "claimed_by": item.claimed_by,
        "claimed_at": iso(item.claimed_at),
        "resolved_by": item.resolved_by,
        "resolved_at": iso(item.resolved_at),
        "label": item.label,
        "note": item.note,
    }


# --- filling the queue ---------------------------------------------------------------------


def sync(engine: Engine) -> int:
    """Queue the flag and block hits of the ledger that are not queued yet; returns how many."""
    # __table__ is typed FromClause; a declarative model's is a Table, which insert() needs
    R, S, Q = Request.__table__, SafetyHitRow.__table__, cast(Table, ReviewItem.__table__)
    name = engine.dialect.name
    insert = postgresql.insert if name == "postgresql" else sqlite.insert if name == "sqlite" else None
    if insert is None:
        raise ValueError(f"unsupported dialect {name!r}")
    with engine.begin() as conn:
        queued = conn.execute(select(func.max(Q.c.safety_hit_id))).scalar() or 0
        stored = conn.execute(select(func.max(S.c.id))).scalar() or 0
        # Ids only grow, except on SQLite after the newest rows were purged: then look at all.
        floor = max(0, queued - SYNC_LOOKBACK) if stored >= queued else 0
        rows = (
            select(
                S.c.id,
                S.c.request_id,
                R.c.tenant,
                S.c.direction,
                S.c.category,
                S.c.scanner,
                S.c.action,
                S.c.score,
                S.c.excerpt,
                R.c.started_at,
                literal("open"),
            )
            .join(R, R.c.request_id == S.c.request_id)
            .where(
                S.c.id > floor,
                S.c.action.in_(QUEUED_ACTIONS),
                ~exists().where(Q.c.safety_hit_id == S.c.id, Q.c.request_id == S.c.request_id),
            )
            .order_by(S.c.id)
        )
        cols = [
            "safety_hit_id",
            "request_id",
            "tenant",
            "direction",
            "category",
            "scanner",
            "action",
            "score",
            "excerpt",
            "created_at",
            "status",
        ]
        stmt = (
            insert(Q)
            .from_select(cols, rows)
            .on_conflict_do_nothing(index_elements=["safety_hit_id", "request_id"])
            .returning(Q.c.id)
        )
        return len(conn.execute(stmt).all())


# --- reading and working the queue -----------------------------------------------------------


def list_items(
    engine: Engine,
    *,
    status: str | None = None,
    category: str | None = None,
    tenant: str | None = None,
    limit: int = 100,
    offset: int = 0,
    sync_first: bool = True,
) -> list[dict[str, Any]]:
    """Items, oldest first, filtered by status, category and tenant."""
    if status is not None and status not in STATUSES:
        raise ReviewError(400, f"status must be one of {', '.join(STATUSES)}", "invalid_status")
    if sync_first:
        sync(engine)
    stmt = select(ReviewItem).order_by(ReviewItem.created_at, ReviewItem.id).limit(limit).offset(offset)
    if status:
        stmt = stmt.where(ReviewItem.status == status)
    if category:
        stmt = stmt.where(ReviewItem.category == category)
    if tenant:
        stmt = stmt.where(ReviewItem.tenant == tenant)
    with Session(engine) as s:
        return [to_dict(i) for i in s.scalars(stmt)]


def get_item(engine: Engine, item_id: int) -> dict[str, Any]:
    with Session(engine) as s:
        item = s.get(ReviewItem, item_id)
        if item is None:
            raise ReviewError(404, f"No review item with id {item_id}.", "review_item_not_found")
        return to_dict(item)


def _tenant_check(engine: Engine, item_id: int, tenant: str | None) -> None:
    if tenant is not None and get_item(engine, item_id)["tenant"] != tenant:
        raise ReviewError(404, f"No review item with id {item_id}.", "review_item_not_found")


def claim(engine: Engine, item_id: int, reviewer: str, *, tenant: str | None = None) -> dict[str, Any]:
    """Open -> claimed by ``reviewer`` (claiming one's own claim again is a no-op)."""
    _tenant_check(engine, item_id, tenant)
    with engine.begin() as conn:
        T = cast(Table, ReviewItem.__table__)
        changed = conn.execute(
            update(T)
            .where(T.c.id == item_id, T.c.status == "open")
            .values(status="claimed", claimed_by=reviewer, claimed_at=_now())
        ).rowcount
        if changed:
            audit.append(
                conn,
                actor=reviewer,
                action="review.claim",
                target=str(item_id),
                before={"status": "open"},
                after={"status": "claimed"},
            )
    item = get_item(engine, item_id)
    if not changed and not (item["status"] == "claimed" and item["claimed_by"] == reviewer):
        who = f" by {item['claimed_by']}" if item["claimed_by"] else ""
        raise ReviewError(409, f"Review item {item_id} is already {item['status']}{who}.", "review_item_taken")
    return item


def resolve(
    engine: Engine, item_id: int, label: str, note: str | None, reviewer: str, *, tenant: str | None = None
) -> dict[str, Any]:
    """Open or claimed -> resolved with a label (``true_positive`` / ``false_positive``)."""
    label = LABEL_ALIASES.get(label.lower(), label.lower()) if label else label
    if label not in LABELS:
        raise ReviewError(400, f"label must be one of {', '.join(LABELS)}", "invalid_label")
    _tenant_check(engine, item_id, tenant)
    with engine.begin() as conn:
        T = cast(Table, ReviewItem.__table__)
        now = _now()
        changed = conn.execute(
            update(T)
            .where(T.c.id == item_id, T.c.status.in_(("open", "claimed")))
            .values(
                status="resolved",
                label=label,
                note=note,
                resolved_by=reviewer,
                resolved_at=now,
                claimed_by=func.coalesce(T.c.claimed_by, reviewer),
                claimed_at=func.coalesce(T.c.claimed_at, now),
            )
        ).rowcount
        if changed:
            audit.append(
                conn, actor=reviewer, action="review.resolve", target=str(item_id), after={"label": label, "note": note}
            )
    item = get_item(engine, item_id)
    if not changed:
        raise ReviewError(409, f"Review item {item_id} is already resolved ({item['label']}).", "review_item_resolved")
    return item


def precision_by_category(
    engine: Engine,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    tenant: str | None = None,
    direction: str | None = None,
) -> dict[str, CategoryPrecision]:
    """Measured precision per category: true positives over resolved items, for items whose
    request started in [start, end). Categories without resolved items are absent."""
    T = ReviewItem
    stmt = (
        select(
            T.category,
            func.count().filter(T.label == "true_positive"),
            func.count().filter(T.label == "false_positive"),
        )
        .where(and_(T.status == "resolved", T.label.in_(LABELS)))
        .group_by(T.category)
        .order_by(T.category)
    )
    if start is not None:
        stmt = stmt.where(T.created_at >= start)
    if end is not None:
        stmt = stmt.where(T.created_at < end)
    if tenant is not None:
        stmt = stmt.where(T.tenant == tenant)
    if direction is not None:
        stmt = stmt.where(T.direction == direction)
    with Session(engine) as s:
        return {cat: CategoryPrecision(cat, int(t or 0), int(f or 0)) for cat, t, f in s.execute(stmt)}


def counts(engine: Engine, *, tenant: str | None = None) -> dict[str, int]:
    """Items per status (after a sync)."""
    sync(engine)
    stmt = select(ReviewItem.status, func.count()).group_by(ReviewItem.status)
    if tenant is not None:
        stmt = stmt.where(ReviewItem.tenant == tenant)
    with Session(engine) as s:
        found = dict(s.execute(stmt).all())
    return {st: int(found.get(st, 0)) for st in STATUSES}
