import asyncio
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, func, select

from ledger.models import SafetyHitRow
from ledger.queries import get_record
from ledger.record import SafetyHit
from ledger.testing import make_record, random_records
from tests.ledger._support import counts, drain


def test_records_round_trip_with_exact_values(ledger_engine: Engine, make_writer):
    full = make_record(
        request_id="rt-full",
        started_at=datetime(2025, 3, 9, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        tenant="tenant-ü",
        key_id="iw-k1",
        operation="text_completion",
        alias="mistral-7b-instruct",
        model_version="sha256:abc@v3",
        upstream="http://10.0.0.7:8000/v1",
        status_code=206,
        error_type=None,
        latency_s=1.2345678901234567,
        ttft_s=0.1 + 0.2,
        tpot_s=1e-7,
        prompt_tokens=2**31 - 1,
        completion_tokens=0,
        cost_usd=0.000123456789,
        stream=True,
        finish_reason="length",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        client_disconnected=True,
        cache_hit=True,
        retries=3,
        priority="batch",
        fallback_from="mistral-7b@gpu",
        attempts=[
            {"version": "mistral-7b@gpu", "upstream": None, "status": None, "reason": "queue_full"},
            {"version": "sha256:abc@v3", "upstream": "http://10.0.0.7:8000/v1", "status": 206, "reason": None},
        ],
        safety=[
            SafetyHit("input", "pii", "presidio", "redact", 0.87, "call me at [PHONE] ✓"),
            SafetyHit("output", "S1", "llamaguard", "block", 1.0, None),
        ],
    )
    sparse = make_record(
        request_id="rt-sparse",
        key_id=None,
        model_version=None,
        upstream=None,
        status_code=503,
        error_type="no_healthy_upstream",
        latency_s=0.0,
        ttft_s=None,
        tpot_s=None,
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=0.0,
        finish_reason=None,
    )
    w = make_writer(ledger_engine)
    w.submit(full)
    w.submit(sparse)
    drain(w)

    with ledger_engine.connect() as c:
        got_full, got_sparse = get_record(c, "rt-full"), get_record(c, "rt-sparse")
        assert get_record(c, "nope") is None
    assert got_full == full
    assert got_full.started_at.tzinfo == timezone.utc
    assert got_full.started_at.isoformat() == "2025-03-10T04:59:59.999999+00:00"
    assert got_sparse == sparse


def test_every_submitted_record_is_written_once(ledger_engine: Engine, make_writer):
    records = random_records(700, seed=3)
    w = make_writer(ledger_engine, batch_size=64)
    for r in records:
        w.submit(r)
    drain(w)
    hits = sum(len(r.safety) for r in records)
    assert counts(ledger_engine) == (700, 700)
    with ledger_engine.connect() as c:
        assert c.execute(select(func.count()).select_from(SafetyHitRow)).scalar_one() == hits
    st = w.stats()
    assert (st.written_total, st.dropped_total, st.spooled_total, st.queue_depth) == (700, 0, 0, 0)


async def test_submit_from_threads_and_asyncio_at_once(ledger_engine: Engine, make_writer):
    records = random_records(1000, seed=4)
    w = make_writer(ledger_engine, batch_size=50, queue_size=200)  # small queue: some spill
    chunks = [records[i::5] for i in range(5)]
    threads = [threading.Thread(target=lambda c=c: [w.submit(r) for r in c]) for c in chunks[:4]]
    for t in threads:
        t.start()
    for r in chunks[4]:
        w.submit(r)
        await asyncio.sleep(0)
    for t in threads:
        t.join()
    drain(w)
    assert counts(ledger_engine) == (1000, 1000)
    st = w.stats()
    assert (st.written_total, st.dropped_total, st.spool_files) == (1000, 0, 0)
