"""The multiwindow, multi-burn-rate alert table (Google SRE workbook, chapter 5).

For a 30-day period the table is: page 14.4x over 1h and 5m, page 6x over 6h and 30m, ticket
3x over 1d and 2h, ticket 1x over 3d and 6h. For other periods the factor is scaled so that
each row still means "this share of the period's budget is gone":
factor = budget_consumed x period_hours / long_window_hours (28d: 13.44, 5.6, 2.8, 0.9333).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Severity = Literal["page", "ticket"]

# The SLI windows Sloth records, in minutes.
WINDOWS: dict[str, int] = {
    "5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320,
}

# (severity, long window, short window, share of the period's budget consumed)
BASE_TABLE: tuple[tuple[Severity, str, str, str], ...] = (
    ("page", "1h", "5m", "0.02"),
    ("page", "6h", "30m", "0.05"),
    ("ticket", "1d", "2h", "0.10"),
    ("ticket", "3d", "6h", "0.10"),
)

# With a bounded error ratio (at most 1), factor x budget above 1 can never fire: at a 90 %
# objective a 14.4x page would need 144 % errors. Thresholds are capped at this error ratio, so
# a near-total outage still pages at any objective.
MAX_ALERT_ERROR_RATIO = 0.9


@dataclass(frozen=True)
class BurnAlertWindow:
    """One row: fires when both windows' error ratios exceed factor x error budget."""

    severity: Severity
    long_window: str
    short_window: str
    budget_consumed: float
    factor: float
    capped: bool = False

    @property
    def long_minutes(self) -> int:
        return WINDOWS[self.long_window]

    @property
    def short_minutes(self) -> int:
        return WINDOWS[self.short_window]

    def threshold(self, error_budget: float) -> float:
        """The error ratio both windows must exceed (computed as Prometheus computes it)."""
        return self.factor * error_budget


def scaled_factor(budget_consumed: float | str, period_hours: int, long_window_hours: float) -> float:
    """budget_consumed x period_hours / long_window_hours, rounded to 4 decimals."""
    f = Decimal(str(budget_consumed)) * Decimal(period_hours) / Decimal(str(long_window_hours))
    return float(round(f, 4))


def alert_windows(
    period_days: int, error_budget: float, *, bounded: bool = True
) -> tuple[BurnAlertWindow, ...]:
    """The four alert rows for an SLO period, capped when the error ratio is bounded by 1."""
    rows = []
    for severity, long_w, short_w, consumed in BASE_TABLE:
        factor = scaled_factor(consumed, period_days * 24, WINDOWS[long_w] / 60)
        capped = False
        if bounded and error_budget > 0 and factor * error_budget > MAX_ALERT_ERROR_RATIO:
            factor = float(round(Decimal(MAX_ALERT_ERROR_RATIO) / Decimal(repr(error_budget)), 4))
            capped = True
        rows.append(BurnAlertWindow(severity, long_w, short_w, float(consumed), factor, capped))
    return tuple(rows)


def rows_for(windows: tuple[BurnAlertWindow, ...], severity: Severity) -> tuple[BurnAlertWindow, ...]:
    return tuple(w for w in windows if w.severity == severity)
