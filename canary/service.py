"""Canary analyses kept in the ledger database.

- fixed: one `judge()` look at a window [start, end) of ledger rows, as soon as the window is
  over (and `ingest_lag_s` has passed, so rows the ledger writer still batches are in).
- live: a `SequentialAnalysis` fed by `poll()` with the rows that started since the last poll,
  until it is decided or its deadline passes (then `finish()`). Its state is stored after every
  poll, so a restart continues the same test rather than starting a second one.

Samples are read from raw request rows (with their safety hits) and turned into metric values
by `canary.samples.samples_from_records`, the one definition of each metric. A poll reads rows
with `cursor <= started_at < now - ingest_lag_s`: a request is written when it ends, so the lag
must exceed the longest request plus the writer's delay for every row to be seen once.

Concurrent pollers (several app replicas, each with its scheduler) are safe: each row carries a
`revision`, and a poll's write only lands if nobody else wrote since it read.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.orm import Session

from canary.analysis import Analysis
from canary.config import Profile, get_profile
from canary.judge import SequentialAnalysis, judge
from canary.samples import samples_from_records
from ledger.governance import GovernanceStore
from ledger.models import CanaryAnalysisRow, Request, SafetyHitRow
from ledger.record import RequestRecord, SafetyHit
from ledger.store import RECORD_COLUMNS

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_CHUNK = 500


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CanaryError(ValueError):
    """A request the service cannot honour (bad input or unknown id); `status` for the API."""

    def __init__(self, message: str, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class CanaryService:
    """Create, poll and read canary analyses; `rollouts` is the rollout controller on top."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utcnow,
        ingest_lag_s: float = 30.0,
        store: Any = None,
        notify_urls: Sequence[str] = (),
        notify: Callable[[str, dict[str, Any]], None] | None = None,
        known_versions: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        """store: the `GovernanceStore` whose alias weights rollouts write (default: one on
        `engine`); notify_urls / notify: rollout webhooks and how to post them; known_versions:
        the versions the gateway can route to (rollouts of other versions are refused)."""
        from canary.rollout import RolloutController  # the controller builds on this service

        self.engine = engine
        self.clock = clock
        self.ingest_lag_s = ingest_lag_s
        if store is None:
            store = GovernanceStore(engine)
        self.rollouts = RolloutController(
            self, store, notify_urls=notify_urls, notify=notify, known_versions=known_versions
        )

    # ---- create --------------------------------------------------------------------------
    def create(
        self,
        alias: str,
        baseline: str,
        canary: str,
        profile: "str | Profile | Mapping[str, Any]" = "default-llm",
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
    ) -> Analysis:
        """A new analysis. fixed: the window [start, end) (default: the last `window_minutes`,
        judged right away when the window is over); live: from now (or `start`) until decided
        or the deadline (`deadline` or now + `deadline_minutes`); a live pass is final only with
        `min_canary_samples` canary samples (before that it keeps collecting)."""
        if not alias or not baseline or not canary:
            raise CanaryError("alias, baseline and canary are required")
        if baseline == canary:
            raise CanaryError("baseline and canary must be different versions")
        try:
            prof = get_profile(profile)
        except (KeyError, ValueError, TypeError) as e:
            raise CanaryError(str(e).strip('"'), "invalid_profile") from None
        now = self.clock()
        if mode == "fixed":
            if end is None:
                end = now
            if start is None:
                if window_minutes is None or window_minutes <= 0:
                    raise CanaryError("a fixed analysis needs window_minutes > 0 (or start and end)")
                start = end - timedelta(minutes=window_minutes)
            if start >= end:
                raise CanaryError("the window's start must be before its end")
            deadline = None
        elif mode == "live":
            start = start or now
            if deadline is None:
                if deadline_minutes is None or deadline_minutes <= 0:
                    raise CanaryError("a live analysis needs deadline_minutes > 0")
                deadline = now + timedelta(minutes=deadline_minutes)
            if deadline <= start:
                raise CanaryError("the deadline must be after the start")
            end = None
        else:
            raise CanaryError("mode must be 'fixed' or 'live'")
        row = CanaryAnalysisRow(
            id=analysis_id or "ca_" + uuid.uuid4().hex[:24],
            alias=alias,
            baseline=baseline,
            canary=canary,
            profile=prof.to_dict(),
            mode=mode,
            window_start=start,
            window_end=end,
            deadline=deadline,
            cursor=start,
            status="running",
            state=SequentialAnalysis(prof, min_canary_samples=min_canary_samples).state_dict()
            if mode == "live"
            else None,
            rollout_id=rollout_id,
            step=step,
            revision=0,
            created_at=now,
            updated_at=now,
        )
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            s.add(row)
        analysis = Analysis.of(row)
        if mode == "fixed":
            analysis = self.poll(analysis)
        return analysis

    # ---- read ----------------------------------------------------------------------------
    def get(self, analysis_id: str) -> Analysis | None:
        with Session(self.engine) as s:
            row = s.get(CanaryAnalysisRow, analysis_id)
            return Analysis.of(row) if row is not None else None

    def list(
        self, *, status: str | None = None, alias: str | None = None, standalone: bool = False, limit: int = 100
    ) -> builtins.list[Analysis]:
        stmt = select(CanaryAnalysisRow).order_by(CanaryAnalysisRow.created_at.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(CanaryAnalysisRow.status == status)
        if alias is not None:
            stmt = stmt.where(CanaryAnalysisRow.alias == alias)
        if standalone:
            stmt = stmt.where(CanaryAnalysisRow.rollout_id.is_(None))
        with Session(self.engine) as s:
            return [Analysis.of(r) for r in s.scalars(stmt)]

    # ---- samples -------------------------------------------------------------------------
    def records(self, alias: str | None, version: str, start: datetime, end: datetime) -> builtins.list[RequestRecord]:
        """Ledger records of `version` (behind `alias`) that started in [start, end)."""
        cols = [getattr(Request, c) for c in RECORD_COLUMNS]
        stmt = (
            select(*cols)
            .where(Request.model_version == version, Request.started_at >= start, Request.started_at < end)
            .order_by(Request.started_at)
        )
        if alias is not None:
            stmt = stmt.where(Request.alias == alias)
        with Session(self.engine) as s:
            recs = [RequestRecord(**dict(zip(RECORD_COLUMNS, row, strict=True))) for row in s.execute(stmt)]
            by_id = {r.request_id: r for r in recs}
            ids = list(by_id)
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                hits = s.execute(
                    select(
                        SafetyHitRow.request_id,
                        SafetyHitRow.direction,
                        SafetyHitRow.category,
                        SafetyHitRow.scanner,
                        SafetyHitRow.action,
                        SafetyHitRow.score,
                    ).where(SafetyHitRow.request_id.in_(chunk))
                )
                for rid, direction, category, scanner, action, score in hits:
                    by_id[rid].safety.append(SafetyHit(direction, category, scanner, action, score))
        return recs

    def samples(self, a: Analysis, start: datetime, end: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            samples_from_records(self.records(a.alias, a.baseline, start, end)),
            samples_from_records(self.records(a.alias, a.canary, start, end)),
        )

    # ---- poll ----------------------------------------------------------------------------
    def poll(self, analysis: Analysis | str, *, final: bool = False) -> Analysis:
        """Advance an analysis: judge a fixed window once it is over; feed a live one the rows
        that arrived since the last poll (finishing it at the deadline, or now with `final`).
        A decided analysis is returned as it is."""
        a = self.get(analysis) if isinstance(analysis, str) else analysis
        if a is None:
            raise CanaryError(f"no canary analysis {analysis!r}", "analysis_not_found", 404)
        if a.done:
            return a
        now = self.clock()
        horizon = now - timedelta(seconds=self.ingest_lag_s)  # rows before this are all written
        values: dict[str, Any] = {}
        if a.mode == "fixed":
            assert a.window_end is not None
            if horizon < a.window_end and not final:
                return a
            result = judge(*self.samples(a, a.window_start, a.window_end), a.profile)
            values = {
                "status": "done",
                "verdict": result.verdict.value,
                "result": result.to_dict(),
                "cursor": a.window_end,
            }
        else:
            analysis_ = SequentialAnalysis.from_state(a.state) if a.state else SequentialAnalysis(a.profile)
            upto = horizon if a.deadline is None else min(horizon, a.deadline)
            upto = max(upto, a.cursor)
            base, can = self.samples(a, a.cursor, upto)
            result = analysis_.update(base, can)
            over = a.deadline is not None and horizon >= a.deadline
            if not result.decided and (over or final):
                result = analysis_.finish()
            values = {
                "cursor": upto,
                "state": analysis_.state_dict(),
                "result": result.to_dict(),
                "verdict": result.verdict.value,
                "status": "done" if result.decided else "running",
            }
        values.update(revision=a.revision + 1, updated_at=now)
        with Session(self.engine) as s, s.begin():
            n = cast(
                CursorResult[Any],
                s.execute(
                    update(CanaryAnalysisRow)
                    .where(CanaryAnalysisRow.id == a.id, CanaryAnalysisRow.revision == a.revision)
                    .values(**values)
                ),
            ).rowcount
        if not n:  # another poller got there first: its write stands
            log.info("canary analysis %s was polled concurrently; keeping the other poll", a.id)
        fresh = self.get(a.id)
        assert fresh is not None
        return fresh

    def run_once(self) -> None:
        """The scheduled job's body: poll every running analysis not owned by a rollout, then
        let the rollout controller take its steps. Errors of one item do not stop the rest."""
        for a in self.list(status="running", standalone=True, limit=10_000):
            try:
                self.poll(a)
            except Exception:
                log.exception("canary analysis %s: poll failed", a.id)
        self.rollouts.tick()
