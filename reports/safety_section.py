"""The week's safety hits (raw ledger rows) and review queue outcomes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, case, func, select

from ledger.models import Request, ReviewItem, SafetyHitRow
from reports.model import CategoryHits, HitCount, Incident, ReviewOutcome, SafetySection
from safety import review

S, R = SafetyHitRow, Request
_RANK = case((S.action == "block", 3), (S.action == "redact", 2), (S.action == "flag", 1), else_=0)
INCIDENT_ACTIONS = ("block", "flag")  # as the ledger counts incidents: a redaction is not one


def build(engine: Engine, start: datetime, end: datetime, top_n: int) -> SafetySection:
    """Hits of requests that started in [start, end) and the review items queued for them
    (the queue is synced from the ledger first, as every queue read does)."""
    review.sync(engine)
    in_week = (R.started_at >= start, R.started_at < end)
    with engine.connect() as conn:
        hits = [
            HitCount(category=c, direction=d, action=a, hits=int(n))
            for c, d, a, n in conn.execute(
                select(S.category, S.direction, S.action, func.count())
                .join(R, R.request_id == S.request_id)
                .where(*in_week)
                .group_by(S.category, S.direction, S.action)
                .order_by(func.count().desc(), S.category)
            )
        ]

        strongest = (
            select(func.max(_RANK).label("rank"))
            .join(R, R.request_id == S.request_id)
            .where(*in_week)
            .group_by(S.request_id)
            .subquery()
        )
        outcomes: dict[int, int] = {
            int(rank): int(n)
            for rank, n in conn.execute(select(strongest.c.rank, func.count()).group_by(strongest.c.rank))
        }

        worst = [
            Incident(
                request_id=rid,
                started_at=t,
                tenant=ten,
                alias=al,
                category=c,
                direction=d,
                action=a,
                scanner=sc,
                score=float(score),
                excerpt=ex,
            )
            for rid, t, ten, al, c, d, a, sc, score, ex in conn.execute(
                select(
                    R.request_id,
                    R.started_at,
                    R.tenant,
                    R.alias,
                    S.category,
                    S.direction,
                    S.action,
                    S.scanner,
                    S.score,
                    S.excerpt,
                )
                .join(R, R.request_id == S.request_id)
                .where(*in_week, S.action.in_(INCIDENT_ACTIONS))
                .order_by(_RANK.desc(), S.score.desc(), R.started_at, S.id)
                .limit(top_n)
            )
        ]

        queue = conn.execute(
            select(ReviewItem.category, ReviewItem.status, func.count())
            .where(ReviewItem.created_at >= start, ReviewItem.created_at < end)
            .group_by(ReviewItem.category, ReviewItem.status)
        ).all()
    labels = review.precision_by_category(engine, start=start, end=end)

    by_category: dict[str, CategoryHits] = {}
    for h in hits:
        cat = by_category.setdefault(h.category, CategoryHits(category=h.category))
        if h.action in ("block", "redact", "flag"):
            setattr(cat, h.action, getattr(cat, h.action) + h.hits)

    outcome: dict[str, ReviewOutcome] = {}
    for category, status, n in queue:
        o = outcome.setdefault(category, ReviewOutcome(category=category))
        o.queued += int(n)
        setattr(o, status, getattr(o, status) + int(n))
    for category, p in labels.items():
        o = outcome.setdefault(category, ReviewOutcome(category=category))
        o.true_positive, o.false_positive = p.true_positive, p.false_positive

    return SafetySection(
        hits_total=sum(h.hits for h in hits),
        hits=hits,
        by_category=sorted(by_category.values(), key=lambda c: (-c.total, c.category)),
        requests_with_hits=sum(outcomes.values()),
        requests_blocked=outcomes.get(3, 0),
        requests_redacted=outcomes.get(2, 0),
        requests_flagged=outcomes.get(1, 0),
        review=sorted(outcome.values(), key=lambda o: o.category),
        worst=worst,
    )
