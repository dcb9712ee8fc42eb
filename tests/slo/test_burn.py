from __future__ import annotations

from fractions import Fraction

import pytest

from slo.burn import MAX_ALERT_ERROR_RATIO, alert_windows, rows_for, scaled_factor


@pytest.mark.parametrize(
    ("days", "factors"),
    [
        (30, [14.4, 6.0, 3.0, 1.0]),
        (28, [13.44, 5.6, 2.8, 0.9333333333333333]),
    ],
)
def test_sloth_periods_keep_sloths_windows_and_scale_the_factors(days: int, factors: list[float]) -> None:
    rows = alert_windows(days, 0.001)
    assert [r.factor for r in rows] == factors
    assert [(r.severity, r.long_window, r.short_window) for r in rows] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]
    assert not any(r.capped for r in rows)


@pytest.mark.parametrize(
    ("days", "windows"),
    [
        (7, [("14m", "5m"), ("1h24m", "7m"), ("5h36m", "28m"), ("16h48m", "1h24m")]),
        (90, [("3h", "15m"), ("18h", "1h30m"), ("3d", "6h"), ("9d", "18h")]),
        (14, [("28m", "5m"), ("2h48m", "14m"), ("11h12m", "56m"), ("1d9h36m", "2h48m")]),
    ],
)
def test_other_periods_scale_the_windows_and_keep_the_factors(days: int, windows: list[tuple[str, str]]) -> None:
    rows = alert_windows(days, 0.001)
    assert [(r.long_window, r.short_window) for r in rows] == windows
    assert [r.factor for r in rows] == [14.4, 6.0, 3.0, 1.0]  # no ticket factor below 1 at 7 d
    for r in rows:  # each row still means the same share of the period's budget
        assert Fraction(r.factor) * r.long_minutes == pytest.approx(
            float(Fraction(str(r.budget_consumed)) * days * 1440)
        )


def test_a_90_day_period_tickets_a_steady_burn_that_exhausts_the_budget_early() -> None:
    # 2.5x burns the 90 d budget by day 36: it must exceed a ticket factor
    assert min(r.factor for r in rows_for(alert_windows(90, 0.001), "ticket")) < 2.5


def test_scaled_factor_formula_keeps_full_precision() -> None:
    # budget consumed x period hours / long window hours
    assert scaled_factor("0.02", 720, 1) == 14.4
    assert scaled_factor("0.05", 672, 6) == 5.6
    assert scaled_factor("0.1", 672, 72) == 0.9333333333333333  # not 0.9333, which fires early


def test_low_objectives_are_capped_so_an_outage_can_still_page() -> None:
    rows = alert_windows(30, 0.1)  # 90 % objective: 14.4 x 0.1 = 1.44 could never be exceeded
    page_fast = rows_for(rows, "page")[0]
    assert page_fast.capped and page_fast.threshold(0.1) == pytest.approx(float(MAX_ALERT_ERROR_RATIO))
    assert all(r.threshold(0.1) <= float(MAX_ALERT_ERROR_RATIO) + 1e-12 for r in rows)
    assert not rows[1].capped and rows[1].factor == 6.0  # 0.6 < 0.9 stays as is
    assert any(1.0 > r.threshold(0.1) for r in rows_for(rows, "page"))  # a full outage fires


def test_unbounded_ratios_are_not_capped() -> None:
    rows = alert_windows(28, 1.0, bounded=False)  # cost: error ratio = spend / budget
    assert [r.factor for r in rows] == [13.44, 5.6, 2.8, 0.9333333333333333]
