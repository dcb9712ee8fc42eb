from __future__ import annotations

import math
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from ledger.db import create_engine_for
from slo.cache import SeriesCache
from slo.evaluator import to_minute
from slo.service import SLOService

from tests.slo._support import T0, mixed_hour, outage, rec, slos, write

NOW = T0 + timedelta(minutes=60)


def by_name(statuses):
    return {s.slo.name: s for s in statuses}


def test_known_answers_on_a_mixed_hour(ledger_engine: Engine) -> None:
    write(ledger_engine, mixed_hour())
    st = by_name(SLOService(ledger_engine, slos()).evaluate_all(NOW))

    a = st["avail"].evaluation
    # valid: 60 x 5 acme successes + 6 globex 503s (the 429s are the client's fault)
    assert (a.good, a.total) == (300, 306)
    assert a.sli == pytest.approx(300 / 306)
    assert a.budget_remaining == pytest.approx(1 - (6 / 306) / 0.01)
    assert a.windows["1h"].burn_rate == pytest.approx((6 / 306) / 0.01)
    assert a.windows["5m"].burn_rate == 0.0 and a.time_to_exhaustion_s == 0.0  # overspent
    # 3d/6h ticket row: 0.9333 x 1% = 0.9333% < 1.96%; 1d/2h (2.8%) and the page rows do not fire
    assert st["avail"].status == "ticket" and not st["avail"].page

    acme = st["avail-acme"].evaluation
    assert (acme.good, acme.total, acme.sli, acme.budget_remaining) == (300, 300, 1.0, 1.0)
    assert st["avail-acme"].status == "ok" and acme.time_to_exhaustion_s is None

    ttft = st["ttft"].evaluation  # 0.2 s good, 0.31 s slow; only successes count
    assert (ttft.good, ttft.total) == (240, 300)
    assert ttft.sli == pytest.approx(0.8) and ttft.budget_remaining == pytest.approx(-1.0)
    e2e = st["e2e"].evaluation  # 0.8 s good, 2.0 s over 1.5 s
    assert (e2e.good, e2e.total) == (240, 300) and e2e.period_burn_rate == pytest.approx(4.0)
    assert st["e2e"].status == "ticket"  # 20% > 2.8 x 5% over 1d and 2h

    cost = st["cost"].evaluation  # 300 x 0.0005 USD over 366 requests, budget 1 USD per 1k
    assert cost.sli is None
    assert cost.cost_per_1k_usd == pytest.approx(0.15 / 366 * 1000)
    assert cost.budget_remaining == pytest.approx(1 - 0.15 / 0.366)
    five_min = (5 * 5 * 0.0005) / (5 * 6 / 1000)  # 5 successes and 6 requests a minute
    assert cost.current_burn_rate == pytest.approx(five_min)
    assert cost.time_to_exhaustion_s == pytest.approx((1 - 0.15 / 0.366) * 28 * 86400 / five_min)
    assert st["cost"].status == "ok"

    safety = st["safety"].evaluation  # no safety hits: every request counts, none is an incident
    assert (safety.good, safety.total, safety.sli) == (366, 366, 1.0) and st["safety"].status == "ok"


def test_synthetic_outage_pages(ledger_engine: Engine) -> None:
    write(ledger_engine, outage())  # 50 healthy minutes, then 10 minutes of 503s
    st = by_name(SLOService(ledger_engine, slos()).evaluate_all(NOW))
    a = st["avail"].evaluation
    assert a.windows["1h"].error_ratio == pytest.approx(100 / 600) and a.windows["5m"].error_ratio == 1.0
    assert st["avail"].page and st["avail"].status == "page"  # 16.7% > 13.44 x 1% over 1h and 5m
    assert st["e2e"].status == "ok"  # the successes were fast


def test_quiet_windows_do_not_poison_the_period(sqlite_engine: Engine) -> None:
    write(sqlite_engine, mixed_hour())
    later = by_name(SLOService(sqlite_engine, slos()).evaluate_all(T0 + timedelta(days=2)))["avail"]
    e = later.evaluation
    assert e.sli == pytest.approx(300 / 306)  # from the period's counts, not from empty windows
    assert e.windows["5m"].burn_rate is None and e.windows["1d"].burn_rate is None
    assert later.no_data and later.status == "no_data"
    assert all(v is None or math.isfinite(v) for v in later.burn_rates().values())


