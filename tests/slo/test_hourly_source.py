"""Reading whole hours from the hourly rollups gives exactly what the minutes give."""

from __future__ import annotations

import random
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import Engine

from ledger.record import RequestRecord, SafetyHit
from ledger.testing import make_record
from slo.cache import SeriesCache
from slo.evaluator import Evaluation, period_bounds, to_minute
from slo.source import SHORT_WINDOW_MINUTES, evaluate_ledger_many, fetch_bounds, hour_spans, window_starts
from slo.spec import parse_specs
from tests.slo._support import T0, write

SLOS = parse_specs(
    """\
service: hours
slos:
  - {name: avail, objective: 99, window: 30d, sli: {availability: {}}}
  - {name: avail-month, objective: 99, window: month, sli: {availability: {}}, selector: {tenant: acme}}
  - {name: ttft, objective: 90, window: 7d, sli: {latency: {metric: ttft, threshold: 0.5}}}
  - {name: cost, window: 28d, sli: {cost: {budget_usd_per_1k_requests: 2.0}}}
  - {name: safety, objective: 99, window: 7d, sli: {safety_incidents: {direction: output}}}
""",
    "hours.yaml",
)
DAYS = 5
END = T0 + timedelta(days=DAYS)


def _records(seed: int, start, minutes: int, prefix: str) -> list[RequestRecord]:
    rng = random.Random(seed)
    out = []
    m = 0.0
    i = 0
    while m < minutes:
        m += rng.expovariate(1 / 4)  # a request every 4 minutes on average
        status = rng.choice([200] * 6 + [503, 429])
        hits = [SafetyHit("output", "x", "s", rng.choice(["block", "flag", "redact"]))] if rng.random() < 0.1 else []
        i += 1
        out.append(
            make_record(
                request_id=f"{prefix}{i}",
                started_at=start + timedelta(minutes=m),
                tenant=rng.choice(["acme", "beta"]),
                status_code=status,
                error_type={200: None, 503: "upstream_error", 429: "rate_limited"}[status],
                ttft_s=round(rng.uniform(0.1, 1.0), 3) if status == 200 else None,
                tpot_s=0.02 if status == 200 else None,
                cost_usd=rng.uniform(0, 0.004),
                safety=hits,
            )
        )
    return out


def _key(e: Evaluation) -> tuple:
    """(status, no_data, period good, total, then each window's); cost sums are floats whose
    order of addition differs between the reads, so numbers compare with `_same`."""
    return (e.status, e.no_data, e.good, e.total, *(x for w in e.windows.values() for x in (w.good, w.total)))


def _same(a: dict[str, tuple], b: dict[str, tuple], what: object = None) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name][:2] == b[name][:2], (what, name)
        assert a[name][2:] == pytest.approx(b[name][2:], rel=1e-12, abs=1e-12), (what, name)


def _evals(engine: Engine, at, **kw) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {s.name: _key(e) for s, e in evaluate_ledger_many(conn, SLOS, at, **kw).items()}


def test_hour_spans_avoid_every_window_start() -> None:
    at = to_minute(END) + 23
    begin = min(fetch_bounds(s, at)[0] for s in SLOS)
    for horizon in (0, 360):
        spans = hour_spans(SLOS, begin, at, horizon)
        assert spans and all(a % 60 == 0 and b % 60 == 0 and a < b for a, b in spans)
        assert all(b1 <= a2 for (_, b1), (a2, _) in pairwise(spans))
        assert spans[-1][1] <= at - SHORT_WINDOW_MINUTES and spans[0][0] >= begin
        for later in range(at, at + horizon + 1, 7):
            for s in SLOS:
                for start in window_starts(s, later):
                    assert not any(a <= start < b for a, b in spans), (horizon, later, start)
    # the period's start of a calendar month is midnight: its hour may come from the hours
    month = [s for s in SLOS if s.name == "avail-month"][0]
    assert period_bounds(month, at)[0] % 60 == 0


