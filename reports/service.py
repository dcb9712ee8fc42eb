"""ReportService: builds, writes, lists and announces the weekly reports.

Files are `weekly-<ISO week>.<html|md|json>` in one folder, written atomically (a reader never
sees half a report) and replaced when a week's report is written again.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from reports import render
from reports.config import FORMATS, ReportsConfig
from reports.cache_section import MissCost
from reports.data import BudgetsOf, build_report
from reports.model import WeeklyReport
from reports.weeks import Week
from slo.model import SLO

log = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^weekly-(\d{4}-W\d{2})\.(html|md|json)$")


@dataclass(frozen=True)
class ReportFile:
    name: str
    week: str
    format: str
    path: Path
    size: int
    modified_at: datetime

    @property
    def media_type(self) -> str:
        return render.MEDIA_TYPES[self.format]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "week": self.week,
            "format": self.format,
            "bytes": self.size,
            "modified_at": self.modified_at.isoformat(),
            "url": f"/v1/reports/{self.name}",
        }


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ReportService:
    def __init__(
        self,
        engine: Engine,
        config: ReportsConfig,
        directory: Path,
        slos: Sequence[SLO] = (),
        *,
        budgets: BudgetsOf | None = None,
        cache_enabled: bool = False,
        miss_cost: MissCost | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """`directory`: where reports go (`config.directory(data_dir)`). `budgets`: the budget
        lines of a week's span, from the budgets' owner (without it the report says none are
        configured). `cache_enabled` and `miss_cost` (what a request would have cost without
        the cache): from the gateway's settings; see `reports.data.build_report`.
        `inferwatch.report_inputs.report_inputs` gives all three."""
        self.engine = engine
        self.config = config
        self.directory = directory
        self.slos = list(slos)
        self.budgets = budgets
        self.cache_enabled = cache_enabled
        self.miss_cost = miss_cost
        self.clock = clock

    def build(self, week: Week | None = None) -> WeeklyReport:
        """The report of `week` (default: the last complete week); raises
        `reports.data.WeekNotStarted` for a week in the future."""
        now = self.clock()
        week = week or Week.last_complete(now)
        return build_report(
            self.engine,
            week,
            now=now,
            slos=self.slos,
            config=self.config,
            budgets=self.budgets,
            cache_enabled=self.cache_enabled,
            miss_cost=self.miss_cost,
        )

    def write(
        self, report: WeeklyReport, formats: Sequence[str] | None = None, directory: Path | None = None
    ) -> list[Path]:
        """Write the report in each format; returns the paths."""
        out = directory or self.directory
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt in formats or self.config.formats:
            if fmt not in FORMATS:
                raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
            path = out / f"{report.basename}.{fmt}"
            _write_atomic(path, render.render(report, fmt))
            paths.append(path)
        return paths

    def run_weekly(self) -> list[Path]:
        """The scheduled job's body: write the last complete week's report and post its
        summary to the webhooks (a failing webhook is logged)."""
        report = self.build()
        paths = self.write(report)
        log.info("weekly report %s written: %s", report.week, ", ".join(p.name for p in paths))
        self.announce(report, paths)
        return paths

    def announce(self, report: WeeklyReport, paths: Sequence[Path]) -> dict[str, bool]:
        """POST the summary to every webhook; returns whether each accepted it."""
        if not self.config.webhooks:
            return {}
        payload = {
            "text": render.summary(report),
            "week": report.week,
            "partial": report.partial,
            "cost_usd": report.totals.cost_usd,
            "cost_change": report.totals.cost_change,
            "requests": report.totals.requests,
            "anomalies": len(report.cost.anomalies),
            "safety_hits": report.safety.hits_total,
            "slos_missed": [s.id for s in report.reliability.slos if s.status == "missed"],
            "files": [f"/v1/reports/{p.name}" for p in paths],
        }
        results = {}
        with httpx.Client(timeout=self.config.webhook_timeout_s) as client:
            for url in self.config.webhooks:
                try:
                    client.post(url, json=payload).raise_for_status()
                    results[url] = True
                except httpx.HTTPError as e:
                    log.warning("weekly report webhook %s failed: %s: %s", url, type(e).__name__, e)
                    results[url] = False
        return results

    def list(self) -> list[ReportFile]:
        """The reports in the folder, newest week first."""
        if not self.directory.is_dir():
            return []
        found = [f for f in (self._file(p) for p in self.directory.iterdir()) if f is not None]
        return sorted(found, key=lambda f: (f.week, f.format), reverse=True)

    def find(self, name: str) -> ReportFile | None:
        """The report file called `name`; None for any other name (paths included)."""
        if not FILE_NAME.match(name):
            return None
        return self._file(self.directory / name)

    def _file(self, path: Path) -> ReportFile | None:
        m = FILE_NAME.match(path.name)
        if not m or not path.is_file():
            return None
        st = path.stat()
        return ReportFile(
            path.name, m.group(1), m.group(2), path, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc)
        )


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
