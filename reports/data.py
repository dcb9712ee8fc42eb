"""Builds the `WeeklyReport` of one ISO week from the ledger (read-only but for the review
queue's sync)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ledger.rollups import hour_of
from reports import anomaly, cache_section, changes, reliability, safety_section, traffic
from reports.cache_section import MissCost
from reports.config import ReportsConfig
from reports.model import BudgetLine, CostSection, WeeklyReport
from reports.weeks import Week
from slo.model import SLO


# The budgets' lines for the periods overlapping [start, until); None: no budgets configured.
BudgetsOf = Callable[[datetime, datetime], Sequence[BudgetLine] | None]


class WeekNotStarted(ValueError):
    pass


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=timezone.utc)


def build_report(
    engine: Engine,
    week: Week,
    *,
    now: datetime,
    slos: Sequence[SLO] = (),
    config: ReportsConfig | None = None,
    budgets: BudgetsOf | None = None,
    cache_enabled: bool = False,
    miss_cost: MissCost | None = None,
) -> WeeklyReport:
    """The report of `week` as of `now`. A week in progress is read up to the last full hour
    (`partial`), and compared with the same span of the week before. `budgets` come from their
    owner (without them the report says none are configured); `miss_cost` prices what the
    cache's hits saved. The cache section is left out while the cache is off and served nothing."""
    cfg = config or ReportsConfig()
    if now < week.start:
        raise WeekNotStarted(f"week {week} has not started yet (it starts {week.start:%Y-%m-%d})")
    until = min(week.end, hour_of(now))
    before = timedelta(days=7)
    history_start = week.start - timedelta(weeks=cfg.anomaly.history_weeks)
    with Session(engine) as s:
        this_week = traffic.slices(s, week.start, until)
        last_week = traffic.slices(s, week.start - before, until - before)
        tenants = traffic.known_tenants(s)
        daily = traffic.daily_spend(s, history_start, until)
        slo_weeks = reliability.build(s, slos, week.start, until)
        change = changes.build(s, week.start, until)
        cache = cache_section.build(
            s, week.start, until, this_week, last_week, enabled=cache_enabled, miss_cost=miss_cost
        )
    safety = safety_section.build(engine, week.start, until, cfg.top_n)

    totals, by_tenant, by_alias, by_model = traffic.lines(this_week, last_week, tenants)
    all_tenants: dict[date, float] = defaultdict(float)
    for by_day in daily.values():
        for d, v in by_day.items():
            all_tenants[d] += v
    judged = [d for d in week.days() if _midnight(d + timedelta(days=1)) <= until]
    by_scope: dict[str | None, Mapping[date, float]] = {tenant: days for tenant, days in daily.items()}
    by_scope[None] = all_tenants
    found = anomaly.find(
        by_scope, history_start.date(), week.start.date(), judged, cfg.anomaly, judge_week=until >= week.end
    )
    cost = CostSection(
        daily=traffic.week_days(daily, [d for d in week.days() if _midnight(d) < until]),
        top_spenders=[x.name for x in by_tenant if x.cost_usd > 0][: cfg.top_n],
        anomalies=found,
        anomaly_rule=anomaly.describe(cfg.anomaly),
        budgets=_budget_lines(budgets, week.start, until),
    )
    return WeeklyReport(
        week=str(week),
        start=week.start,
        end=week.end,
        data_until=until,
        partial=until < week.end,
        previous_week=str(week.previous()),
        generated_at=now,
        totals=totals,
        by_tenant=by_tenant,
        by_alias=by_alias,
        by_model=by_model,
        tenants_without_traffic=[x.name for x in by_tenant if x.requests == 0],
        cost=cost,
        cache=cache,
        safety=safety,
        reliability=slo_weeks,
        change=change,
    )


def _budget_lines(budgets: BudgetsOf | None, start: datetime, until: datetime) -> list[BudgetLine] | None:
    lines = budgets(start, until) if budgets else None
    return None if lines is None else sorted(lines, key=lambda b: (b.tenant, b.budget, b.period_start))
