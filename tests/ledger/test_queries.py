from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ledger.db import create_engine_for
from ledger.models import RequestRollupMinute, SafetyHitRow
from ledger.queries import MinutePoint, canary_samples, minute_series, purge_raw_rows, usage
from ledger.record import SafetyHit
from ledger.testing import make_record
from tests.ledger._support import counts, drain

T0 = datetime(2025, 1, 6, 23, 58, 10, tzinfo=timezone.utc)  # two minutes before midnight UTC


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def loaded(ledger_engine: Engine, make_writer) -> Engine:
    """A small hand-made traffic pattern across two UTC days, tenants and versions."""
    recs = [
        # day 1, acme, chat -> v1
        make_record(
            request_id="a1",
            started_at=_at(0),
            tenant="acme",
            alias="chat",
            model_version="v1",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=0.25,
            latency_s=0.3,
            ttft_s=0.05,
        ),
        make_record(
            request_id="a2",
            started_at=_at(0.5),
            tenant="acme",
            alias="chat",
            model_version="v1",
            status_code=500,
            error_type="upstream_error",
            prompt_tokens=7,
            completion_tokens=0,
            cost_usd=0.0,
            latency_s=2.0,
            ttft_s=None,
            tpot_s=None,
        ),
        make_record(
            request_id="a3",
            started_at=_at(1),
            tenant="acme",
            alias="chat",
            model_version="v2",
            prompt_tokens=1,
            completion_tokens=2,
            cost_usd=0.5,
            latency_s=1.0,
            ttft_s=0.5,
        ),
        make_record(
            request_id="g1",
            started_at=_at(1.2),
            tenant="globex",
            alias="chat",
            model_version="v1",
            status_code=429,
            error_type="rate_limited",
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
            latency_s=0.001,
            ttft_s=None,
            tpot_s=None,
        ),
        # day 2
        make_record(
            request_id="a4",
            started_at=_at(3),
            tenant="acme",
            alias="chat",
            model_version="v2",
            prompt_tokens=100,
            completion_tokens=50,
            cost_usd=1.0,
            latency_s=5.0,
            ttft_s=1.0,
            safety=[SafetyHit("input", "pii", "regex", "redact", 0.9, "[EMAIL]")],
        ),
        make_record(
            request_id="a5",
            started_at=_at(3.5),
            tenant="acme",
            alias="code",
            model_version=None,
            status_code=400,
            error_type="invalid_request",
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
            latency_s=0.002,
            ttft_s=None,
            tpot_s=None,
        ),
    ]
    w = make_writer(ledger_engine)
    for r in recs:
        w.submit(r)
    drain(w)
    return ledger_engine