def test_hourly_and_minute_reads_agree_at_any_minute(ledger_engine: Engine) -> None:
    write(ledger_engine, _records(1, T0, DAYS * 1440, "a"), SLOS)
    times = [END - timedelta(minutes=m) for m in (0, 1, 37, 59, 60, 61, 333, 1439, 1440, 2000, 4321)]
    for at in times:
        _same(_evals(ledger_engine, at), _evals(ledger_engine, at, hourly=False), at)
    assert _evals(ledger_engine, END)["avail"][3] > 0


def test_the_cache_stays_exact_as_time_moves_and_late_records_land(sqlite_engine: Engine) -> None:
    write(sqlite_engine, _records(2, T0, DAYS * 1440, "b"), SLOS)
    clock = [0.0]
    cache = SeriesCache(
        settle_minutes=10, late_minutes=180, late_every_s=600, full_refresh_s=3 * 3600, clock=lambda: clock[0]
    )
    at = END - timedelta(hours=8)
    late = _records(3, T0 + timedelta(days=2), 3000, "late")
    for step in range(60):  # 15 hours in 15-minute steps, the clock in step with the data
        if step % 7 == 3:
            write(sqlite_engine, late[step::60], SLOS)  # spool replays into old minutes and hours
        got = _evals(sqlite_engine, at, cache=cache)
        fresh = _evals(sqlite_engine, at, cache=None)
        # Late records older than the cache's re-read reach it at its next full read only
        # (as with minute reads); the windows up to 6 h agree at every step.
        _same({k: v[4 : 4 + 10] for k, v in got.items()}, {k: v[4 : 4 + 10] for k, v in fresh.items()}, step)
        if clock[0] % (3 * 3600) == 0:
            _same(got, fresh, step)  # right after a full read: everything
        at += timedelta(minutes=15)
        clock[0] += 900
    minutes_cache = SeriesCache(hourly=False)
    _same(_evals(sqlite_engine, at, cache=minutes_cache), _evals(sqlite_engine, at))


@pytest.mark.parametrize("offset", [0, 1, 59])
def test_evaluation_right_after_an_hour_boundary(sqlite_engine: Engine, offset: int) -> None:
    write(sqlite_engine, _records(4, T0, 2 * 1440, "c"), SLOS)
    at = T0 + timedelta(days=2, hours=3, minutes=offset)
    _same(_evals(sqlite_engine, at), _evals(sqlite_engine, at, hourly=False))


@pytest.mark.parametrize("full_refresh_s", [3 * 3600, 1e9])
def test_cached_reads_equal_fresh_ones_at_every_step(sqlite_engine: Engine, full_refresh_s: float) -> None:
    """Window starts move into hours read whole; the cache reads in full again before they do
    (after `horizon_minutes`, whatever `full_refresh_s` says)."""
    write(sqlite_engine, _records(5, T0, DAYS * 1440, "d"), SLOS)
    clock = [0.0]
    cache = SeriesCache(full_refresh_s=full_refresh_s, horizon_minutes=120, clock=lambda: clock[0])
    at = END - timedelta(hours=10)
    for step in range(45):  # 10 h 30 min in 14-minute steps
        _same(_evals(sqlite_engine, at, cache=cache), _evals(sqlite_engine, at), step)
        at += timedelta(minutes=14)
        clock[0] += 14 * 60


def test_a_reread_from_inside_an_hour_read_whole_starts_at_the_hour(sqlite_engine: Engine) -> None:
    write(sqlite_engine, _records(6, T0, DAYS * 1440, "e"), SLOS)
    cache = SeriesCache(late_every_s=1e9, full_refresh_s=1e9, horizon_minutes=60, clock=lambda: 0.0)
    at = END - timedelta(minutes=7)
    _same(_evals(sqlite_engine, at, cache=cache), _evals(sqlite_engine, at))
    cache.invalidate_from(to_minute(END - timedelta(days=2, minutes=23)))  # mid-hour, long ago
    at += timedelta(minutes=1)
    _same(_evals(sqlite_engine, at, cache=cache), _evals(sqlite_engine, at))
