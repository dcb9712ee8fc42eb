"""The multiwindow, multi-burn-rate alert table (Google SRE workbook, chapter 5).

Each row fires when both its windows burn faster than `factor`, and means "this share of the
period's error budget is gone": factor = budget_consumed x period_hours / long_window_hours.

- 30 and 28 days (and the calendar month, rendered as 30 days): Sloth's default window sets,
  kept exactly: page 1h/5m (2 %) and 6h/30m (5 %), ticket 1d/2h and 3d/6h (10 % each); 30 d
  gives factors 14.4, 6, 3, 1 and 28 d gives 13.44, 5.6, 2.8, 0.9333...
- Any other period: the 30-day windows scaled by period / 30 d, as Pyrra scales its windows
  with the period, so the factors stay 14.4, 6, 3, 1 (7 d: 14m/5m, 1h24m/7m, 5h36m/28m,
  16h48m/1h24m; 90 d: 3h/15m, 18h/1h30m, 3d/6h, 9d/18h). Keeping the 30-day windows and scaling
  only the factors would drop the ticket factors below 1 at 7 d (a ticket for a burn that
  spends a third of the budget) and raise them to 3x at 90 d (a 2.5x burn never alerts).
  Windows are whole minutes; a short window is never under 5m (rate() needs several scrapes).
- An explicit window set (Sloth's AlertWindows) replaces either.

Factors keep full precision: a factor rounded down would fire before the budget share is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal, Sequence

Severity = Literal["page", "ticket"]

# The SLI windows Sloth records, in minutes (dashboards and the 5m current burn rate read them).
WINDOWS: dict[str, int] = {
    "5m": 5,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "6h": 360,
    "1d": 1440,
    "3d": 4320,
}
MIN_SHORT_WINDOW_MINUTES = 5
SLOTH_PERIODS = (28, 30)  # periods whose default windows are Sloth's, unscaled


@dataclass(frozen=True)
class WindowSpec:
    """One row of a window set: severity, long and short window in minutes, budget share."""

    severity: Severity
    long_minutes: int
    short_minutes: int
    budget_consumed: str  # a decimal string, e.g. "0.02"


# (severity, long window, short window, share of the period's budget consumed): Sloth's 30 d set
BASE_TABLE: tuple[WindowSpec, ...] = (
    WindowSpec("page", 60, 5, "0.02"),
    WindowSpec("page", 360, 30, "0.05"),
    WindowSpec("ticket", 1440, 120, "0.1"),
    WindowSpec("ticket", 4320, 360, "0.1"),
)
BASE_PERIOD_DAYS = 30

# With a bounded error ratio (at most 1), factor x budget above 1 can never fire: at a 90 %
# objective a 14.4x page would need 144 % errors. Thresholds are capped at this error ratio, so
# a near-total outage still pages at any objective.
MAX_ALERT_ERROR_RATIO = "0.9"


def duration_name(minutes: int) -> str:
    """Minutes as Prometheus prints a duration: 5 -> "5m", 1440 -> "1d", 40320 -> "4w"."""
    if minutes <= 0:
        return "0s"
    out, rest = "", minutes
    for unit, size, exact in (
        ("y", 525600, True),
        ("w", 10080, True),
        ("d", 1440, False),
        ("h", 60, False),
        ("m", 1, False),
    ):
        if exact and rest % size:
            continue
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


@dataclass(frozen=True)
class BurnAlertWindow:
    """One row: fires when both windows' error ratios exceed factor x error budget."""

    severity: Severity
    long_minutes: int
    short_minutes: int
    budget_consumed: float
    factor: float
    capped: bool = False

    @property
    def long_window(self) -> str:
        return duration_name(self.long_minutes)

    @property
    def short_window(self) -> str:
        return duration_name(self.short_minutes)

    def threshold(self, error_budget: float) -> float:
        """The error ratio both windows must exceed (computed as Prometheus computes it)."""
        return self.factor * error_budget


def scaled_factor(budget_consumed: float | str, period_hours: int, long_window_hours: float | Fraction) -> float:
    """budget_consumed x period_hours / long_window_hours, to full float precision."""
    f = Fraction(Decimal(str(budget_consumed))) * period_hours / Fraction(long_window_hours)
    return float(f)


def default_window_set(period_days: int) -> tuple[WindowSpec, ...]:
    """Sloth's windows at 28 and 30 days; the 30-day windows scaled with the period otherwise."""
    if period_days in SLOTH_PERIODS:
        return BASE_TABLE

    def scale(minutes: int) -> int:
        return max(1, round(Fraction(minutes * period_days, BASE_PERIOD_DAYS)))

    return tuple(
        WindowSpec(
            w.severity, scale(w.long_minutes), max(MIN_SHORT_WINDOW_MINUTES, scale(w.short_minutes)), w.budget_consumed
        )
        for w in BASE_TABLE
    )


def alert_windows(
    period_days: int,
    error_budget: float,
    *,
    bounded: bool = True,
    window_set: Sequence[WindowSpec] | None = None,
) -> tuple[BurnAlertWindow, ...]:
    """The alert rows for an SLO period, capped when the error ratio is bounded by 1."""
    rows = []
    for w in window_set or default_window_set(period_days):
        factor = scaled_factor(w.budget_consumed, period_days * 24, Fraction(w.long_minutes, 60))
        capped = False
        if bounded and error_budget > 0 and factor * error_budget > float(MAX_ALERT_ERROR_RATIO):
            factor = float(Fraction(Decimal(MAX_ALERT_ERROR_RATIO)) / Fraction(Decimal(repr(error_budget))))
            capped = True
        rows.append(
            BurnAlertWindow(
                w.severity, w.long_minutes, w.short_minutes, float(Decimal(w.budget_consumed)), factor, capped
            )
        )
    return tuple(rows)


def rows_for(windows: tuple[BurnAlertWindow, ...], severity: Severity) -> tuple[BurnAlertWindow, ...]:
    return tuple(w for w in windows if w.severity == severity)


def window_minutes(rows: Sequence[BurnAlertWindow]) -> dict[str, int]:
    """WINDOWS plus every window of `rows`, by name, shortest first."""
    out = dict(WINDOWS)
    for r in rows:
        out[r.long_window] = r.long_minutes
        out[r.short_window] = r.short_minutes
    return dict(sorted(out.items(), key=lambda kv: kv[1]))
