from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from slo.jobs import JOB_ID, register_slo_job
from slo.service import SLOService

from tests.slo._support import T0, outage, slos, write

NOW = T0 + timedelta(minutes=60)


class Counting(SLOService):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.ran = threading.Event()

    def run_once(self, now=None):
        out = super().run_once(now)
        self.ran.set()
        return out


def test_background_job_evaluates_records_and_updates_gauges(sqlite_engine: Engine) -> None:
    write(sqlite_engine, outage())
    reg = CollectorRegistry()
    svc = Counting(sqlite_engine, slos(), registry=reg, clock=lambda: NOW)
    sched = BackgroundScheduler(timezone="UTC")
    job = register_slo_job(sched, svc, interval_s=3600)
    assert (job.id, job.max_instances, job.coalesce) == (JOB_ID, 1, True)
    assert job.trigger.interval == timedelta(seconds=3600)
    sched.start()
    try:
        assert svc.ran.wait(30)
    finally:
        sched.shutdown(wait=True)
    assert reg.get_sample_value("slo_alert_firing", {"slo": "avail", "service": "svc", "severity": "page"}) == 1
    assert svc.history("avail")[0].evaluated_at == NOW  # recorded; not pruned by the retention


def test_asyncio_scheduler_runs_the_job_off_the_loop(sqlite_engine: Engine) -> None:
    write(sqlite_engine, outage())
    svc = Counting(sqlite_engine, slos(), clock=lambda: NOW)

    async def main() -> None:
        sched = AsyncIOScheduler(timezone="UTC")
        register_slo_job(sched, svc, interval_s=3600)
        sched.start()
        try:
            deadline = time.monotonic() + 30
            while not svc.ran.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            sched.shutdown(wait=False)

    asyncio.run(main())
    assert svc.ran.is_set() and svc.history("avail")[0].page


def test_register_replaces_the_job(sqlite_engine: Engine) -> None:
    svc = SLOService(sqlite_engine, slos())
    sched = BackgroundScheduler(timezone="UTC")
    sched.start(paused=True)  # replace_existing applies to jobs in the job store
    try:
        register_slo_job(sched, svc, interval_s=30)
        register_slo_job(sched, svc, interval_s=60)
        (job,) = sched.get_jobs()
        assert job.trigger.interval == timedelta(seconds=60)
    finally:
        sched.shutdown(wait=False)
