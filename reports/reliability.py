"""Each SLO over the week: compliance and budget use from the rollups (the same series the
SLO engine evaluates), pages and tickets from the history the SLO job records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from ledger.models import SLOStatusRow as H
from ledger.queries import Conn
from reports.model import AlertEpisode, ReliabilitySection, SLOWeek
from slo.evaluator import to_minute
from slo.model import SLO, CostSLI
from slo.source import floor_hour, ledger_series_many, unsupported_reason

_TOLERANCE = 1e-12  # a compliance equal to the objective meets it despite float noise


def build(conn: Conn, slos: Sequence[SLO], start: datetime, end: datetime) -> ReliabilitySection:
    readable = [s for s in slos if unsupported_reason(s) is None]
    a, b = to_minute(start), to_minute(end)
    whole_hours = [(a, floor_hour(b))] if floor_hour(b) > a else []
    series = ledger_series_many(conn, readable, start, end, hours=whole_hours) if readable else {}
    episodes = _alert_changes(conn, slos, start, end)
    out = []
    for slo in slos:
        pages, tickets = episodes.get(slo.id, ([], 0))
        cost_budget = slo.sli.budget_usd_per_1k_requests if isinstance(slo.sli, CostSLI) else None
        base: dict[str, Any] = dict(
            id=slo.id,
            name=slo.name,
            service=slo.service,
            kind=slo.kind.value,
            description=slo.description or slo.sli.describe(),
            objective=slo.objective if slo.bounded else None,
            budget_usd_per_1k_requests=cost_budget,
            pages=pages,
            tickets=tickets,
        )
        if slo not in series:
            out.append(SLOWeek(**base, status="unsupported", reason=unsupported_reason(slo)))
            continue
        good, total = series[slo].sums(a, b)
        if total <= 0:
            out.append(SLOWeek(**base, status="no_data"))
            continue
        error_ratio = (total - good) / total
        burn = error_ratio / slo.error_budget if slo.error_budget > 0 else (0.0 if error_ratio == 0 else None)
        met = burn is not None and burn <= 1 + _TOLERANCE
        out.append(
            SLOWeek(
                **base,
                status="met" if met else "missed",
                good=good,
                total=total,
                compliance=1 - error_ratio if slo.bounded else None,
                burn_rate=burn,
                # the share of the period's error budget these minutes used: burn rate x their share of the period
                budget_consumed=None if burn is None else burn * (b - a) / slo.window.minutes,
            )
        )
    in_week = (H.evaluated_at >= start, H.evaluated_at < end)
    has_history = conn.execute(select(func.count()).select_from(H).where(*in_week)).scalar()
    return ReliabilitySection(slos=out, history_recorded=bool(has_history))


def _alert_changes(
    conn: Conn, slos: Sequence[SLO], start: datetime, end: datetime
) -> dict[str, tuple[list[AlertEpisode], int]]:
    """Per SLO id: the page episodes that started in [start, end), and how many tickets did.
    Reads only the history rows where the page or ticket state changed (SQL window functions)."""
    order = (H.evaluated_at, H.id)
    part = (H.service, H.slo)
    inner = (
        select(
            H.service,
            H.slo,
            H.evaluated_at,
            H.page,
            H.ticket,
            func.lag(H.page).over(partition_by=part, order_by=order).label("prev_page"),
            func.lag(H.ticket).over(partition_by=part, order_by=order).label("prev_ticket"),
        )
        .where(H.evaluated_at >= start, H.evaluated_at < end)
        .subquery()
    )
    changes = conn.execute(
        select(inner.c.service, inner.c.slo, inner.c.evaluated_at, inner.c.page, inner.c.ticket)
        .where(
            or_(inner.c.prev_page.is_(None), inner.c.page != inner.c.prev_page, inner.c.ticket != inner.c.prev_ticket)
        )
        .order_by(inner.c.service, inner.c.slo, inner.c.evaluated_at)
    ).all()
    ids = {(s.service, s.name): s.id for s in slos}
    out: dict[str, tuple[list[AlertEpisode], int]] = {}
    state: dict[str, tuple[bool, bool]] = {}
    for service, name, at, page, ticket in changes:
        slo_id = ids.get((service, name))
        if slo_id is None:
            continue
        if slo_id not in state:  # the week's first row: compare with the state before the week
            state[slo_id] = _state_before(conn, service, name, start)
        was_page, was_ticket = state[slo_id]
        episodes, tickets = out.get(slo_id, ([], 0))
        if page and not was_page:
            episodes.append(AlertEpisode(started_at=at, ended_at=None))
        elif was_page and not page and episodes and episodes[-1].ended_at is None:
            episodes[-1].ended_at = at
        out[slo_id] = (episodes, tickets + int(bool(ticket and not was_ticket)))
        state[slo_id] = (bool(page), bool(ticket))
    return out


def _state_before(conn: Conn, service: str, name: str, start: datetime) -> tuple[bool, bool]:
    row = conn.execute(
        select(H.page, H.ticket)
        .where(H.service == service, H.slo == name, H.evaluated_at < start)
        .order_by(H.evaluated_at.desc(), H.id.desc())
        .limit(1)
    ).first()
    return (bool(row[0]), bool(row[1])) if row else (False, False)
