"""The console's queries on SQLite and PostgreSQL: keyset pages return every matching row once,
newest first; traffic and daily usage equal the usage query's sums; histogram quantiles."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from console import queries as q
from ledger.buckets import DEFAULT_BUCKETS
from ledger.queries import usage
from ledger.store import write_records
from ledger.testing import random_records

T0 = datetime(2025, 1, 6, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def records(ledger_engine: Engine) -> list:
    recs = random_records(300, seed=3, start=T0, minutes=200)
    recs[5].started_at = recs[6].started_at  # a tie on started_at: the request id breaks it
    with ledger_engine.begin() as conn:
        write_records(conn, recs, DEFAULT_BUCKETS)
    return recs


def pages(engine: Engine, f: q.RequestFilter, limit: int) -> list[str]:
    out, cursor = [], None
    with engine.connect() as conn:
        while True:
            rows = q.find_requests(conn, f, after=cursor, limit=limit)
            out += [r.request_id for r in rows]
            if len(rows) < limit:
                return out
            cursor = (rows[-1].started_at, rows[-1].request_id)


@pytest.mark.parametrize(
    "f, keep",
    [
        (q.RequestFilter(), lambda r: True),
        (q.RequestFilter(tenant="acme", status="5xx"), lambda r: r.tenant == "acme" and r.status_code >= 500),
        (q.RequestFilter(status="429"), lambda r: r.status_code == 429),
        (q.RequestFilter(error_type="upstream_error"), lambda r: r.error_type == "upstream_error"),
        (q.RequestFilter(safety_action="block"), lambda r: any(h.action == "block" for h in r.safety)),
        (
            q.RequestFilter(start=T0 + timedelta(minutes=30), end=T0 + timedelta(minutes=90)),
            lambda r: T0 + timedelta(minutes=30) <= r.started_at < T0 + timedelta(minutes=90),
        ),
    ],
)
def test_keyset_pages_hold_every_match_once_newest_first(
    ledger_engine: Engine, records: list, f: q.RequestFilter, keep
) -> None:
    newest_first = sorted((r for r in records if keep(r)), key=lambda r: (r.started_at, r.request_id), reverse=True)
    want = [r.request_id for r in newest_first]
    assert want, "the filter matches something"
    assert pages(ledger_engine, f, limit=7) == want


def test_traffic_and_daily_usage_equal_the_usage_query(ledger_engine: Engine, records: list) -> None:
    day_start, day_end = datetime(2025, 1, 6, tzinfo=timezone.utc), datetime(2025, 1, 7, tzinfo=timezone.utc)
    with ledger_engine.connect() as conn:
        rows = usage(conn, day_start, day_end)
        hourly_rows = q.daily_usage(conn, day_start, day_end)
        without_cost = [dataclasses.replace(r, cost_usd=0) for r in rows]
        assert [dataclasses.replace(r, cost_usd=0) for r in hourly_rows] == without_cost
        # summed in another order
        assert [r.cost_usd for r in hourly_rows] == pytest.approx([r.cost_usd for r in rows], abs=1e-10)
        for hourly in (True, False):
            t = q.total(q.traffic(conn, day_start, day_end, hourly=hourly))
            assert t.requests == sum(r.requests for r in rows) == len(records)
            assert t.prompt_tokens == sum(r.prompt_tokens for r in rows)
            assert t.cost_usd == pytest.approx(sum(r.cost_usd for r in rows))
            assert t.server_errors == sum(1 for r in records if r.status_code >= 500)
            assert t.answered == sum(1 for r in records if r.status_code < 300)


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    buckets = {0.1: 10, 0.5: 30, 1.0: 10}  # 50 counted, 10 more above 1.0
    assert q.histogram_quantile(0.5, buckets, 60) == pytest.approx(0.1 + 0.4 * (30 - 10) / 30)
    assert q.histogram_quantile(0.99, buckets, 60) == 1.0  # among the values above the last bound
    assert q.histogram_quantile(0.5, {}, 0) is None
