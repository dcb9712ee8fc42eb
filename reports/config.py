"""Settings of the weekly report (the `reports:` section of the platform settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Format = Literal["html", "md", "json"]
FORMATS: tuple[Format, ...] = ("html", "md", "json")


class AnomalyConfig(BaseModel):
    """The rule that flags a day's (or a tenant's week's) spend against its recent history.

    robust z = (spend - median) / scale, with scale = max(1.4826 * MAD, min_relative_scale *
    median) over the history; flagged when |z| >= z_threshold and the spend or the median is
    at least min_spend_usd. The relative floor keeps a perfectly steady history from making
    every cent of change an anomaly."""

    history_weeks: int = Field(4, ge=1, le=26, description="weeks of history before the report's week")
    z_threshold: float = Field(3.5, gt=0)
    min_relative_scale: float = Field(0.1, ge=0)
    min_spend_usd: float = Field(1.0, ge=0, description="smaller spends (and baselines) are never anomalous")
    min_history_days: int = Field(7, ge=1, description="days with spend needed in the history to judge a tenant")


class ReportsConfig(BaseModel):
    enabled: bool = True  # the scheduled job; the CLI and the API work either way
    weekday: Weekday = "mon"  # UTC
    hour: int = Field(9, ge=0, le=23)
    minute: int = Field(0, ge=0, le=59)
    dir: Path = Path("reports")  # relative to the data directory
    webhooks: list[str] = []  # each gets a JSON summary (Slack-compatible `text`) of every scheduled report
    webhook_timeout_s: float = Field(10.0, gt=0)
    formats: list[Format] = list(FORMATS)
    top_n: int = Field(5, ge=1, le=100, description="top spenders and worst incidents shown")
    anomaly: AnomalyConfig = AnomalyConfig()

    def directory(self, data_dir: Path) -> Path:
        return self.dir if self.dir.is_absolute() else data_dir / self.dir
