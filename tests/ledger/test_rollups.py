import math
from collections import defaultdict
from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ledger.buckets import DEFAULT_BUCKETS
from ledger.models import Request, RequestRollupBucketMinute, RequestRollupMinute, SafetyHitRow
from ledger.queries import minute_series
from ledger.testing import make_record, random_records
from tests.ledger._support import drain

SUMS = ("prompt_tokens", "completion_tokens", "cost_usd")


def _expected_from_raw_rows(engine: Engine):
    """Rollups recomputed independently from the stored raw rows."""
    with engine.connect() as c:
        rows = c.execute(select(Request)).mappings().all()
        hits = c.execute(select(SafetyHitRow.request_id, SafetyHitRow.action, SafetyHitRow.direction)).all()
    flagged = {rid for rid, _, _ in hits}
    blocked = {rid for rid, action, _ in hits if action == "block"}
    incidents = {
        d: {rid for rid, action, dd in hits if dd == d and action in ("block", "flag")} for d in ("input", "output")
    }
    roll: dict = defaultdict(lambda: defaultdict(float))
    buckets: dict = defaultdict(int)
    for r in rows:
        minute = r["started_at"].replace(second=0, microsecond=0)
        key = (
            minute,
            r["tenant"],
            r["alias"],
            r["model_version"] or "",
            r["operation"],
            r["status_class"],
            r["error_type"] or "",
        )
        acc = roll[key]
        acc["requests"] += 1
        for s in SUMS:
            acc[s] += r[s]
        acc["latency_sum_s"] += r["latency_s"]
        for m in ("ttft", "tpot"):
            if r[f"{m}_s"] is not None:
                acc[f"{m}_sum_s"] += r[f"{m}_s"]
                acc[f"{m}_count"] += 1
        acc["safety_flagged"] += r["request_id"] in flagged
        acc["safety_blocked"] += r["request_id"] in blocked
        for d in ("input", "output"):
            acc[f"safety_incidents_{d}"] += r["request_id"] in incidents[d]
        acc["client_disconnects"] += r["client_disconnected"]
        acc["cache_hits"] += r["cache_hit"]
        acc["cache_lookups"] += r["cache_lookup"]
        for m in ("latency", "ttft", "tpot"):
            v = r[f"{m}_s"]
            le = next((b for b in DEFAULT_BUCKETS[m] if v is not None and v <= b), None)
            if le is not None:
                buckets[(minute, r["tenant"], r["alias"], r["model_version"] or "", r["status_class"], m, le)] += 1
    return roll, buckets


def test_rollups_equal_sums_over_raw_rows(ledger_engine: Engine, make_writer):
    records = random_records(600, seed=11, minutes=7)
    w = make_writer(ledger_engine, batch_size=50)  # many batches: upserts must add up
    for r in records:
        w.submit(r)
    drain(w)

    expected, expected_buckets = _expected_from_raw_rows(ledger_engine)
    with Session(ledger_engine) as s:
        got = {
            (r.minute, r.tenant, r.alias, r.model_version, r.operation, r.status_class, r.error_type): r
            for r in s.scalars(select(RequestRollupMinute))
        }
        got_buckets = {
            (b.minute, b.tenant, b.alias, b.model_version, b.status_class, b.metric, b.le): b.count
            for b in s.scalars(select(RequestRollupBucketMinute))
        }
    assert len({k[0] for k in got}) >= 7 and len({k[1] for k in got}) == 3
    assert {k[3] for k in got} == {"m@v1", "m@v2", ""}
    assert set(got) == set(expected)
    for key, exp in expected.items():
        row = got[key]
        for col, val in exp.items():
            assert getattr(row, col) == pytest.approx(val, rel=1e-9, abs=1e-12), (key, col)
        for col in (
            "ttft_count",
            "tpot_count",
            "safety_flagged",
            "safety_blocked",
            "client_disconnects",
            "cache_hits",
            "cache_lookups",
            "safety_incidents_input",
            "safety_incidents_output",
        ):
            assert getattr(row, col) == exp.get(col, 0), (key, col)
    assert got_buckets == expected_buckets
    # values above the largest bound have no bucket row, but are in the totals
    over = sum(1 for r in records if r.latency_s > DEFAULT_BUCKETS["latency"][-1])
    in_buckets = sum(n for k, n in got_buckets.items() if k[5] == "latency")
    assert over > 0 and in_buckets == len(records) - over


def test_bucket_boundaries_and_threshold_counts(ledger_engine: Engine, make_writer):
    bounds = {"latency": (0.1, 0.5, 1.0), "ttft": (0.2,), "tpot": (0.05,)}
    t = datetime(2025, 2, 1, 8, 30, 5, tzinfo=timezone.utc)
    latencies = [0.0, 0.1, 0.1, math.nextafter(0.1, 1), 0.5, 0.7, 1.0, math.nextafter(1.0, 2), 30.0]
    w = make_writer(ledger_engine, buckets=bounds)
    for i, v in enumerate(latencies):
        w.submit(make_record(request_id=f"b{i}", started_at=t, latency_s=v, ttft_s=0.2, tpot_s=None))
    drain(w)

    with ledger_engine.connect() as c:
        rows = c.execute(
            select(RequestRollupBucketMinute.metric, RequestRollupBucketMinute.le, RequestRollupBucketMinute.count)
        ).all()
        series = {
            thr: minute_series(c, t, t.replace(minute=31), metric="latency", threshold=thr) for thr in (0.1, 0.5, 1.0)
        }
    got = {(m, le): n for m, le, n in rows}
    assert got == {("latency", 0.1): 3, ("latency", 0.5): 2, ("latency", 1.0): 2, ("ttft", 0.2): 9}
    assert [series[thr][0].under_threshold for thr in (0.1, 0.5, 1.0)] == [3, 5, 7]
    assert series[0.1][0].requests == series[0.1][0].metric_count == 9
