"""HTTP API of canary analyses and rollouts (for CI gates and the on-call).

    POST /v1/canary/analyses                 (admin) create; returns the id and the result so far
    GET  /v1/canary/analyses                 (admin) recent analyses
    GET  /v1/canary/analyses/{id}            (any key) the result so far (polls a live one first)
    POST /v1/canary/rollouts                 (admin) start a rollout
    GET  /v1/canary/rollouts[/{id}]          (admin) rollouts with their events
    POST /v1/canary/rollouts/{id}/pause|resume|abort   (admin)

Errors are OpenAI-format bodies (`inference.protocol.error_body`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from canary.config import MetricConfig, get_profile, replace_metrics
from canary.rollout import DEFAULT_STEPS, Rollout, RolloutError
from canary.service import CanaryError, CanaryService

Authenticate = Callable[[str | None], Awaitable[Any]]


class _Target(BaseModel):
    alias: str = Field(min_length=1)
    baseline: str = Field(min_length=1, description="the version serving now")
    canary: str = Field(min_length=1, description="the new version")
    profile: str | dict[str, Any] = Field("default-llm", description="a named profile or a full profile object")
    metrics: list[dict[str, Any]] | None = Field(None, description="metric configs replacing the profile's metrics")

    @field_validator("metrics")
    @classmethod
    def _each_metric_once(cls, metrics: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        names = [m.get("name") for m in metrics or []]
        repeat = next((n for i, n in enumerate(names) if n is not None and n in names[:i]), None)
        if repeat is not None:
            raise ValueError(f"metric {repeat} appears twice in metrics")
        return metrics

    def resolved_profile(self) -> Any:
        prof = get_profile(self.profile)
        if self.metrics is not None:
            prof = replace_metrics(prof, [MetricConfig.from_dict(m) for m in self.metrics])
        return prof


YEAR_MIN = 366 * 24 * 60  # bounds that keep datetimes and columns in range for absurd input


class AnalysisRequest(_Target):
    window_minutes: float | None = Field(None, gt=0, le=YEAR_MIN, description="fixed: judge the last N minutes")
    start: datetime | None = Field(None, description="fixed: window start (ISO 8601; naive is UTC)")
    end: datetime | None = Field(None, description="fixed: window end (default now)")
    live: bool = Field(False, description="live sequential analysis from now until decided or the deadline")
    deadline_minutes: float | None = Field(
        None, gt=0, le=YEAR_MIN, description="live: give up (inconclusive) after N minutes"
    )


class RolloutRequest(_Target):
    steps: list[float] = Field(default_factory=lambda: list(DEFAULT_STEPS), description="canary percent per step")
    min_step_s: float = Field(300.0, ge=0, le=YEAR_MIN * 60)
    min_step_samples: int = Field(200, ge=0, le=2**31 - 1)  # an INTEGER column
    max_step_s: float = Field(3600.0, gt=0, le=YEAR_MIN * 60)
    on_inconclusive: Literal["pause", "rollback"] = "pause"
    notify_url: str | None = None


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    from inference.protocol import error_body

    return JSONResponse(error_body(status, message, code), status_code=status)


def _from(e: CanaryError | RolloutError) -> JSONResponse:
    return _error(e.status, str(e), e.code)


def _utc(t: datetime | None) -> datetime | None:
    from datetime import timezone

    if t is None:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def build_canary_router(service: CanaryService, authenticate: Authenticate) -> APIRouter:
    """`authenticate(authorization_header)` raises on a bad key (its exception is the app's to
    render) and returns the caller (`is_admin`, `key_id`)."""
    router = APIRouter(tags=["canary"])
    rollouts = service.rollouts

    async def caller(request: Request, admin: bool) -> tuple[Any, JSONResponse | None]:
        who = await authenticate(request.headers.get("authorization"))
        if admin and not getattr(who, "is_admin", False):
            return who, _error(403, "This route needs an admin key.", "admin_required")
        return who, None

    def by(who: Any) -> str | None:
        return getattr(who, "key_id", None) or getattr(who, "tenant", None)

    def profile_of(body: _Target) -> tuple[Any, JSONResponse | None]:
        """The body's judge profile, or the 400 that names what is wrong with it."""
        try:
            return body.resolved_profile(), None
        except (KeyError, ValueError, TypeError) as e:
            return None, _error(400, f"Invalid profile: {str(e).strip(chr(34))}", "invalid_profile")

    # ---- analyses ------------------------------------------------------------------------
    @router.post("/v1/canary/analyses", response_model=None, status_code=201)
    async def create_analysis(request: Request, body: AnalysisRequest) -> JSONResponse:
        _, denied = await caller(request, admin=True)
        profile, invalid = profile_of(body)
        if problem := denied or invalid:
            return problem
        if body.live and (body.window_minutes is not None or body.start is not None or body.end is not None):
            return _error(400, "Give either a window (window_minutes or start/end) or live with deadline_minutes.")
        kw: dict[str, Any] = (
            {"mode": "live", "deadline_minutes": body.deadline_minutes}
            if body.live
            else {
                "mode": "fixed",
                "window_minutes": body.window_minutes,
                "start": _utc(body.start),
                "end": _utc(body.end),
            }
        )
        try:
            a = await run_in_threadpool(lambda: service.create(body.alias, body.baseline, body.canary, profile, **kw))
        except CanaryError as e:
            return _from(e)
        return JSONResponse(a.to_dict(), status_code=201)

    @router.get("/v1/canary/analyses", response_model=None)
    async def list_analyses(
        request: Request, alias: str | None = None, limit: int = Query(50, ge=1, le=1000)
    ) -> JSONResponse:
        _, denied = await caller(request, admin=True)
        if denied:
            return denied
        items = await run_in_threadpool(lambda: service.list(alias=alias, limit=limit))
        return JSONResponse({"object": "list", "data": [a.to_dict() for a in items]})

    @router.get("/v1/canary/analyses/{analysis_id}", response_model=None)
    async def get_analysis(request: Request, analysis_id: str) -> JSONResponse:
        await caller(request, admin=False)

        def load() -> Any:
            a = service.get(analysis_id)
            if a is not None and not a.done and a.rollout_id is None:
                a = service.poll(a)  # the result so far, without waiting for the scheduled job
            return a

        try:
            a = await run_in_threadpool(load)
        except CanaryError as e:
            return _from(e)
        if a is None:
            return _error(404, f"No canary analysis {analysis_id!r}.", "analysis_not_found")
        return JSONResponse(a.to_dict())

    # ---- rollouts ------------------------------------------------------------------------
    def rollout_body(r: Rollout) -> dict[str, Any]:
        a = service.get(r.analysis_id) if r.analysis_id else None
        return r.to_dict(a)

    @router.post("/v1/canary/rollouts", response_model=None, status_code=201)
    async def start_rollout(request: Request, body: RolloutRequest) -> JSONResponse:
        who, denied = await caller(request, admin=True)
        profile, invalid = profile_of(body)
        if problem := denied or invalid:
            return problem

        def start() -> dict[str, Any]:
            r = rollouts.start(
                body.alias,
                body.baseline,
                body.canary,
                profile,
                steps=body.steps,
                min_step_s=body.min_step_s,
                min_step_samples=body.min_step_samples,
                max_step_s=body.max_step_s,
                on_inconclusive=body.on_inconclusive,
                notify_url=body.notify_url,
                by=by(who),
            )
            return rollout_body(r)

        try:
            out = await run_in_threadpool(start)
        except RolloutError as e:
            return _from(e)
        return JSONResponse(out, status_code=201)

    @router.get("/v1/canary/rollouts", response_model=None)
    async def list_rollouts(
        request: Request, alias: str | None = None, state: str | None = None, limit: int = Query(50, ge=1, le=1000)
    ) -> JSONResponse:
        _, denied = await caller(request, admin=True)
        if denied:
            return denied
        states = [state] if state else None
        items = await run_in_threadpool(lambda: rollouts.list(alias=alias, states=states, limit=limit))
        return JSONResponse({"object": "list", "data": [r.to_dict() for r in items]})

    @router.get("/v1/canary/rollouts/{rollout_id}", response_model=None)
    async def get_rollout(request: Request, rollout_id: str) -> JSONResponse:
        _, denied = await caller(request, admin=True)
        if denied:
            return denied

        def load() -> dict[str, Any] | None:
            r = rollouts.get(rollout_id)
            return rollout_body(r) if r is not None else None

        out = await run_in_threadpool(load)
        if out is None:
            return _error(404, f"No canary rollout {rollout_id!r}.", "rollout_not_found")
        return JSONResponse(out)

    def action(name: str) -> Any:
        async def act(request: Request, rollout_id: str) -> JSONResponse:
            who, denied = await caller(request, admin=True)
            if denied:
                return denied
            fn = getattr(rollouts, name)
            try:
                out = await run_in_threadpool(lambda: rollout_body(fn(rollout_id, by=by(who))))
            except RolloutError as e:
                return _from(e)
            return JSONResponse(out)

        act.__name__ = f"{name}_rollout"
        return act

    for name in ("pause", "resume", "abort"):
        router.add_api_route(
            f"/v1/canary/rollouts/{{rollout_id}}/{name}",
            action(name),
            methods=["POST"],
            response_model=None,
            name=f"{name}_rollout",
        )

    return router
