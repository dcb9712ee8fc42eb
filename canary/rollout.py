"""Progressive rollout of a new version behind an alias, with automatic rollback.

A rollout walks the canary's share of traffic through `steps` (percent; default 1, 5, 25, 50,
100). Each step below 100 % runs a live canary analysis from the moment its weights are set:

- fail or marginal (decided): roll back at once: canary weight 0, baseline 100, event
  `rolled_back`, notification.
- pass (decided), once the step has run `min_step_s` and the canary has `min_step_samples`
  samples: promote to the next step (a pass seen with fewer samples is not final: the step's
  analysis keeps collecting until it has them); after the last step below 100 %, the rollout is
  `promoted` (canary 100, baseline 0).
- no decision by `max_step_s` (the analysis' deadline), or too few samples by then:
  `on_inconclusive`: "pause" (a person decides; resume restarts the step) or "rollback".

Weights are written with `GovernanceStore.set_alias`, in the database every gateway replica
routes by. Everything is in the database (rollout row, events, the step's analysis with its
sequential state), and `tick()` only reads it and acts, so it is safe to run again after a
restart and from several replicas at once: every change of a rollout row is conditional on the
`revision` it read, and only the tick that wins writes events and notifies. A running
rollout's weights are re-applied on each tick if they differ from its step's (a crash between
the row update and the weight write heals itself); terminal weights are written before the row
changes state for the same reason.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Protocol, cast

import httpx
from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from canary.analysis import Analysis, jsonable
from canary.analysis import iso as _iso
from canary.config import Profile, get_profile
from ledger import audit
from ledger.governance import VersionTarget
from ledger.models import CanaryRolloutEvent, CanaryRolloutRow

log = logging.getLogger(__name__)

DEFAULT_STEPS: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 100.0)
STATES = ("running", "paused", "promoted", "rolled_back", "aborted")
ACTIVE = ("running", "paused")


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Rollout:
    id: str
    alias: str
    baseline: str
    canary: str
    profile: dict[str, Any]
    steps: list[float]
    current_step: int
    step_started_at: datetime
    min_step_s: float
    min_step_samples: int
    max_step_s: float
    on_inconclusive: str
    notify_url: str | None
    analysis_id: str | None
    state: str
    revision: int
    created_at: datetime
    updated_at: datetime
    events: tuple[Event, ...] = field(default=())

    @classmethod
    def of(cls, row: CanaryRolloutRow, events: Sequence[Event] = ()) -> "Rollout":
        names = [f for f in cls.__dataclass_fields__ if f != "events"]
        return cls(**{f: getattr(row, f) for f in names}, events=tuple(events))

    @property
    def percent(self) -> float:
        """The canary's current share of traffic, percent."""
        if self.state == "promoted":
            return 100.0
        if self.state in ("rolled_back", "aborted"):
            return 0.0
        return float(self.steps[self.current_step])

    def to_dict(self, analysis: Analysis | None = None) -> dict[str, Any]:
        view: dict[str, Any] = jsonable(
            {
                "id": self.id,
                "object": "canary.rollout",
                "alias": self.alias,
                "baseline": self.baseline,
                "canary": self.canary,
                "profile": self.profile.get("name"),
                "steps": self.steps,
                "current_step": self.current_step,
                "canary_percent": self.percent,
                "state": self.state,
                "step_started_at": _iso(self.step_started_at),
                "min_step_s": self.min_step_s,
                "min_step_samples": self.min_step_samples,
                "max_step_s": self.max_step_s,
                "on_inconclusive": self.on_inconclusive,
                "analysis_id": self.analysis_id,
                "analysis": analysis.to_dict() if analysis is not None else None,
                "created_at": _iso(self.created_at),
                "updated_at": _iso(self.updated_at),
                "events": [e.to_dict() for e in self.events],
            }
        )
        return view


def weights(baseline: str, canary: str, percent: float) -> list[VersionTarget]:
    return [
        VersionTarget(version=baseline, weight=100.0 - percent),
        VersionTarget(version=canary, weight=float(percent)),
    ]


