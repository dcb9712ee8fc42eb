from __future__ import annotations

from pathlib import Path
from typing import Any

from canary.jobs import JOB_ID, register_canary_jobs
from canary.service import CanaryService
from ledger.db import create_engine_for, migrate
from tests.canary._ledger import FakeClock


class FakeScheduler:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[Any, dict[str, Any]]] = {}

    def add_job(self, fn: Any, trigger: str, **kw: Any) -> str:
        self.jobs[kw["id"]] = (fn, {"trigger": trigger, **kw})
        return kw["id"]


def test_the_job_polls_analyses_and_ticks_rollouts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    migrate(url)
    engine = create_engine_for(url)
    clock = FakeClock()
    svc = CanaryService(engine, clock=clock, ingest_lag_s=0, notify=lambda u, p: None)
    a = svc.create("chat", "v1", "v2", "latency-only", mode="live", deadline_minutes=1)
    r = svc.rollouts.start("other", "v1", "v2", "latency-only", min_step_s=0, max_step_s=30)
    sched = FakeScheduler()
    register_canary_jobs(sched, svc, interval_s=5)
    fn, kw = sched.jobs[JOB_ID]
    assert kw["trigger"] == "interval" and kw["seconds"] == 5 and kw["max_instances"] == 1
    clock.advance(61)
    fn()
    assert svc.get(a.id).done
    assert svc.rollouts.get(r.id).state != "running"  # no data at all by the step's deadline: the judge fails it
    engine.dispose()
