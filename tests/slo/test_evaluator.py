from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest

from slo.evaluator import MinuteSeries, evaluate, evaluate_range, to_minute
from slo.model import SLO, Alerting, AvailabilitySLI, CostSLI, TimeWindow


def slo(objective: float = 0.99, days: int = 30, **kw: Any) -> SLO:
    return SLO(service="svc", name="avail", sli=AvailabilitySLI(), objective=objective, window=TimeWindow(days), **kw)


def series(bad_per_minute: list[float], total_per_minute: list[float], start: int = 0) -> MinuteSeries:
    return MinuteSeries.from_bad_total(start, bad_per_minute, total_per_minute)


def no_nan(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, dict):
        return all(no_nan(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(no_nan(v) for v in value)
    return True


def test_windows_budget_and_alerts_on_a_known_series() -> None:
    # 100 requests a minute for 2 h; no errors in the first hour, 5 a minute in the second.
    ev = evaluate(slo(0.99), series([0] * 60 + [5] * 60, [100] * 120))
    assert ev.now == 120
    w = ev.windows
    assert (w["5m"].good, w["5m"].total) == (475, 500)
    assert w["5m"].error_ratio == pytest.approx(0.05) and w["5m"].burn_rate == pytest.approx(5.0)
    assert w["1h"].error_ratio == pytest.approx(300 / 6000)
    assert w["2h"].error_ratio == pytest.approx(300 / 12000) and w["2h"].burn_rate == pytest.approx(2.5)
    assert w["3d"].error_ratio == pytest.approx(0.025)  # only two hours of data exist
    assert ev.sli == pytest.approx(0.975) and ev.error_ratio == pytest.approx(0.025)
    assert ev.period_burn_rate == pytest.approx(2.5) and ev.budget_remaining == pytest.approx(-1.5)
    assert ev.time_to_exhaustion_s == 0.0  # already overspent
    # 30 d table at a 1 % budget: page 14.4 (0.144) / 6 (0.06), ticket 3 (0.03) / 1 (0.01)
    assert not ev.page.firing
    assert [r.firing for r in ev.ticket.rows] == [False, True]  # 1d/2h at 0.025 < 0.03; 3d/6h > 0.01
    assert ev.status == "ticket"


def test_time_to_exhaustion_at_current_burn() -> None:
    # 28 d, 99.5 %: 1000 minutes of 100 requests, errors only in the last 5 minutes (1 a minute).
    bad = [0] * 995 + [1] * 5
    ev = evaluate(slo(0.995, days=28), series(bad, [100] * 1000))
    assert ev.error_ratio == pytest.approx(5 / 100_000)
    assert ev.period_burn_rate == pytest.approx(0.01)
    assert ev.budget_remaining == pytest.approx(0.99)
    assert ev.current_burn_rate == pytest.approx(2.0)  # 1 % errors / 0.5 % budget
    assert ev.time_to_exhaustion_s == pytest.approx(0.99 * 28 * 86400 / 2.0)


def test_page_fires_at_the_minute_the_1h_window_crosses() -> None:
    # 99.9 %, 30 d: the 14.4x page needs both the 5m and 1h error ratio above 0.0144.
    # 2 h clean, then 2 % errors: the 1h ratio after k bad minutes is 0.02 k / 60 > 0.0144 -> k >= 44.
    s = series([0] * 120 + [2] * 60, [100] * 180)
    target = slo(0.999)
    assert not evaluate(target, s, now=120 + 43).page.firing
    fired = evaluate(target, s, now=120 + 44)
    assert fired.page.firing and fired.page.rows[0].firing and not fired.page.rows[1].firing
    assert [e.page.firing for e in evaluate_range(target, s, 120, 180)].index(True) == 44


def test_disabled_page_never_fires() -> None:
    s = series([100] * 60, [100] * 60)
    ev = evaluate(slo(0.99, alerting=Alerting(page=False)), s)
    assert not ev.page.enabled and not ev.page.firing
    assert ev.ticket.firing and ev.status == "ticket"


def test_period_sli_is_a_ratio_of_counts_not_an_average_of_ratios() -> None:
    ev = evaluate(slo(0.99), series([10, 10], [1000, 10]))
    assert ev.error_ratio == pytest.approx(20 / 1010)  # not (0.01 + 1.0) / 2
    assert ev.windows["5m"].error_ratio == pytest.approx(20 / 1010)


def test_gaps_give_none_never_nan_and_no_data_after_the_configured_time() -> None:
    target = slo(0.99, alerting=Alerting(no_data_after_minutes=15))
    s = series([1] * 30 + [0] * 20, [200] * 30 + [0] * 20)  # traffic stops at minute 30
    ev = evaluate(target, s)  # now = 50
    assert ev.windows["5m"].error_ratio is None and ev.windows["5m"].burn_rate is None
    assert ev.windows["30m"].error_ratio == pytest.approx(0.005)
    assert ev.budget_remaining == pytest.approx(0.5)
    assert ev.current_burn_rate is None and ev.time_to_exhaustion_s is None  # not burning now
    assert ev.no_data and ev.minutes_since_traffic == 20 and ev.status == "no_data"
    assert no_nan(ev.to_dict())
    assert not evaluate(target, s, now=44).no_data and evaluate(target, s, now=45).no_data


def test_empty_series_is_no_data_without_nan() -> None:
    ev = evaluate(slo(), [], now=1000)
    assert ev.total == 0 and ev.sli is None and ev.error_ratio is None and ev.budget_remaining is None
    assert all(w.burn_rate is None for w in ev.windows.values())
    assert ev.no_data and ev.minutes_since_traffic is None and not ev.page.firing and not ev.ticket.firing
    assert no_nan(ev.to_dict())


def test_points_accept_datetimes_in_any_order_and_sum_repeats() -> None:
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    m0 = to_minute(t0)
    pts = [(datetime(2024, 5, 1, 12, 2), 90, 100), (t0, 50, 50), (m0 + 2, 5, 10)]
    s = MinuteSeries.from_points(pts)
    assert s.start == m0 and s.end == m0 + 3
    assert list(s.total) == [50, 0, 110] and list(s.good) == [50, 0, 95]
    ev = evaluate(slo(), pts)
    assert ev.now == m0 + 3 and ev.good == 145 and ev.total == 160


def test_calendar_month_starts_on_the_first() -> None:
    target = SLO(service="svc", name="m", sli=AvailabilitySLI(), objective=0.99, window=TimeWindow(30, calendar=True))
    feb = to_minute(datetime(2024, 2, 20, tzinfo=timezone.utc))
    mar = to_minute(datetime(2024, 3, 1, tzinfo=timezone.utc))
    s = MinuteSeries.from_points([(feb, 0, 100), (mar + 10, 99, 100)])
    ev = evaluate(target, s, now=mar + 60)
    assert ev.period_start == mar and ev.period_minutes == 31 * 1440
    assert ev.total == 100 and ev.error_ratio == pytest.approx(0.01)  # February is not counted


def test_cost_slo_reports_spend_per_1k_requests() -> None:
    cost = SLO(service="svc", name="cost", sli=CostSLI(2.0), objective=0.0, window=TimeWindow(28))
    requests = np.full(10, 1000.0)
    spend = requests * 4.0 / 1000  # 4 USD per 1k requests against a 2 USD budget
    ev = evaluate(cost, MinuteSeries.from_bad_total(0, spend, cost.sli.allowed_spend(requests)))
    assert ev.sli is None and ev.error_budget == 1.0
    assert ev.error_ratio == pytest.approx(2.0) and ev.period_burn_rate == pytest.approx(2.0)
    assert ev.cost_per_1k_usd == pytest.approx(4.0) and ev.budget_remaining == pytest.approx(-1.0)


def test_invalid_arrays_are_rejected() -> None:
    with pytest.raises(ValueError, match="same length"):
        MinuteSeries.from_arrays([0, 1], [1], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        MinuteSeries.from_arrays([0], [float("nan")], [1])