def _same(a: Sequence[VersionTarget] | None, b: Sequence[VersionTarget]) -> bool:
    if a is None:
        return False

    def norm(ts: Sequence[VersionTarget]) -> list[tuple[str, float]]:
        return sorted((t.version, round(t.weight, 9)) for t in ts if t.weight > 0)

    return norm(a) == norm(b)


def post_webhook(url: str, payload: dict[str, Any]) -> None:
    httpx.post(url, json=payload, timeout=5.0).raise_for_status()


class RolloutError(ValueError):
    def __init__(self, message: str, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Analyses(Protocol):
    """What the controller needs of the canary service (which builds it): its database and
    clock, and each step's live analysis."""

    engine: Engine
    clock: Callable[[], datetime]

    def get(self, analysis_id: str) -> Analysis | None: ...

    def poll(self, analysis: Analysis | str, *, final: bool = False) -> Analysis: ...

    def create(
        self,
        alias: str,
        baseline: str,
        canary: str,
        profile: str | Profile | Mapping[str, Any] = "default-llm",
        *,
        mode: str = "fixed",
        window_minutes: float | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        deadline_minutes: float | None = None,
        deadline: datetime | None = None,
        rollout_id: str | None = None,
        step: int | None = None,
        analysis_id: str | None = None,
        min_canary_samples: int = 0,
    ) -> Analysis: ...


class RolloutController:
    def __init__(
        self,
        service: Analyses,
        store: Any,
        *,
        notify_urls: Sequence[str] = (),
        notify: Callable[[str, dict[str, Any]], None] | None = None,
        known_versions: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.service = service
        self.known_versions = known_versions
        self.store = store  # GovernanceStore (aliases / set_alias)
        self.notify_urls = list(notify_urls)
        self._notify = notify or post_webhook

    @property
    def engine(self) -> Engine:
        return self.service.engine

    def now(self) -> datetime:
        return self.service.clock()

    # ---- read ----------------------------------------------------------------------------
    def get(self, rollout_id: str) -> Rollout | None:
        with Session(self.engine) as s:
            row = s.get(CanaryRolloutRow, rollout_id)
            if row is None:
                return None
            return Rollout.of(row, self._events(s, rollout_id))

    def list(
        self, *, alias: str | None = None, states: Sequence[str] | None = None, limit: int = 100
    ) -> builtins.list[Rollout]:
        stmt = select(CanaryRolloutRow).order_by(CanaryRolloutRow.created_at.desc()).limit(limit)
        if alias is not None:
            stmt = stmt.where(CanaryRolloutRow.alias == alias)
        if states:
            stmt = stmt.where(CanaryRolloutRow.state.in_(list(states)))
        with Session(self.engine) as s:
            return [Rollout.of(r, self._events(s, r.id)) for r in s.scalars(stmt)]

    def events(self, rollout_id: str) -> builtins.list[Event]:
        with Session(self.engine) as s:
            return self._events(s, rollout_id)

    @staticmethod
    def _events(s: Session, rollout_id: str) -> builtins.list[Event]:
        rows = s.scalars(
            select(CanaryRolloutEvent)
            .where(CanaryRolloutEvent.rollout_id == rollout_id)
            .order_by(CanaryRolloutEvent.id)
        )
        return [Event(r.at, r.kind, r.detail or {}) for r in rows]

    # ---- start ---------------------------------------------------------------------------
    def start(
        self,
        alias: str,
        baseline: str,
        canary: str,
        profile: "str | Profile | Mapping[str, Any]" = "default-llm",
        *,
        steps: Sequence[float] = DEFAULT_STEPS,
        min_step_s: float = 300.0,
        min_step_samples: int = 200,
        max_step_s: float = 3600.0,
        on_inconclusive: str = "pause",
        notify_url: str | None = None,
        by: str | None = None,
    ) -> Rollout:
        if not alias or not baseline or not canary or baseline == canary:
            raise RolloutError("alias, and two different versions (baseline, canary), are required")
        try:
            prof = get_profile(profile)
        except (KeyError, ValueError, TypeError) as e:
            raise RolloutError(str(e).strip('"'), "invalid_profile") from None
        plan = [float(p) for p in steps]
        if not plan or any(not 0 < p <= 100 for p in plan) or any(b <= a for a, b in pairwise(plan)):
            raise RolloutError("steps must be increasing percentages in (0, 100]")
        if plan[-1] != 100.0:
            plan.append(100.0)
        if len(plan) < 2:
            raise RolloutError("steps need at least one step below 100 %")
        if min_step_s < 0 or min_step_samples < 0 or max_step_s <= 0 or max_step_s < min_step_s:
            raise RolloutError("need 0 <= min_step_s <= max_step_s, max_step_s > 0 and min_step_samples >= 0")
        if on_inconclusive not in ("pause", "rollback"):
            raise RolloutError("on_inconclusive must be 'pause' or 'rollback'")
        if self.known_versions is not None:
            unknown = sorted({baseline, canary} - set(self.known_versions()))
            if unknown:
                raise RolloutError(
                    f"the gateway has no upstream for version(s) {', '.join(unknown)}", "unknown_version"
                )
        if self.list(alias=alias, states=ACTIVE):
            raise RolloutError(f"alias {alias!r} already has an active rollout", "rollout_conflict", 409)
        now = self.now()
        rid = "ro_" + uuid.uuid4().hex[:24]
        analysis_id = self._new_analysis_id()
        row = CanaryRolloutRow(
            id=rid,
            alias=alias,
            baseline=baseline,
            canary=canary,
            profile=prof.to_dict(),
            steps=plan,
            current_step=0,
            step_started_at=now,
            min_step_s=float(min_step_s),
            min_step_samples=int(min_step_samples),
            max_step_s=float(max_step_s),
            on_inconclusive=on_inconclusive,
            notify_url=notify_url,
            analysis_id=analysis_id,
            state="running",
            revision=0,
            created_at=now,
            updated_at=now,
        )
        with Session(self.engine) as s, s.begin():
            s.add(row)
            s.add(
                CanaryRolloutEvent(
                    rollout_id=rid,
                    at=now,
                    kind="started",
                    detail={"baseline": baseline, "canary": canary, "steps": plan, "profile": prof.name},
                )
            )
            s.add(
                CanaryRolloutEvent(
                    rollout_id=rid,
                    at=now,
                    kind="step",
                    detail={"step": 0, "percent": plan[0], "analysis_id": analysis_id},
                )
            )
            s.flush()
            audit.append(
                s,
                actor=by or "system",
                action="rollout.started",
                target=rid,
                after={"alias": alias, "baseline": baseline, "canary": canary, "steps": plan, "profile": prof.name},
            )
        r = self.get(rid)
        assert r is not None
        self._step_analysis(r)
        self.store.set_alias(alias, weights(baseline, canary, plan[0]))
        return r

    # ---- operator actions ----------------------------------------------------------------
    def pause(self, rollout_id: str, *, by: str | None = None) -> Rollout:
        r = self._require(rollout_id)
        if r.state != "running":
            raise RolloutError(f"rollout {rollout_id} is {r.state}, not running", "rollout_state", 409)
        self._transition(r, {"state": "paused"}, "paused", {"by": by, "step": r.current_step, "percent": r.percent})
        return self._require(rollout_id)

    def resume(self, rollout_id: str, *, by: str | None = None) -> Rollout:
        """Resume a paused rollout: its current step starts over, with a fresh analysis."""
        r = self._require(rollout_id)
        if r.state != "paused":
            raise RolloutError(f"rollout {rollout_id} is {r.state}, not paused", "rollout_state", 409)
        now = self.now()
        analysis_id = self._new_analysis_id()
        if self._transition(
            r,
            {"state": "running", "step_started_at": now, "analysis_id": analysis_id},
            "resumed",
            {"by": by, "step": r.current_step, "percent": r.percent, "analysis_id": analysis_id},
        ):
            self._finish_analysis(r)  # the paused step's analysis is closed, not left running
            r = self._require(rollout_id)
            self._step_analysis(r)
            self.store.set_alias(r.alias, weights(r.baseline, r.canary, r.percent))
        return self._require(rollout_id)

    def abort(self, rollout_id: str, *, by: str | None = None) -> Rollout:
        """Stop the rollout and send all traffic back to the baseline."""
        r = self._require(rollout_id)
        if r.state not in ACTIVE:
            raise RolloutError(f"rollout {rollout_id} is already {r.state}", "rollout_state", 409)
        self.store.set_alias(r.alias, weights(r.baseline, r.canary, 0.0))
        detail = {"by": by, "step": r.current_step, "percent": r.percent}
        if self._transition(r, {"state": "aborted"}, "aborted", detail):
            self._finish_analysis(r)
            self._send(r, "aborted", detail)
        return self._require(rollout_id)

    # ---- the scheduled step --------------------------------------------------------------
    def tick(self) -> builtins.list[Rollout]:
        """Advance every running rollout once; returns them as they are afterwards."""
        out = []
        for r in self.list(states=("running",), limit=10_000):
            try:
                self.advance(r)
            except Exception:
                log.exception("canary rollout %s: tick failed", r.id)
            fresh = self.get(r.id)
            if fresh is not None:
                out.append(fresh)
        return out

    def advance(self, r: Rollout) -> None:
        if r.state != "running":
            return
        target = weights(r.baseline, r.canary, r.percent)
        if not _same(self.store.aliases().get(r.alias), target):
            self.store.set_alias(r.alias, target)
        a = self.service.get(r.analysis_id) if r.analysis_id else None
        if a is None:  # the step's analysis was not written (crash right after the row update)
            a = self._step_analysis(r)
        a = self.service.poll(a)
        result = a.judge_result
        now = self.now()
        elapsed = (now - r.step_started_at).total_seconds()
        n = result.canary_samples if result is not None else 0
        info = {
            "step": r.current_step,
            "percent": r.percent,
            "analysis_id": a.id,
            "verdict": a.verdict,
            "score": result.score if result else None,
            "reason": result.reason if result else None,
            "canary_samples": n,
            "elapsed_s": round(elapsed, 3),
        }
        if result is None or not a.done:  # the analysis finishes itself at the step's deadline
            return
        if a.verdict in ("fail", "marginal"):
            self._rollback(r, info)
        elif a.verdict == "pass":
            if elapsed >= r.min_step_s and n >= r.min_step_samples:
                self._promote(r, info)
            elif elapsed >= r.max_step_s:
                self._inconclusive(
                    r, {**info, "reason": f"passed with {n} canary samples, fewer than {r.min_step_samples}"}
                )
        else:  # inconclusive at the deadline
            self._inconclusive(r, info)

    # ---- transitions ---------------------------------------------------------------------
    def _promote(self, r: Rollout, info: dict[str, Any]) -> None:
        nxt = r.current_step + 1
        if nxt >= len(r.steps) - 1:  # the next step is 100 %: done
            self.store.set_alias(r.alias, weights(r.baseline, r.canary, 100.0))
            if self._transition(r, {"state": "promoted"}, "promoted", info):
                self._send(r, "promoted", info)
            return
        now = self.now()
        analysis_id = self._new_analysis_id()
        detail = {
            **info,
            "step": nxt,
            "percent": r.steps[nxt],
            "analysis_id": analysis_id,
            "previous_analysis_id": info["analysis_id"],
        }
        if self._transition(
            r, {"current_step": nxt, "step_started_at": now, "analysis_id": analysis_id}, "step", detail
        ):
            fresh = self._require(r.id)
            self._step_analysis(fresh)
            self.store.set_alias(r.alias, weights(r.baseline, r.canary, fresh.percent))

    def _rollback(self, r: Rollout, info: dict[str, Any]) -> None:
        self.store.set_alias(r.alias, weights(r.baseline, r.canary, 0.0))
        if self._transition(r, {"state": "rolled_back"}, "rolled_back", info):
            self._send(r, "rolled_back", info)

    def _inconclusive(self, r: Rollout, info: dict[str, Any]) -> None:
        if r.on_inconclusive == "rollback":
            self._rollback(r, info)
        elif self._transition(r, {"state": "paused"}, "paused", {**info, "by": "controller"}):
            self._send(r, "paused", info)

    def _transition(self, r: Rollout, values: dict[str, Any], kind: str, detail: dict[str, Any]) -> bool:
        """Apply `values` if nobody changed the rollout since `r` was read; record the event in
        the same transaction. False when another tick or operator got there first."""
        now = self.now()
        with Session(self.engine) as s, s.begin():
            n = cast(
                CursorResult[Any],
                s.execute(
                    update(CanaryRolloutRow)
                    .where(CanaryRolloutRow.id == r.id, CanaryRolloutRow.revision == r.revision)
                    .values(**values, revision=r.revision + 1, updated_at=now)
                ),
            ).rowcount
            if n:
                s.add(CanaryRolloutEvent(rollout_id=r.id, at=now, kind=kind, detail=jsonable(detail)))
                s.flush()
                audit.append(
                    s,
                    actor=detail.get("by") or "system",
                    action=f"rollout.{kind}",
                    target=r.id,
                    before={"state": r.state, "step": r.current_step, "percent": r.percent},
                    after={**jsonable(values), "why": jsonable(detail)},
                )  # verdict, score and reason of a step
        if n:
            log.info("canary rollout %s (%s -> %s): %s %s", r.id, r.baseline, r.canary, kind, detail)
        return bool(n)

    def _require(self, rollout_id: str) -> Rollout:
        r = self.get(rollout_id)
        if r is None:
            raise RolloutError(f"no canary rollout {rollout_id!r}", "rollout_not_found", 404)
        return r

    @staticmethod
    def _new_analysis_id() -> str:
        return "ca_" + uuid.uuid4().hex[:24]

    def _step_analysis(self, r: Rollout) -> Analysis:
        """The live analysis of the rollout's current step (created under the id the row names)."""
        existing = self.service.get(r.analysis_id) if r.analysis_id else None
        if existing is not None:
            return existing
        try:
            return self.service.create(
                r.alias,
                r.baseline,
                r.canary,
                r.profile,
                mode="live",
                start=r.step_started_at,
                deadline=r.step_started_at + timedelta(seconds=r.max_step_s),
                rollout_id=r.id,
                step=r.current_step,
                analysis_id=r.analysis_id,
                min_canary_samples=r.min_step_samples,
            )
        except IntegrityError:  # the scheduler's tick and an operator's call both found none: the other one won
            won = self.service.get(r.analysis_id) if r.analysis_id else None
            if won is None:
                raise
            return won

    def _finish_analysis(self, r: Rollout) -> None:
        try:
            if r.analysis_id and self.service.get(r.analysis_id) is not None:
                self.service.poll(r.analysis_id, final=True)
        except Exception:
            log.exception("canary rollout %s: could not finish its analysis", r.id)

    def _send(self, r: Rollout, kind: str, detail: dict[str, Any]) -> None:
        urls = [*self.notify_urls, *([r.notify_url] if r.notify_url else [])]
        payload = jsonable(
            {
                "type": f"canary.rollout.{kind}",
                "rollout_id": r.id,
                "alias": r.alias,
                "baseline": r.baseline,
                "canary": r.canary,
                "at": _iso(self.now()),
                "detail": detail,
            }
        )
        for url in urls:
            try:
                self._notify(url, payload)
            except Exception as e:  # noqa: BLE001 - a webhook never stops a rollback
                log.warning("canary rollout %s: webhook %s failed: %s", r.id, url, e)
