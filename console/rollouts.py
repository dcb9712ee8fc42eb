"""Canary analyses (per-metric classification, effect size, reason, score) and rollouts
(steps, weights over time, events), with pause / resume / abort and alias rollback for admins:
the functions the API routes call, so the audit log records the same entries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from canary.rollout import RolloutError

from . import queries as q
from .deps import ConsoleDeps
from .render import ConsoleError, page
from .web import Gate, back

ACTIONS = ("pause", "resume", "abort")
NAME_MAX = 200


def weight_chart(history: list[Any], canary: str) -> dict[str, Any]:
    """The canary's share of the alias after each change, oldest first."""
    rows = list(reversed(history))

    def share(targets: list[dict[str, Any]]) -> float:
        total = sum(float(t.get("weight", 0)) for t in targets) or 1.0
        return 100.0 * sum(float(t.get("weight", 0)) for t in targets if t.get("version") == canary) / total

    return {
        "x": [int(h.changed_at.timestamp()) for h in rows],
        "series": [{"label": f"{canary} %", "values": [share(h.targets) for h in rows]}],
    }


def routes(router: APIRouter, deps: ConsoleDeps, gate: Gate) -> None:
    rollouts = deps.canary.rollouts

    def read(fn: Callable[[Any], Any]) -> Any:
        with deps.engine.connect() as conn:
            return fn(conn)

    @router.get("/ui/canary", response_class=HTMLResponse)
    async def canary_home(request: Request) -> HTMLResponse:
        v = await gate.admin(request)
        analyses = await run_in_threadpool(lambda: deps.canary.list(standalone=True, limit=50))
        runs = await run_in_threadpool(lambda: rollouts.list(limit=50))
        weights = await run_in_threadpool(read, q.alias_weights)
        return page("canary.html.jinja", viewer=v, active="canary", analyses=analyses, rollouts=runs, weights=weights)

    @router.get("/ui/canary/analyses/{analysis_id}", response_class=HTMLResponse)
    async def analysis(request: Request, analysis_id: str = Path(max_length=NAME_MAX)) -> HTMLResponse:
        v = await gate.admin(request)
        a = await run_in_threadpool(deps.canary.get, analysis_id)
        if a is None:
            raise ConsoleError(404, f"No canary analysis {analysis_id!r}.")
        return page("analysis.html.jinja", viewer=v, active="canary", a=a, result=a.result)

    @router.get("/ui/canary/rollouts/{rollout_id}", response_class=HTMLResponse)
    async def rollout(request: Request, rollout_id: str = Path(max_length=NAME_MAX)) -> HTMLResponse:
        v = await gate.admin(request)
        r = await run_in_threadpool(rollouts.get, rollout_id)
        if r is None:
            raise ConsoleError(404, f"No canary rollout {rollout_id!r}.")
        a = await run_in_threadpool(deps.canary.get, r.analysis_id) if r.analysis_id else None
        history = await run_in_threadpool(read, lambda c: q.alias_history(c, r.alias, limit=200))
        history = [h for h in history if h.changed_at >= r.created_at]
        weights = (await run_in_threadpool(read, q.alias_weights)).get(r.alias, [])
        return page(
            "rollout.html.jinja",
            viewer=v,
            active="canary",
            r=r,
            a=a,
            history=history,
            weights=weights,
            chart=weight_chart(history, r.canary),
            actions=ACTIONS,
        )

    @router.post("/ui/canary/rollouts/{rollout_id}/{action}", response_model=None)
    async def act(
        request: Request, rollout_id: str = Path(max_length=NAME_MAX), action: str = Path(max_length=10)
    ) -> Response:
        v, _ = await gate.post(request, admin=True)
        if action not in ACTIONS:
            raise ConsoleError(404, f"A rollout can be {', '.join(ACTIONS)}d, not {action!r}.")
        try:
            await run_in_threadpool(lambda: getattr(rollouts, action)(rollout_id, by=v.actor))
        except RolloutError as exc:
            raise ConsoleError(exc.status, str(exc)) from exc
        return back(f"/ui/canary/rollouts/{rollout_id}")

    @router.post("/ui/canary/aliases/{alias}/rollback", response_model=None)
    async def rollback(request: Request, alias: str = Path(max_length=NAME_MAX)) -> Response:
        v, fields = await gate.post(request, admin=True)
        try:
            await deps.rollback_alias(alias, v.actor)
        except LookupError as exc:
            raise ConsoleError(409, str(exc)) from exc
        after = fields.get("next", "")
        return back(after if after.startswith("/ui/") else "/ui/canary")
