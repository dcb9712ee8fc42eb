"""ISO weeks and the anomaly rule, without a database."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from reports.anomaly import describe, find, judge, robust_z
from reports.config import AnomalyConfig
from reports.weeks import Week

CFG = AnomalyConfig()


def test_iso_week_bounds_and_parsing() -> None:
    w = Week.parse("2026-W47")
    assert (w.start, w.end) == (
        datetime(2026, 11, 16, tzinfo=timezone.utc),
        datetime(2026, 11, 23, tzinfo=timezone.utc),
    )
    assert str(w) == "2026-W47" and Week.parse("2026w47") == w
    assert str(Week.parse("2026-W01").previous()) == "2025-W52"
    assert Week.parse("2026-W53").start.date() == date(2026, 12, 28)  # 2026 has 53 ISO weeks
    assert str(Week.last_complete(datetime(2026, 11, 23, 9, tzinfo=timezone.utc))) == "2026-W47"
    assert str(Week.last_complete(datetime(2026, 11, 22, 23, 59, tzinfo=timezone.utc))) == "2026-W46"
    assert str(Week.of(datetime(2027, 1, 1))) == "2026-W53"  # naive = UTC, ISO year differs from calendar year


@pytest.mark.parametrize("text", ["2026-47", "W47", "2026-W54", "2025-W53", "2026-W00", "last week"])
def test_invalid_weeks_are_refused_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match="invalid week"):
        Week.parse(text)


def test_robust_z_uses_median_and_mad_with_a_relative_floor() -> None:
    median, scale, z = robust_z(40, [10, 11, 12] * 5, CFG)
    assert (median, scale) == (11, pytest.approx(1.4826)) and z == pytest.approx(29 / 1.4826)
    # a perfectly steady history: MAD 0, the scale is 10% of the median
    assert robust_z(13, [10] * 28, CFG) == (10, pytest.approx(1.0), pytest.approx(3.0))


def test_judge_flags_spikes_and_drops_above_the_minimum_spend_only() -> None:
    history = [10.0, 11.0, 12.0] * 9
    assert judge(40, history, CFG) is not None
    assert judge(0, history, CFG)[2] < 0  # type: ignore[index]  # a drop to nothing
    assert judge(12.5, history, CFG) is None  # within 3.5 robust sigmas
    small = [0.10, 0.11, 0.12] * 9
    assert judge(0.40, small, CFG) is None  # anomalous in shape, but under $1
    assert judge(0.40, small, AnomalyConfig(min_spend_usd=0.1)) is not None


def test_find_needs_history_and_judges_only_the_given_days() -> None:
    hist_start, week = date(2026, 10, 19), date(2026, 11, 16)
    steady = {date.fromordinal(hist_start.toordinal() + i): 10.0 + i % 3 for i in range(28)}
    days = [date(2026, 11, 16 + i) for i in range(7)]
    daily = {"acme": {**steady, days[0]: 10.0, days[1]: 11.0, days[2]: 40.0, days[5]: 99.0}, "newco": {days[2]: 500.0}}
    found = find(daily, hist_start, week, days[:3], CFG, judge_week=False)
    # day 5 not judged; newco has no history
    assert [(a.tenant, a.day, a.direction) for a in found] == [("acme", days[2], "spike")]
    assert "median" in describe(CFG) and "3.5" in describe(CFG)
