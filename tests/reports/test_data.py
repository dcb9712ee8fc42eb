"""The report's numbers from a ledger holding a known synthetic week, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select

from ledger.models import Request
from reports.data import WeekNotStarted, build_report
from reports.model import BudgetLine
from reports.weeks import Week
from safety import review
from tests.reports import _week as W


def _raw(engine: Engine, start: datetime, end: datetime) -> tuple[int, float]:
    with engine.connect() as c:
        n, cost = c.execute(
            select(func.count(), func.sum(Request.cost_usd)).where(
                Request.started_at >= start, Request.started_at < end
            )
        ).one()
    return int(n), float(cost or 0)


def test_known_week_totals_changes_and_tenants(ledger_engine: Engine) -> None:
    W.fill(ledger_engine)
    r = build_report(ledger_engine, W.WEEK, now=W.AFTER, slos=W.SLOS)
    assert not r.partial and r.data_until == W.WEEK.end and r.previous_week == "2026-W46"
    t = r.totals
    assert (t.requests, t.cost_usd) == (W.THIS_REQUESTS, pytest.approx(W.THIS_TOTAL))
    # rollups agree with raw rows
    assert (t.requests, pytest.approx(t.cost_usd)) == _raw(ledger_engine, W.WEEK.start, W.WEEK.end)
    assert (t.prev_requests, t.prev_cost_usd) == (W.PREV_REQUESTS, pytest.approx(W.PREV_TOTAL))
    assert t.cost_change == pytest.approx(119.2 / 94.7 - 1)
    assert (t.prompt_tokens, t.completion_tokens) == (2900, 28 * 50)  # the 503 had no completion
    assert t.cost_per_1k_requests_usd == pytest.approx(119.2 / 29 * 1000)
    assert t.cost_per_1m_tokens_usd == pytest.approx(119.2 / 4300 * 1e6)

    tenants = {x.name: x for x in r.by_tenant}
    assert [x.name for x in r.by_tenant] == ["acme", "globex", "initech", "hooli"]  # by spend, then last week's
    assert tenants["acme"].cost_usd == pytest.approx(104) and tenants["acme"].cost_change == pytest.approx(104 / 76 - 1)
    assert tenants["globex"].cost_change == pytest.approx(0)
    assert tenants["initech"].cost_change == -1 and tenants["initech"].cost_per_1k_requests_usd is None
    assert tenants["hooli"].requests == 0 and tenants["hooli"].cost_change is None  # registered, never used
    assert r.tenants_without_traffic == ["initech", "hooli"] and r.cost.top_spenders == ["acme", "globex"]

    models = {(x.alias, x.model_version): x for x in r.by_model}
    assert models[("chat", "chat@v2")].cost_usd == pytest.approx(52) and models[("chat", "chat@v2")].prev_cost_usd == 0
    v1 = models[("chat", "chat@v1")]
    assert v1.requests == 8 and v1.prev_cost_usd == pytest.approx(76 + 3.5)
    assert {x.name: x.cost_usd for x in r.by_alias} == {"chat": pytest.approx(104), "embed": pytest.approx(15.2)}
    assert [d.cost_usd for d in r.cost.daily] == pytest.approx([12, 13.2, 42.4, 12, 13.2, 14.4, 12])
    assert r.cost.budgets is None and r.cache is None


def test_anomalous_day_and_tenants_are_flagged_and_normal_ones_not(ledger_engine: Engine) -> None:
    W.fill(ledger_engine, extras=False)
    r = build_report(ledger_engine, W.WEEK, now=W.AFTER)
    found = {(a.scope, a.tenant, a.day.isoformat(), a.direction) for a in r.cost.anomalies}
    assert found == {
        ("day", "acme", "2026-11-18", "spike"),  # 40 against a median of 11
        ("day", None, "2026-11-18", "spike"),  # all tenants together
        ("week", "acme", "2026-11-16", "spike"),  # 104 against 76 a week
        ("week", "initech", "2026-11-16", "drop"),  # no traffic after 3.50 a week
    }
    acme_day = next(a for a in r.cost.anomalies if a.scope == "day" and a.tenant == "acme")
    assert (acme_day.median_usd, acme_day.z) == (pytest.approx(11), pytest.approx(29 / 1.4826))
    assert "MAD" in r.cost.anomaly_rule


def test_safety_review_reliability_and_change(ledger_engine: Engine) -> None:
    W.fill(ledger_engine)
    s = build_report(ledger_engine, W.WEEK, now=W.AFTER, slos=W.SLOS).safety
    assert s.hits_total == 3 and (s.requests_blocked, s.requests_redacted, s.requests_flagged) == (1, 1, 1)
    assert {(h.category, h.direction, h.action, h.hits) for h in s.hits} == {
        ("harmful", "output", "block", 1),
        ("pii", "input", "redact", 1),
        ("injection", "input", "flag", 1),
    }
    # redactions are not incidents
    assert [(i.category, i.action, i.excerpt) for i in s.worst] == [
        ("harmful", "block", "[REDACTED:harmful]"),
        ("injection", "flag", "ignore previous [...]"),
    ]
    assert {(o.category, o.queued, o.open, o.precision) for o in s.review} == {
        ("harmful", 1, 1, None),
        ("injection", 1, 1, None),
    }

    items = {i["category"]: i["id"] for i in review.list_items(ledger_engine)}
    review.resolve(ledger_engine, items["harmful"], "true_positive", None, "rev")
    review.resolve(ledger_engine, items["injection"], "false_positive", "benign", "rev")
    r = build_report(ledger_engine, W.WEEK, now=W.AFTER, slos=W.SLOS)
    assert {(o.category, o.resolved, o.precision) for o in r.safety.review} == {
        ("harmful", 1, 1.0),
        ("injection", 1, 0.0),
    }

    slo = {x.name: x for x in r.reliability.slos}
    avail = slo["avail"]
    assert (avail.status, avail.good, avail.total) == ("missed", 28, 29)
    assert avail.compliance == pytest.approx(28 / 29)
    assert avail.budget_consumed == pytest.approx((1 / 29) / 0.01 * 7 / 28)
    pages = [(p.started_at.strftime("%a %H:%M"), p.ended_at and p.ended_at.strftime("%a %H:%M")) for p in avail.pages]
    assert pages == [("Wed 10:00", "Wed 11:00"), ("Sat 12:00", None)]
    assert avail.tickets == 1 and r.reliability.history_recorded
    assert (slo["ttft"].status, slo["ttft"].compliance) == ("met", 1.0)
    assert (slo["spend"].status, slo["spend"].burn_rate) == ("met", pytest.approx(119.2 / (29 * 5.0)))

    assert [(a.id, a.verdict, a.reason) for a in r.change.analyses] == [("ca_1", "fail", "latency_s regressed by 60%")]
    assert [(o.id, o.state, [e.kind for e in o.events]) for o in r.change.rollouts] == [
        ("ro_1", "rolled_back", ["started", "rolled_back"])
    ]


def test_a_week_without_data(ledger_engine: Engine) -> None:
    W.fill(ledger_engine, W.records(), extras=False)
    october = BudgetLine(
        tenant="acme",
        budget="month-spend",
        period="month",
        period_start=datetime(2026, 10, 1, tzinfo=timezone.utc),
        period_end=datetime(2026, 11, 1, tzinfo=timezone.utc),
        counted_until=Week(2026, 40).end,
        limit=100,
        used=120,
    )
    r = build_report(ledger_engine, Week(2026, 40), now=W.AFTER, slos=W.SLOS, budgets=lambda start, until: [october])
    t = r.totals
    assert (t.requests, t.cost_usd, t.cost_change, t.cost_per_1k_requests_usd) == (0, 0, None, None)
    assert r.cost.anomalies == [] and r.safety.hits_total == 0 and r.change.analyses == []
    assert {s.status for s in r.reliability.slos} == {"no_data"} and not r.reliability.history_recorded
    assert r.tenants_without_traffic == list(W.TENANTS) and all(d.cost_usd == 0 for d in r.cost.daily)
    b = r.cost.budgets[0]  # type: ignore[index]
    assert (b.label, b.remaining, b.used_ratio, b.state, b.complete) == ("2026-10", -20, 1.2, "exceeded", False)


def test_a_week_in_progress_reads_whole_hours_and_judges_complete_days(ledger_engine: Engine) -> None:
    W.fill(ledger_engine, extras=False)
    now = W.WEEK.start + timedelta(days=2, hours=13, minutes=25)  # Wednesday 13:25, after the 13:13 request
    r = build_report(ledger_engine, W.WEEK, now=now)
    until = W.WEEK.start + timedelta(days=2, hours=13)
    assert r.partial and r.data_until == until
    assert (r.totals.requests, pytest.approx(r.totals.cost_usd)) == _raw(ledger_engine, W.WEEK.start, until)
    assert r.totals.requests == 4 + 4 + 2  # Mon and Tue: two per tenant; Wed: the 09:13 ones only
    week_ago = timedelta(days=7)
    assert (r.totals.prev_requests, pytest.approx(r.totals.prev_cost_usd)) == _raw(
        ledger_engine, W.WEEK.start - week_ago, until - week_ago
    )  # the same span of last week
    assert [d.day.day for d in r.cost.daily] == [16, 17, 18]
    assert r.cost.anomalies == []  # Wednesday is not complete, and tenant weeks are not judged yet


def test_a_week_that_has_not_started(ledger_engine: Engine) -> None:
    with pytest.raises(WeekNotStarted, match="2026-W48 has not started"):
        build_report(ledger_engine, Week(2026, 48), now=datetime(2026, 11, 22, 23, tzinfo=timezone.utc))
