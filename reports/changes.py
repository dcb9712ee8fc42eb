"""Canary analyses and rollouts of the week, read from the canary tables of the ledger."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.models import CanaryAnalysisRow as A
from ledger.models import CanaryRolloutEvent as E
from ledger.models import CanaryRolloutRow as RO
from reports.model import AnalysisSummary, ChangeSection, RolloutEventSummary, RolloutSummary


def build(conn: Session, start: datetime, end: datetime) -> ChangeSection:
    """Analyses created in [start, end); rollouts created in it or with events in it."""
    analyses = [
        AnalysisSummary(
            id=a.id,
            alias=a.alias,
            baseline=a.baseline,
            canary=a.canary,
            mode=a.mode,
            status=a.status,
            verdict=a.verdict,
            reason=(a.result or {}).get("reason"),
            created_at=a.created_at,
            rollout_id=a.rollout_id,
            step=a.step,
        )
        for a in conn.execute(
            select(A).where(A.created_at >= start, A.created_at < end).order_by(A.created_at, A.id)
        ).scalars()
    ]
    events: dict[str, list[RolloutEventSummary]] = defaultdict(list)
    for rid, at, kind in conn.execute(
        select(E.rollout_id, E.at, E.kind).where(E.at >= start, E.at < end).order_by(E.at, E.id)
    ):
        events[rid].append(RolloutEventSummary(at=at, kind=kind))
    rollouts = [
        RolloutSummary(
            id=r.id,
            alias=r.alias,
            baseline=r.baseline,
            canary=r.canary,
            state=r.state,
            steps=list(r.steps),
            current_step=r.current_step,
            created_at=r.created_at,
            events=events.get(r.id, []),
        )
        for r in conn.execute(
            select(RO)
            .where(or_(RO.id.in_(list(events)), (RO.created_at >= start) & (RO.created_at < end)))
            .order_by(RO.created_at, RO.id)
        ).scalars()
    ]
    return ChangeSection(analyses=analyses, rollouts=rollouts)