def test_history_is_recorded_and_returned(ledger_engine: Engine) -> None:
    write(ledger_engine, outage())
    svc = SLOService(ledger_engine, slos())
    for m in (58, 59, 60):
        svc.run_once(T0 + timedelta(minutes=m))
    rows = svc.history("avail")
    assert [r.evaluated_at for r in rows] == [T0 + timedelta(minutes=m) for m in (60, 59, 58)]
    assert rows[0].page and rows[0].status == "page"
    assert rows[0].burn_rates["5m"] == pytest.approx(100.0) and rows[0].total == 600
    assert len(svc.history("avail", since=T0 + timedelta(minutes=59))) == 2
    assert len(svc.history("avail", limit=1)) == 1
    assert len(svc.history("svc-avail")) == 3  # the id works as well as the name
    safety = svc.history("safety")[0]
    assert safety.status == "ok" and safety.sli == 1.0 and safety.total == 600
    with pytest.raises(KeyError):
        svc.history("nope")


def test_gauges_start_at_zero_and_follow_the_evaluation(sqlite_engine: Engine) -> None:
    write(sqlite_engine, mixed_hour())
    reg = CollectorRegistry()
    svc = SLOService(sqlite_engine, slos(), registry=reg)
    avail = {"slo": "avail", "service": "svc"}
    assert reg.get_sample_value("slo_sli_ratio", avail) == 0
    assert reg.get_sample_value("slo_burn_rate", {**avail, "window": "3d"}) == 0
    assert reg.get_sample_value("slo_alert_firing", {**avail, "severity": "page"}) == 0

    svc.run_once(NOW)
    assert reg.get_sample_value("slo_sli_ratio", avail) == pytest.approx(300 / 306)
    assert reg.get_sample_value("slo_error_budget_remaining_ratio", avail) == pytest.approx(1 - (6 / 306) / 0.01)
    assert reg.get_sample_value("slo_burn_rate", {**avail, "window": "1h"}) == pytest.approx((6 / 306) / 0.01)
    assert reg.get_sample_value("slo_burn_rate", {**avail, "window": "5m"}) == 0
    assert reg.get_sample_value("slo_alert_firing", {**avail, "severity": "ticket"}) == 1
    assert reg.get_sample_value("slo_alert_firing", {**avail, "severity": "page"}) == 0
    assert reg.get_sample_value("slo_no_data", avail) == 0
    assert reg.get_sample_value("slo_sli_ratio", {"slo": "safety", "service": "svc"}) == 1.0

    svc.run_once(T0 + timedelta(days=2))
    assert reg.get_sample_value("slo_no_data", avail) == 1
    assert math.isnan(reg.get_sample_value("slo_burn_rate", {**avail, "window": "5m"}))


def test_database_down_reports_errors_and_never_raises(sqlite_engine: Engine) -> None:
    write(sqlite_engine, mixed_hour())
    reg = CollectorRegistry()
    svc = SLOService(sqlite_engine, slos(), registry=reg)
    svc.run_once(NOW)
    dead = create_engine_for("postgresql://postgres@127.0.0.1:1/none")
    svc.engine = dead
    statuses = by_name(svc.run_once(NOW + timedelta(minutes=1)))
    assert statuses["avail"].status == "error" and "OperationalError" in statuses["avail"].reason
    assert statuses["safety"].status == "error"
    # the gauges keep the last known values rather than claiming "not firing"
    avail = {"slo": "avail", "service": "svc"}
    assert reg.get_sample_value("slo_sli_ratio", avail) == pytest.approx(300 / 306)
    assert reg.get_sample_value("slo_alert_firing", {**avail, "severity": "ticket"}) == 1
    svc.engine = sqlite_engine
    assert len(svc.history("avail")) == 1  # nothing recorded while the database was away
    dead.dispose()


def test_cache_rereads_recent_and_late_minutes_and_refreshes_fully(sqlite_engine: Engine) -> None:
    write(sqlite_engine, mixed_hour())
    clock = [0.0]
    cache = SeriesCache(
        settle_minutes=10, late_minutes=180, late_every_s=600, full_refresh_s=3600, clock=lambda: clock[0]
    )
    cached = SLOService(sqlite_engine, slos(), cache=cache)
    fresh = SLOService(sqlite_engine, slos(), cache=False)

    def totals(svc: SLOService) -> dict[str, float]:
        return {s.slo.name: s.evaluation.total for s in svc.evaluate_all(NOW) if s.evaluation}

    assert totals(cached) == totals(fresh)
    write(sqlite_engine, [rec(55), rec(55, status=503)])  # within the settle window
    assert totals(cached) == totals(fresh)
    write(sqlite_engine, [rec(5, status=503)])  # an old minute, as a spool replay writes it
    assert totals(cached)["avail"] == totals(fresh)["avail"] - 1  # not read again yet
    clock[0] = 600  # the late re-read goes back 3 hours
    assert totals(cached) == totals(fresh)
    write(sqlite_engine, [rec(-600, status=503)])  # 10 hours back
    clock[0] = 1200
    assert totals(cached)["avail"] == totals(fresh)["avail"] - 1
    clock[0] = 3600  # the full re-read
    assert totals(cached) == totals(fresh)


