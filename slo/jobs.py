"""The scheduled SLO job for an APScheduler 3.x scheduler (background or asyncio)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from slo.service import SLOService

log = logging.getLogger(__name__)

JOB_ID = "slo-evaluate"


def register_slo_job(
    scheduler: Any,
    service: SLOService,
    interval_s: float = 30,
    *,
    history_retention_days: float | None = 90,
    job_id: str = JOB_ID,
) -> Any:
    """Add (or replace) the job that evaluates every SLO, notifies, records history and updates
    the gauges every `interval_s` seconds, first right away. One run at a time; runs missed
    while one was busy collapse into one. History older than `history_retention_days` is
    pruned once a day (None keeps it). Returns the APScheduler job.

    The job is a plain function: a BackgroundScheduler runs it in its thread pool, an
    AsyncIOScheduler in the event loop's default executor, so the loop never waits on the
    database or a webhook."""
    state: dict[str, datetime | None] = {"pruned": None}

    def run() -> None:
        now = service.clock()
        service.run_once(now)
        last = state["pruned"]
        if history_retention_days is not None and (last is None or now - last >= timedelta(days=1)):
            state["pruned"] = now
            try:
                service.prune_history(now - timedelta(days=history_retention_days))
            except Exception as e:  # noqa: BLE001 - the next day tries again
                log.warning("SLO history not pruned: %s", e)

    return scheduler.add_job(
        run,
        "interval",
        seconds=interval_s,
        id=job_id,
        name="SLO evaluation",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,  # late is fine: the next run catches up
        next_run_time=datetime.now(timezone.utc),
    )
