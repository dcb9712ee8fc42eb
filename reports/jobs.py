"""The weekly report job for an APScheduler 3.x scheduler."""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from reports.config import ReportsConfig
from reports.service import ReportService

log = logging.getLogger(__name__)

JOB_ID = "weekly-report"


def register_report_job(scheduler: Any, service: ReportService, config: ReportsConfig, *, job_id: str = JOB_ID) -> Any:
    """Add (or replace) the cron job that writes the last complete week's report and posts its
    summary to the webhooks, at `config.weekday` `config.hour:minute` UTC. Returns the
    APScheduler job, or None when `config.enabled` is false. A run that fails is logged; a run
    the scheduler could not start on time still runs within a day (a past week's report does
    not change)."""
    if not config.enabled:
        return None

    def run() -> None:
        try:
            service.run_weekly()
        except Exception:
            log.exception("weekly report failed")

    trigger = CronTrigger(day_of_week=config.weekday, hour=config.hour, minute=config.minute, timezone="UTC")
    return scheduler.add_job(
        run,
        trigger,
        id=job_id,
        name="weekly report",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=24 * 3600,
    )
