"""The `slo_status` table: one row per SLO evaluation the job records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.orm import Session

from ledger.models import SLOStatusRow
from slo.model import SLO
from slo.status import SLOStatus

Conn = Session | Connection
H = SLOStatusRow


@dataclass(frozen=True)
class HistoryEntry:
    evaluated_at: datetime
    status: str
    reason: str | None
    sli: float | None
    total: float | None
    budget_remaining: float | None
    burn_rates: dict[str, float | None]
    page: bool
    ticket: bool
    no_data: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluated_at": self.evaluated_at.isoformat(),
            "status": self.status,
            "reason": self.reason,
            "sli": self.sli,
            "total": self.total,
            "budget_remaining": self.budget_remaining,
            "burn_rates": self.burn_rates,
            "page": self.page,
            "ticket": self.ticket,
            "no_data": self.no_data,
        }


def row_of(st: SLOStatus, notifications: Mapping[str, Any] | None = None) -> dict[str, Any]:
    e = st.evaluation
    return {
        "service": st.slo.service,
        "slo": st.slo.name,
        "evaluated_at": st.evaluated_at,
        "status": st.status,
        "reason": (st.reason or "")[:1000] or None,
        "sli": st.sli,
        "total": e.total if e else None,
        "budget_remaining": st.budget_remaining,
        "burn_rates": st.burn_rates(),
        "page": st.page,
        "ticket": st.ticket,
        "no_data": st.no_data,
        "notifications": dict(notifications) if notifications is not None else None,
    }


def record(
    conn: Conn, statuses: Iterable[SLOStatus], notifications: Mapping[str, Mapping[str, Any]] | None = None
) -> int:
    """Insert one row per status (`notifications` by SLO id); the caller commits."""
    notes = notifications or {}
    rows = [row_of(st, notes.get(st.slo.id)) for st in statuses]
    if rows:
        conn.execute(insert(H), rows)
    return len(rows)


def entries(conn: Conn, slo: SLO, *, since: datetime | None = None, limit: int = 100) -> list[HistoryEntry]:
    """The SLO's recorded evaluations, newest first."""
    stmt = (
        select(
            H.evaluated_at,
            H.status,
            H.reason,
            H.sli,
            H.total,
            H.budget_remaining,
            H.burn_rates,
            H.page,
            H.ticket,
            H.no_data,
        )
        .where(H.service == slo.service, H.slo == slo.name, *([H.evaluated_at >= since] if since is not None else []))
        .order_by(H.evaluated_at.desc(), H.id.desc())
        .limit(limit)
    )
    return [HistoryEntry(*row) for row in conn.execute(stmt)]


def last_notifications(conn: Conn, slos: Iterable[SLO]) -> dict[str, dict[str, Any]]:
    """The delivered alert states recorded in each SLO's newest row, by SLO id."""
    out: dict[str, dict[str, Any]] = {}
    for slo in slos:
        stmt = (
            select(H.notifications)
            .where(H.service == slo.service, H.slo == slo.name)
            .order_by(H.evaluated_at.desc(), H.id.desc())
            .limit(1)
        )
        value = conn.execute(stmt).scalar()
        if value:
            out[slo.id] = dict(value)
    return out


def prune(conn: Conn, before: datetime) -> int:
    """Delete rows evaluated before `before`; the caller commits."""
    return int(conn.execute(delete(H).where(H.evaluated_at < before)).rowcount or 0)  # type: ignore[attr-defined]
