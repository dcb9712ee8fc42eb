"""The scheduled canary job for an APScheduler 3.x scheduler (background or asyncio)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from canary.service import CanaryService

log = logging.getLogger(__name__)

JOB_ID = "canary-tick"


def register_canary_jobs(
    scheduler: Any, service: CanaryService, interval_s: float = 15, *, job_id: str = JOB_ID
) -> Any:
    """Add (or replace) the job that polls running live analyses and advances every running
    rollout (`CanaryService.run_once`) every `interval_s` seconds, first right away. One run at a
    time; missed runs collapse into one. Every step reads its state from the database, so the
    job is safe after a restart and on several replicas at once. Returns the APScheduler job."""

    def run() -> None:
        try:
            service.run_once()
        except Exception:
            log.exception("canary job failed")

    return scheduler.add_job(
        run,
        "interval",
        seconds=interval_s,
        id=job_id,
        name="canary analyses and rollouts",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(timezone.utc),
    )