def test_usage_per_tenant_by_day_alias_and_version(loaded: Engine):
    d1, d2 = date(2025, 1, 6), date(2025, 1, 7)
    with Session(loaded) as s:
        acme = usage(s, T0 - timedelta(hours=1), T0 + timedelta(hours=1), tenant="acme")
        everyone = usage(s, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
        day2_only = usage(s, datetime(2025, 1, 7, tzinfo=timezone.utc), T0 + timedelta(hours=1))
    got = {
        (u.day, u.alias, u.model_version): (u.requests, u.prompt_tokens, u.completion_tokens, u.cost_usd) for u in acme
    }
    assert got == {
        (d1, "chat", "v1"): (2, 17, 5, 0.25),
        (d1, "chat", "v2"): (1, 1, 2, 0.5),
        (d2, "chat", "v2"): (1, 100, 50, 1.0),
        (d2, "code", None): (1, 0, 0, 0.0),
    }
    assert {u.tenant for u in acme} == {"acme"}
    assert {u.tenant for u in everyone} == {"acme", "globex"}
    assert sum(u.requests for u in everyone) == 6
    assert {u.day for u in day2_only} == {d2}


def test_minute_series_with_selectors_and_threshold(loaded: Engine):
    start, end = T0 - timedelta(minutes=5), T0 + timedelta(minutes=10)
    with loaded.connect() as c:
        chat = minute_series(c, start, end, alias="chat", metric="latency", threshold=1.28)
        v1 = minute_series(c, start, end, model_version="v1")
        globex = minute_series(c, start, end, tenant="globex")
        ok_ttft = minute_series(c, start, end, metric="ttft", threshold=0.5, metric_status_classes=["2xx"])
        none = minute_series(c, start, end, tenant="nobody")
        with pytest.raises(ValueError):
            minute_series(c, start, end, metric="latency")
    m0, m1, m3 = (T0.replace(second=0) + timedelta(minutes=k) for k in (0, 1, 3))
    assert [p.minute for p in chat] == [m0, m1, m3]
    assert chat[0] == MinutePoint(m0, 2, {"2xx": 1, "5xx": 1}, {"upstream_error": 1}, 2, 1)
    assert chat[1] == MinutePoint(m1, 2, {"2xx": 1, "4xx": 1}, {"rate_limited": 1}, 2, 2)
    assert chat[2] == MinutePoint(m3, 1, {"2xx": 1}, {}, 1, 0)
    assert [(p.minute, p.requests) for p in v1] == [(m0, 2), (m1, 1)]
    assert v1[0].metric_count is None and v1[0].under_threshold is None
    assert [(p.minute, p.by_status_class) for p in globex] == [(m1, {"4xx": 1})]
    assert [(p.metric_count, p.under_threshold) for p in ok_ttft] == [(1, 1), (1, 1), (1, 0)]
    assert none == []


def test_canary_samples_per_version(loaded: Engine):
    with loaded.connect() as c:
        s = canary_samples(c, ["v1", "v2", "v9"], T0 - timedelta(minutes=1), T0 + timedelta(minutes=10))
        latest = canary_samples(c, ["v2"], T0, T0 + timedelta(minutes=10), limit_per_version=1)
        chat_acme = canary_samples(c, ["v1"], T0, T0 + timedelta(minutes=10), alias="chat", tenant="acme")
    assert [x.request_id for x in s["v1"]] == ["a1", "a2", "g1"]
    assert [x.request_id for x in s["v2"]] == ["a3", "a4"]
    assert s["v9"] == []
    a1, a2, g1 = s["v1"]
    assert (a1.error, a2.error, g1.error) == (False, True, False)
    assert a1.latency_s == 0.3 and a1.ttft_s == 0.05 and a1.cost_usd == 0.25
    assert a1.output_tokens_per_s == pytest.approx(5 / 0.3)
    assert a2.output_tokens_per_s is None and a2.ttft_s is None
    assert [x.request_id for x in latest["v2"]] == ["a4"]
    assert [x.request_id for x in chat_acme["v1"]] == ["a1", "a2"]


def test_purge_deletes_raw_rows_and_safety_hits_but_keeps_rollups(loaded: Engine):
    with Session(loaded) as s:
        before = s.execute(select(func.sum(RequestRollupMinute.requests), func.sum(RequestRollupMinute.cost_usd))).one()
        deleted = purge_raw_rows(s, _at(3.2))  # everything but a5
        s.commit()
    assert deleted == 5
    with Session(loaded) as s:
        after = s.execute(select(func.sum(RequestRollupMinute.requests), func.sum(RequestRollupMinute.cost_usd))).one()
        hits = s.execute(select(func.count()).select_from(SafetyHitRow)).scalar_one()
    assert tuple(after) == tuple(before)
    assert hits == 0  # a4's hit went with it
    assert counts(loaded) == (1, 6)


def test_usage_days_are_utc_days_whatever_the_session_time_zone(loaded: Engine):
    if loaded.dialect.name != "postgresql":
        pytest.skip("session time zones are a PostgreSQL matter")
    tokyo = create_engine_for(loaded.url, connect_args={"options": "-c timezone=Asia/Tokyo"})
    try:
        with tokyo.connect() as c:
            assert c.exec_driver_sql("SHOW timezone").scalar_one() == "Asia/Tokyo"
            rows = usage(c, T0 - timedelta(hours=1), T0 + timedelta(hours=1), tenant="acme")
    finally:
        tokyo.dispose()
    assert sorted({u.day for u in rows}) == [date(2025, 1, 6), date(2025, 1, 7)]
    assert sum(u.requests for u in rows if u.day == date(2025, 1, 6)) == 3
