"""The spend anomaly rule: a robust z-score against the recent history (median and MAD)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from reports.config import AnomalyConfig
from reports.model import Anomaly

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


def describe(cfg: AnomalyConfig) -> str:
    """The rule in words, as the report states it."""
    return (
        f"Robust z-score of spend against the previous {cfg.history_weeks} weeks: "
        f"z = (spend − median) / max({MAD_TO_SIGMA}·MAD, {cfg.min_relative_scale:g}·median); "
        f"a day (vs the daily spends) or a tenant's week (vs its weekly spends) is anomalous when "
        f"|z| ≥ {cfg.z_threshold:g} and the spend or the median is at least ${cfg.min_spend_usd:,.2f}. "
        f"Days without spend count as $0; a tenant needs {cfg.min_history_days} days with spend in the "
        f"history to be judged; only complete days (and only complete weeks) are judged."
    )


def robust_z(value: float, history: Sequence[float], cfg: AnomalyConfig) -> tuple[float, float, float | None]:
    """(median, scale, z) of `value` against `history`; z is None when the scale is 0."""
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    scale = max(MAD_TO_SIGMA * mad, cfg.min_relative_scale * median)
    return median, scale, ((value - median) / scale if scale > 0 else None)


def judge(value: float, history: Sequence[float], cfg: AnomalyConfig) -> tuple[float, float, float] | None:
    """(median, scale, z) when `value` is anomalous against `history`, else None."""
    if not history:
        return None
    median, scale, z = robust_z(value, history, cfg)
    if z is None or abs(z) < cfg.z_threshold or max(value, median) < cfg.min_spend_usd:
        return None
    return median, scale, z


def find(
    daily: Mapping[str | None, Mapping[date, float]],
    history_start: date,
    week_start: date,
    judged_days: Sequence[date],
    cfg: AnomalyConfig,
    *,
    judge_week: bool,
) -> list[Anomaly]:
    """Anomalous days and tenant weeks. `daily`: spend per tenant (None: all tenants) and UTC
    day, over the history [history_start, week_start) and the week; `judged_days`: the week's
    complete days; `judge_week`: whether the week is complete (tenant weeks are judged then)."""
    out: list[Anomaly] = []
    history_days = [history_start + timedelta(days=i) for i in range((week_start - history_start).days)]
    for tenant, by_day in daily.items():
        history = [by_day.get(d, 0.0) for d in history_days]
        if sum(1 for x in history if x > 0) < cfg.min_history_days:
            continue
        for d in judged_days:
            spend = by_day.get(d, 0.0)
            found = judge(spend, history, cfg)
            if found:
                out.append(Anomaly.of("day", tenant, d, spend, *found))
        if judge_week and tenant is not None:
            weekly = [sum(history[i : i + 7]) for i in range(0, len(history), 7)]
            spend = sum(by_day.get(week_start + timedelta(days=i), 0.0) for i in range(7))
            found = judge(spend, weekly, cfg)
            if found:
                out.append(Anomaly.of("week", tenant, week_start, spend, *found))
    return sorted(out, key=lambda a: (-abs(a.z), a.tenant or "", a.day))
