from __future__ import annotations

import pytest

from slo.burn import MAX_ALERT_ERROR_RATIO, alert_windows, rows_for, scaled_factor


@pytest.mark.parametrize(("days", "factors"), [
    (30, [14.4, 6.0, 3.0, 1.0]),
    (28, [13.44, 5.6, 2.8, 0.9333]),
    (7, [3.36, 1.4, 0.7, 0.2333]),
])
def test_factors_scale_with_the_period(days: int, factors: list[float]) -> None:
    rows = alert_windows(days, 0.001)
    assert [r.factor for r in rows] == factors
    assert [(r.severity, r.long_window, r.short_window) for r in rows] == [
        ("page", "1h", "5m"), ("page", "6h", "30m"), ("ticket", "1d", "2h"), ("ticket", "3d", "6h")]
    assert not any(r.capped for r in rows)


def test_scaled_factor_formula() -> None:
    # budget consumed x period hours / long window hours
    assert scaled_factor("0.02", 720, 1) == 14.4
    assert scaled_factor("0.05", 672, 6) == 5.6


def test_low_objectives_are_capped_so_an_outage_can_still_page() -> None:
    rows = alert_windows(30, 0.1)  # 90 % objective: 14.4 x 0.1 = 1.44 could never be exceeded
    page_fast = rows_for(rows, "page")[0]
    assert page_fast.capped and page_fast.threshold(0.1) == pytest.approx(MAX_ALERT_ERROR_RATIO)
    assert all(r.threshold(0.1) <= MAX_ALERT_ERROR_RATIO + 1e-12 for r in rows)
    assert not rows[1].capped and rows[1].factor == 6.0  # 0.6 < 0.9 stays as is
    assert any(1.0 > r.threshold(0.1) for r in rows_for(rows, "page"))  # a full outage fires


def test_unbounded_ratios_are_not_capped() -> None:
    rows = alert_windows(28, 1.0, bounded=False)  # cost: error ratio = spend / budget
    assert [r.factor for r in rows] == [13.44, 5.6, 2.8, 0.9333]
