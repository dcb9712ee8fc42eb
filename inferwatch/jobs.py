"""Scheduled jobs of the platform, in one in-process APScheduler."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ledger.queries import purge_raw_rows

from .settings import Settings

log = logging.getLogger("inferwatch")


def purge_old_rows(engine: Engine, retention_days: int) -> int:
    """Delete raw request rows older than the retention; minute rollups are kept."""
    cutoff = datetime.now(timezone.utc) - timedelta(days=retention_days)
    with Session(engine) as s, s.begin():
        n = purge_raw_rows(s, cutoff)
    if n:
        log.info("retention: deleted %d raw request rows older than %s", n, cutoff.isoformat())
    return n


def build_scheduler(settings: Settings, engine: Engine) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    if settings.retention_days:
        scheduler.add_job(
            purge_old_rows,
            "interval",
            hours=1,
            args=[engine, settings.retention_days],
            id="ledger-retention",
            next_run_time=datetime.now(timezone.utc) + timedelta(minutes=1),
        )
    return scheduler
