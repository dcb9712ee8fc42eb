"""Budgets and the response cache in the report, through the real adapter
(`inferwatch.report_inputs`) over the synthetic ledger plus cache hits, on SQLite and PostgreSQL.

Added to `tests.reports._week`: five cache hits of acme on Tuesday of W47 (chat@v1, 100 + 50
tokens each, charged nothing) and one of globex (embed@v1, charged $0.001). acme has budgets
of its own (a monthly $300, a daily 400 tokens, a monthly 10,000 tokens for its key); the
other tenants get the gateway's default (a monthly $200).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from typer.testing import CliRunner

from gateway.budgets import billed
from gateway.config import Budget, CacheConfig, GatewayConfig, Price
from ledger.governance import GovernanceStore
from inferwatch.report_inputs import periods, report_inputs
from ledger.buckets import DEFAULT_BUCKETS
from ledger.record import RequestRecord
from ledger.store import write_records
from ledger.testing import make_record
from reports import render
from inferwatch.cli import app as cli  # the report command as the platform mounts it
from reports.config import ReportsConfig
from reports.data import build_report
from reports.service import ReportService
from reports.weeks import Week
from tests.reports import _week as W

UTC = timezone.utc
TUESDAY = W.MON + timedelta(days=1)
ACME_BUDGETS = [
    Budget(period="month", limit=300),
    Budget(period="day", kind="tokens", limit=400, soft_percent=50),
    Budget(period="month", kind="tokens", limit=10_000, key_id="iw-acme"),
]
CONFIG = GatewayConfig(
    prices={
        "chat@v1": Price(input_per_1m=1000, output_per_1m=2000),
        "default": Price(input_per_1m=10, output_per_1m=20),
    },
    cache=CacheConfig(enabled=True, hit_cost_usd=0.001),
    default_budgets=[Budget(period="month", limit=200)],
)


def hits() -> list[RequestRecord]:
    acme = [
        make_record(
            request_id=f"hit-acme-{i}",
            tenant="acme",
            key_id="iw-acme",
            alias="chat",
            model_version="chat@v1",
            started_at=TUESDAY + timedelta(hours=15, minutes=i),
            prompt_tokens=100,
            completion_tokens=50,
            cost_usd=0.0,
            cache_hit=True,
        )
        for i in range(5)
    ]
    globex = make_record(
        request_id="hit-globex",
        tenant="globex",
        key_id="iw-globex",
        alias="embed",
        model_version="embed@v1",
        started_at=TUESDAY + timedelta(hours=16),
        prompt_tokens=100,
        completion_tokens=50,
        cost_usd=0.001,
        cache_hit=True,
    )
    return [*acme, globex]


def with_lookups(records: list[RequestRecord]) -> list[RequestRecord]:
    """Cacheable requests the cache missed: all of acme's chat@v1 and globex's first three of the week."""
    week = sorted((r for r in records if W.WEEK.start <= r.started_at < W.WEEK.end), key=lambda r: r.started_at)
    first_three = {r.request_id for r in [r for r in week if r.tenant == "globex"][:3]}
    for r in records:
        r.cache_lookup = (r.tenant, r.model_version) == ("acme", "chat@v1") or r.request_id in first_three
    return records


def fill(engine: Engine) -> None:
    W.fill(engine, with_lookups(W.records()) + hits(), extras=False)
    GovernanceStore(engine).update_tenant_settings("acme", {"budgets": [b.model_dump() for b in ACME_BUDGETS]})


def test_periods_overlapping_a_week() -> None:
    assert [p.start.day for p in periods("day", W.MON, W.WEEK.end)] == list(range(16, 23))
    spanning = Week(2026, 44)  # Mon 26 Oct - Sun 1 Nov
    assert [(p.start, p.end) for p in periods("month", spanning.start, spanning.end)] == [
        (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
        (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    ]


def test_budget_lines_of_a_week(ledger_engine: Engine) -> None:
    fill(ledger_engine)
    r = build_report(ledger_engine, W.WEEK, now=W.AFTER, **report_inputs(ledger_engine, CONFIG))
    months = {(b.tenant, b.budget): b for b in r.cost.month_budgets}
    assert set(months) == {
        ("acme", "month-spend"),
        ("acme", "month-tokens-iw-acme"),
        ("globex", "month-spend"),
        ("hooli", "month-spend"),
        ("initech", "month-spend"),
    }
    # November until the end of W47: Sun 1 Nov, W45, W46 and W47 (the hits were charged nothing)
    acme = months[("acme", "month-spend")]
    assert (acme.label, acme.used, acme.limit, acme.state, acme.complete) == (
        "2026-11",
        pytest.approx(10 + 76 + 76 + 104),
        300,
        "soft_limit",
        False,
    )
    assert acme.remaining == pytest.approx(300 - 266) and acme.counted_until == W.WEEK.end
    # 150 tokens a request, 2 a day; W47 adds the 503's 100 prompt tokens and 5 hits of 150
    assert months[("acme", "month-tokens-iw-acme")].used == 2 * 150 + 2 * 14 * 150 + 14 * 150 + 100 + 5 * 150
    assert months[("globex", "month-spend")].used == pytest.approx(2.0 + 3 * 15.2 + 0.001)
    assert months[("initech", "month-spend")].used == pytest.approx(0.5 * 15)
    assert (months[("hooli", "month-spend")].used, months[("hooli", "month-spend")].state) == (0, "ok")

    [daily] = r.cost.daily_budgets  # 300 tokens a day (75%, past the 50% soft limit); Tue +750, Wed +100: used up
    assert (daily.tenant, daily.budget, daily.days, daily.days_soft, daily.days_exceeded) == (
        "acme",
        "day-tokens",
        7,
        5,
        2,
    )
    assert (daily.peak.label, daily.peak.used, daily.peak.state) == ("2026-11-17", 1050, "exceeded")

    # the same numbers as the gateway's own count of a whole period (October, in W44)
    w44 = build_report(ledger_engine, Week(2026, 44), now=W.AFTER, **report_inputs(ledger_engine, CONFIG))
    acme_month = [b for b in w44.cost.month_budgets if b.tenant == "acme" and b.budget == "month-spend"]
    october = next(b for b in acme_month if b.label == "2026-10")
    [gateway_count] = billed(ledger_engine, "acme", [ACME_BUDGETS[0]], datetime(2026, 10, 20, tzinfo=UTC))
    assert october.complete and october.used == pytest.approx(gateway_count.used) == pytest.approx(76 + 66)
    assert [b.label for b in acme_month] == ["2026-10", "2026-11"]


def test_a_week_in_progress_counts_budgets_until_its_last_full_hour(ledger_engine: Engine) -> None:
    fill(ledger_engine)
    now = W.MON + timedelta(days=2, hours=10, minutes=30)  # Wednesday 10:30: acme's 09:13 request only
    r = build_report(ledger_engine, W.WEEK, now=now, **report_inputs(ledger_engine, CONFIG))
    days = [b for b in r.cost.budgets or () if b.budget == "day-tokens"]
    assert [(b.label, b.used, b.complete) for b in days] == [
        ("2026-11-16", 300, True),
        ("2026-11-17", 1050, True),
        ("2026-11-18", 150, False),
    ]
    assert days[-1].counted_until == now.replace(minute=0)


def test_cache_hit_rate_and_savings_by_tenant_and_model(ledger_engine: Engine) -> None:
    fill(ledger_engine)
    r = build_report(ledger_engine, W.WEEK, now=W.AFTER, **report_inputs(ledger_engine, CONFIG))
    c = r.cache
    assert c is not None and c.enabled
    # acme: 15 requests + 5 hits, 13 lookups; globex: 14 + 1, 4 lookups. A hit of chat@v1 would have
    # cost (100 * 1000 + 50 * 2000) / 1e6.
    assert (c.totals.requests, c.totals.lookups, c.totals.hits, c.totals.hit_rate) == (35, 17, 6, pytest.approx(6 / 17))
    assert c.prev_hit_rate == 0.0  # the week before: acme's 14 chat@v1 lookups, no hit
    assert c.totals.hits == r.totals.cache_hits  # the same rollups as the usage table
    tenants = {x.name: x for x in c.by_tenant}
    assert [x.name for x in c.by_tenant] == ["acme", "globex"]  # most hits first; no row for tenants without traffic
    assert (tenants["acme"].hit_rate, tenants["acme"].saved_usd) == (pytest.approx(5 / 13), pytest.approx(5 * 0.2))
    assert (tenants["globex"].hit_rate, tenants["globex"].saved_usd) == (0.25, pytest.approx(0.002 - 0.001))
    assert c.totals.saved_usd == pytest.approx(1.001)
    models = {x.name: x for x in c.by_model}
    assert (models["chat · chat@v1"].hits, models["chat · chat@v1"].requests) == (5, 8 + 5)
    assert models["chat · chat@v2"].hits == 0 and models["chat · chat@v2"].saved_usd == 0
    assert "current prices" in c.method

    md = render.markdown(r)
    assert (
        "6 of 17 cacheable requests answered from the cache (35.3%, 0.0% the week before; 35 requests in all), "
        "about $1.00 saved."
    ) in md
    assert "| acme | 20 | 13 | 5 | 38.5% | $1.00 |" in md and "| chat · chat@v1 | 13 | 13 | 5 | 38.5% | $1.00 |" in md
    assert "| acme | month-spend | 2026-11 (to date) | $300.00 | $266.00 | $34.00 | 88.7% | soft_limit |" in md
    assert "| acme | day-tokens | 400 tokens | 7 | 5 | 2 | 2026-11-17 | 1,050 tokens (262.5%) |" in md
    assert "Cache: 35.3% of cacheable requests answered from the cache, about $1.00 saved" in render.summary(r)
    html = render.html(r)
    assert "<h3>Response cache</h3>" in html and "cache hit rate</div>" in html and "day-tokens" in html


def test_without_the_cache_or_budgets_the_sections_say_so(ledger_engine: Engine) -> None:
    W.fill(ledger_engine, W.records(), extras=False)
    off = GatewayConfig()  # no budgets, cache off, no hits
    r = build_report(ledger_engine, W.WEEK, now=W.AFTER, **report_inputs(ledger_engine, off))
    assert r.cost.budgets is None and r.cache is None
    # hits from before the cache was switched off still show, marked as such
    with ledger_engine.begin() as conn:
        write_records(conn, hits(), DEFAULT_BUCKETS)
    r = build_report(ledger_engine, W.WEEK, now=W.AFTER, **report_inputs(ledger_engine, off))
    assert r.cache is not None and not r.cache.enabled and r.cache.totals.hits == 6
    assert "The cache is switched off now." in render.markdown(r)


def test_service_and_cli_use_the_gateway_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = W.data_dir_ledger(tmp_path, monkeypatch)
    try:
        fill(engine)
        svc = ReportService(
            engine, ReportsConfig(), tmp_path / "reports", **report_inputs(engine, CONFIG), clock=lambda: W.AFTER
        )
        assert svc.build().cache.totals.hits == 6  # type: ignore[union-attr]
    finally:
        engine.dispose()
    config = tmp_path / "inferwatch.yaml"
    config.write_text(yaml.safe_dump({"gateway": CONFIG.model_dump(mode="json")}), encoding="utf-8")
    res = CliRunner().invoke(
        cli,
        [
            "report",
            "weekly",
            "--week",
            "2026-W47",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path),
            "--format",
            "json",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["cache"]["totals"]["hits"] == 6 and body["cache"]["totals"]["saved_usd"] == pytest.approx(1.001)
    acme = next(b for b in body["cost"]["budgets"] if b["tenant"] == "acme" and b["budget"] == "month-spend")
    assert (acme["used"], acme["state"], acme["remaining"]) == (pytest.approx(266), "soft_limit", pytest.approx(34))
