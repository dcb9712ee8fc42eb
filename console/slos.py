"""The SLO pages (after Pyrra): a list with objective, window, SLI, budget left and alert
states; a page per SLO with its burn rates per window pair against the factors, the budget
and SLI over time, the time to exhaustion and the history of its state changes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from slo.history import HistoryEntry
from slo.router import visible

from .deps import ConsoleDeps
from .render import ConsoleError, page
from .web import Gate

HISTORY_ROWS = 2000  # one row per evaluation (30 s): the last ~16 hours


def changes(history: list[HistoryEntry]) -> list[HistoryEntry]:
    """The entries where the status differs from the one before, newest first (as given)."""
    oldest_first = list(reversed(history))
    kept = [e for i, e in enumerate(oldest_first) if i == 0 or e.status != oldest_first[i - 1].status]
    return list(reversed(kept))


def chart(history: list[HistoryEntry]) -> dict[str, Any]:
    rows = list(reversed(history))
    return {
        "x": [int(e.evaluated_at.timestamp()) for e in rows],
        "series": [
            {"label": "budget remaining", "values": [e.budget_remaining for e in rows]},
            {"label": "SLI", "values": [e.sli for e in rows]},
        ],
    }


def pairs(status: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per alert window pair: both windows' burn rates against the pair's factor."""
    rates = status["burn_rates"]
    out = []
    for severity in ("page", "ticket"):
        for w in status["alerts"][severity]["windows"]:
            out.append(
                {**w, "severity": severity, "long_rate": rates.get(w["long"]), "short_rate": rates.get(w["short"])}
            )
    return out


def routes(router: APIRouter, deps: ConsoleDeps, gate: Gate) -> None:
    @router.get("/ui/slos", response_class=HTMLResponse)
    async def slo_list(request: Request) -> HTMLResponse:
        v = await gate.viewer(request)
        slos = [s for s in deps.slos.slos if visible(s, v.principal)]
        statuses = await run_in_threadpool(deps.slos.current, slos)
        return page("slos.html.jinja", viewer=v, active="slos", statuses=[st.to_dict() for st in statuses])

    @router.get("/ui/slos/{slo_id}", response_class=HTMLResponse)
    async def slo_detail(
        request: Request, slo_id: str, limit: int = Query(HISTORY_ROWS, ge=1, le=20_000)
    ) -> HTMLResponse:
        v = await gate.viewer(request)
        slo = deps.slos.get(slo_id)
        if slo is None or not visible(slo, v.principal):
            raise ConsoleError(404, f"No SLO {slo_id!r}; the SLO list shows those you can see.")
        status = (await run_in_threadpool(deps.slos.current, [slo]))[0].to_dict()
        history = await run_in_threadpool(deps.slos.history, slo.id, None, limit)
        return page(
            "slo.html.jinja",
            viewer=v,
            active="slos",
            st=status,
            pairs=pairs(status),
            changes=changes(history),
            chart=chart(history),
            evaluations=len(history),
        )
