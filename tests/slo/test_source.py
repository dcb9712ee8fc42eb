from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from ledger.buckets import DEFAULT_BUCKETS, with_thresholds
from ledger.db import create_engine_for, migrate
from ledger.queries import MinutePoint
from ledger.record import SafetyHit
from ledger.testing import make_record
from ledger.writer import LedgerWriter
from slo.source import UnsupportedSource, evaluate_ledger, points_to_series
from slo.spec import parse_specs
from slo.thresholds import thresholds_by_ledger_metric

SLOS = {
    s.name: s
    for s in parse_specs("""\
slos:
  - {name: avail, objective: 99, sli: {availability: {}}, selector: {tenant: [acme, globex]}}
  - {name: ttft, objective: 95, sli: {latency: {metric: ttft, threshold: 0.3}}}
  - {name: safety, objective: 99, sli: {safety_incidents: {direction: output}}}
  - {name: safety-in, objective: 99, sli: {safety_incidents: {direction: input}}}
""")
}
T0 = datetime(2025, 1, 6, 12, 0, tzinfo=timezone.utc)


def test_points_map_to_good_and_total() -> None:
    pts = [MinutePoint(T0, 10, {"2xx": 6, "4xx": 2, "5xx": 2}), MinutePoint(T0 + timedelta(minutes=2), 5, {"2xx": 5})]
    s = points_to_series(SLOS["avail"], pts)
    assert list(s.total) == [8, 0, 5] and list(s.good) == [6, 0, 5]  # 4xx excluded, gap filled
    lat = points_to_series(SLOS["ttft"], [MinutePoint(T0, 10, {"2xx": 10}, metric_count=9, under_threshold=7)])
    assert (lat.good[0], lat.total[0]) == (7, 9)
    with pytest.raises(UnsupportedSource):
        points_to_series(SLOS["safety"], pts)


def test_evaluate_from_a_sqlite_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrate(url)
    engine = create_engine_for(url)
    buckets = {m: with_thresholds(DEFAULT_BUCKETS[m], t) for m, t in thresholds_by_ledger_metric(SLOS.values()).items()}
    writer = LedgerWriter(engine, tmp_path / "spool", buckets=buckets, max_delay_s=0.01)
    try:
        at = lambda m: T0 + timedelta(minutes=m, seconds=5)  # noqa: E731
        flag_out, block_out = SafetyHit("output", "pii", "regex", "flag"), SafetyHit("output", "toxic", "clf", "block")
        redact_out, block_in = (
            SafetyHit("output", "pii", "regex", "redact"),
            SafetyHit("input", "jailbreak", "clf", "block"),
        )
        recs = [
            make_record(started_at=at(0), tenant="acme", ttft_s=0.3, safety=[flag_out]),  # at the threshold: good
            make_record(started_at=at(0), tenant="acme", ttft_s=0.31, safety=[redact_out, block_in]),  # slow
            make_record(
                started_at=at(1),
                tenant="acme",
                status_code=503,
                error_type="upstream_error",
                ttft_s=None,
                tpot_s=None,
                safety=[flag_out, block_out],
            ),
            make_record(
                started_at=at(1), tenant="globex", status_code=429, error_type="rate_limited", ttft_s=None, tpot_s=None
            ),
            make_record(
                started_at=at(2), tenant="initech", status_code=500, error_type="timeout", ttft_s=None, tpot_s=None
            ),
        ]
        for r in recs:
            writer.submit(r)
        assert writer.flush(30)
    finally:
        writer.close(timeout=5)
    with Session(engine) as s:
        avail = evaluate_ledger(s, SLOS["avail"], T0 + timedelta(minutes=3))
        ttft = evaluate_ledger(s, SLOS["ttft"], T0 + timedelta(minutes=3))
        out = evaluate_ledger(s, SLOS["safety"], T0 + timedelta(minutes=3))
        inp = evaluate_ledger(s, SLOS["safety-in"], T0 + timedelta(minutes=3))
    engine.dispose()
    # acme and globex only; the 429 is the client's fault; initech's 500 is out of scope
    assert (avail.good, avail.total) == (2, 3) and avail.error_ratio == pytest.approx(1 / 3)
    assert (ttft.good, ttft.total) == (1, 2)  # the 503 has no TTFT and is not a success
    # output incidents: the flag, and the flag plus block (one request, one incident); a
    # redaction is none. Every request counts, errors and 4xx included.
    assert (out.good, out.total) == (3, 5) and out.error_ratio == pytest.approx(2 / 5)
    assert (inp.good, inp.total) == (4, 5)  # the input block
