"""Hourly rollups: always the minute rollups summed per hour, replays and migration included."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, column, select, table, text

from ledger.db import create_engine_for, downgrade, migrate
from ledger.models import (
    UTCDateTime,
    RequestRollupBucketHour,
    RequestRollupBucketMinute,
    RequestRollupHour,
    RequestRollupMinute,
)
from ledger.rollups import ROLLUP_KEY, ROLLUP_VALUES
from ledger.testing import random_records
from tests.ledger._support import drain

T0 = datetime(2025, 1, 6, 11, 23, tzinfo=timezone.utc)  # not on an hour
BUCKET_KEY = ("tenant", "alias", "model_version", "status_class", "metric", "le")


def _summed_minutes(engine: Engine) -> tuple[dict, dict]:
    """The minute tables summed per hour, in Python."""
    rollups: dict = defaultdict(lambda: [0.0] * len(ROLLUP_VALUES))
    buckets: dict = defaultdict(int)
    with engine.connect() as c:
        for row in c.execute(select(RequestRollupMinute)).mappings():
            acc = rollups[(row["minute"].replace(minute=0), *(row[k] for k in ROLLUP_KEY[1:]))]
            for i, v in enumerate(ROLLUP_VALUES):
                acc[i] += row[v]
        for row in c.execute(select(RequestRollupBucketMinute)).mappings():
            buckets[(row["minute"].replace(minute=0), *(row[k] for k in BUCKET_KEY))] += row["count"]
    return dict(rollups), dict(buckets)


def _hours(engine: Engine) -> tuple[dict, dict]:
    with engine.connect() as c:
        rollups = {
            (row["hour"], *(row[k] for k in ROLLUP_KEY[1:])): [row[v] for v in ROLLUP_VALUES]
            for row in c.execute(select(RequestRollupHour)).mappings()
        }
        buckets = {
            (row["hour"], *(row[k] for k in BUCKET_KEY)): row["count"]
            for row in c.execute(select(RequestRollupBucketHour)).mappings()
        }
    return rollups, buckets


def _assert_agree(engine: Engine) -> None:
    want, want_buckets = _summed_minutes(engine)
    got, got_buckets = _hours(engine)
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    assert got_buckets == want_buckets


def test_hourly_rollups_are_the_minutes_summed_and_replays_count_once(ledger_engine: Engine, make_writer):
    records = random_records(1500, seed=21, start=T0, minutes=200)  # four hours, two of them partial
    w = make_writer(ledger_engine, batch_size=70)  # batches straddle hours
    for r in records:
        w.submit(r)
    drain(w)
    _assert_agree(ledger_engine)
    got, _ = _hours(ledger_engine)
    assert {k[0] for k in got} == {T0.replace(minute=0) + timedelta(hours=h) for h in range(4)}
    before = got
    for r in records[::3]:  # a replay of records already stored
        w.submit(r)
    drain(w)
    assert _hours(ledger_engine)[0] == before
    inc = ROLLUP_VALUES.index("safety_incidents_input")
    assert sum(v[inc] for v in before.values()) == sum(
        any(h.direction == "input" and h.action in ("block", "flag") for h in r.safety) for r in records
    )


def test_migration_fills_the_hourly_rollups_from_the_minutes(ledger_url: str) -> None:
    downgrade(ledger_url, "0004")
    engine = create_engine_for(ledger_url)
    try:
        old_values = [v for v in ROLLUP_VALUES if not v.startswith("safety_incidents_") and v != "cache_lookups"]
        rows = [
            {
                "minute": T0 + timedelta(minutes=m),
                "tenant": "acme",
                "alias": "chat",
                "model_version": "",
                "operation": "chat",
                "status_class": "2xx" if m % 3 else "5xx",
                "error_type": "",
                **{v: m + 1 for v in old_values},
            }
            for m in range(0, 130, 7)
        ]
        brows = [
            {
                "minute": T0 + timedelta(minutes=m),
                "tenant": "acme",
                "alias": "chat",
                "model_version": "",
                "status_class": "2xx",
                "metric": "ttft",
                "le": 0.5,
                "count": m,
            }
            for m in range(0, 130, 11)
        ]
        # the 0004 schema: the models' new columns are not there yet
        old = table(
            "request_rollups_minute", column("minute", UTCDateTime()), *(column(k) for k in rows[0] if k != "minute")
        )
        oldb = table(
            "request_rollup_buckets_minute",
            column("minute", UTCDateTime()),
            *(column(k) for k in brows[0] if k != "minute"),
        )
        with engine.begin() as c:
            c.execute(old.insert(), rows)
            c.execute(oldb.insert(), brows)
        migrate(engine)
        _assert_agree(engine)
        got, got_buckets = _hours(engine)
        assert len({k[0] for k in got}) == 3 and sum(got_buckets.values()) == sum(r["count"] for r in brows)
        req = ROLLUP_VALUES.index("requests")
        assert sum(v[req] for v in got.values()) == sum(r["requests"] for r in rows)
        # 0007: rows from before lookups were recorded count their hits as lookups (every hit was one)
        with engine.connect() as c:
            for t in ("request_rollups_minute", "request_rollups_hour"):
                hits, lookups = c.execute(text(f"SELECT sum(cache_hits), sum(cache_lookups) FROM {t}")).one()
                assert lookups == hits == sum(r["cache_hits"] for r in rows)
        downgrade(engine, "0004")  # and back
        migrate(engine)
        _assert_agree(engine)
    finally:
        engine.dispose()