def test_after_a_failed_evaluation_the_cache_rereads_from_the_failure(sqlite_engine: Engine) -> None:
    write(sqlite_engine, mixed_hour())
    svc = SLOService(sqlite_engine, slos(), cache=SeriesCache(late_every_s=1e9, full_refresh_s=1e9))
    fresh = SLOService(sqlite_engine, slos(), cache=False)
    svc.evaluate_all(T0 + timedelta(minutes=30))
    dead = create_engine_for("postgresql://postgres@127.0.0.1:1/none")
    svc.engine = dead  # the ledger goes away at 12:31 ...
    assert by_name(svc.evaluate_all(T0 + timedelta(minutes=31)))["avail"].status == "error"
    svc.engine = sqlite_engine  # ... and is back at 13:00
    svc.evaluate_all(NOW)
    write(sqlite_engine, [rec(35, status=503)])  # then a spool replays a record of 12:35
    at = NOW + timedelta(minutes=2)  # its settle window starts at 12:50
    assert (
        by_name(svc.evaluate_all(at))["avail"].evaluation.total
        == by_name(fresh.evaluate_all(at))["avail"].evaluation.total
    )
    dead.dispose()


def test_current_serves_the_jobs_latest_statuses_while_fresh(sqlite_engine: Engine) -> None:
    write(sqlite_engine, outage())
    now = [NOW]
    svc = SLOService(sqlite_engine, slos(), clock=lambda: now[0])
    job = by_name(svc.run_once())
    assert by_name(svc.current())["avail"] is job["avail"]
    now[0] = NOW + timedelta(seconds=120)
    assert by_name(svc.current(max_age_s=90))["avail"].evaluated_at == now[0]


def test_duplicate_slo_ids_are_refused(sqlite_engine: Engine) -> None:
    items = slos()
    with pytest.raises(ValueError, match="duplicate"):
        SLOService(sqlite_engine, [*items, items[0]])


ORACLE = """\
service: svc
slos:
  - {name: avail, objective: 99, sli: {availability: {}}}
  - {name: avail-chat-acme, objective: 99, sli: {availability: {}}, selector: {model_alias: chat, tenant: acme}}
  - {name: ttft, objective: 90, sli: {latency: {metric: ttft, threshold: 0.5}}}
  - {name: e2e-v2, objective: 95, sli: {latency: {metric: e2e, threshold: 1.5}}, selector: {model_version: m@v2}}
  - {name: tpot-globex, objective: 95, sli: {latency: {metric: tpot, threshold: 0.1}}, selector: {tenant: globex}}
"""


def test_one_pass_read_agrees_with_the_ledgers_minute_series(ledger_engine: Engine) -> None:
    """ledger.queries.minute_series is the ledger's own reading of the rollups: an oracle."""
    from ledger.queries import minute_series
    from ledger.testing import random_records
    from slo.source import as_datetime, ledger_series_many, points_to_series

    items = slos(ORACLE)
    write(ledger_engine, random_records(600, seed=3, start=T0, minutes=20), items)
    start, end = as_datetime(to_minute(T0) - 5), as_datetime(to_minute(T0) + 25)
    with ledger_engine.connect() as conn:
        many = ledger_series_many(conn, items, start, end)
        for slo in items:
            sel = {
                k: v[0]
                for k, v in (
                    ("alias", slo.selector.model_alias),
                    ("model_version", slo.selector.model_version),
                    ("tenant", slo.selector.tenant),
                )
                if v
            }
            kw = {}
            if slo.kind == "latency":
                # end-to-end latency of successes; TTFT and TPOT of every request that has one
                kw = {
                    "metric": slo.sli.metric.ledger_metric,
                    "threshold": slo.sli.threshold_s,
                    "metric_status_classes": ["2xx"] if slo.sli.metric.ledger_metric == "latency" else None,
                }
            expected = points_to_series(slo, minute_series(conn, start, end, **sel, **kw))
            got = many[slo]
            assert got.total.sum() > 0, slo.name
            assert (got.start, list(got.good), list(got.total)) == (
                expected.start,
                list(expected.good),
                list(expected.total),
            ), slo.name
