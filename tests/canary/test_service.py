from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from canary.service import CanaryError, CanaryService
from tests.canary._ledger import T0, FakeClock, traffic


def service(engine: Engine, clock: FakeClock) -> CanaryService:
    return CanaryService(engine, clock=clock, ingest_lag_s=0)


def test_fixed_window_worse_canary_fails(ledger_engine: Engine, tmp_path: Path) -> None:
    traffic(ledger_engine, tmp_path / "spool", T0, 600, 800, 400, slow=1.5, seed=1)
    clock = FakeClock(T0 + timedelta(minutes=10))
    a = service(ledger_engine, clock).create("chat", "v1", "v2", "default-llm", window_minutes=10)
    assert a.done and a.verdict == "fail"
    assert a.judge_result is not None and a.judge_result.exit_code == 1
    assert a.judge_result.metric("latency_s").canary.n == 400
    body = a.to_dict()
    assert body["decided"] and body["exit_code"] == 1 and body["result"]["metrics"]


def test_fixed_window_same_distribution_does_not_fail(ledger_engine: Engine, tmp_path: Path) -> None:
    traffic(ledger_engine, tmp_path / "spool", T0, 600, 800, 400, seed=2)
    clock = FakeClock(T0 + timedelta(minutes=10))
    a = service(ledger_engine, clock).create("chat", "v1", "v2", "default-llm", window_minutes=10)
    assert a.done and a.verdict in ("pass", "inconclusive")


def test_fixed_window_waits_for_the_window_and_the_ingest_lag(ledger_engine: Engine, tmp_path: Path) -> None:
    traffic(ledger_engine, tmp_path / "spool", T0, 600, 400, 200, slow=1.5, seed=3)
    clock = FakeClock(T0 + timedelta(minutes=10))
    svc = CanaryService(ledger_engine, clock=clock, ingest_lag_s=30)
    a = svc.create("chat", "v1", "v2", "latency-only", window_minutes=10)
    assert not a.done and a.verdict is None
    clock.advance(31)
    a = svc.poll(a.id)
    assert a.done and a.verdict == "fail"


def test_live_analysis_fails_early_and_survives_a_restart(ledger_engine: Engine, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    svc = service(ledger_engine, clock)
    a = svc.create("chat", "v1", "v2", "latency-only", mode="live", deadline_minutes=60)
    assert a.mode == "live" and not a.done
    verdicts = []
    for i in range(20):
        traffic(ledger_engine, tmp_path / f"spool{i}", clock(), 30, 90, 10, slow=2.0, seed=10 + i)
        clock.advance(30)
        svc = service(ledger_engine, clock)  # a fresh service each look: state comes from the database
        a = svc.poll(a.id)
        verdicts.append(a.verdict)
        if a.done:
            break
    assert a.done and a.verdict == "fail", verdicts
    assert a.judge_result is not None and a.judge_result.looks == len(verdicts)
    # every sample was read once: the counts add up to what was written
    assert a.judge_result.metric("latency_s").canary.n == 10 * len(verdicts)


def test_live_analysis_finishes_at_its_deadline(ledger_engine: Engine, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    svc = service(ledger_engine, clock)
    a = svc.create("chat", "v1", "v2", "default-llm", mode="live", deadline_minutes=1)
    traffic(ledger_engine, tmp_path / "spool", T0, 30, 5, 5, seed=4)
    clock.advance(30)
    a = svc.poll(a)
    assert not a.done
    clock.advance(31)
    a = svc.poll(a)
    assert a.done and a.verdict == "inconclusive" and a.judge_result.exit_code == 2


def test_run_once_polls_standalone_live_analyses(ledger_engine: Engine, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    svc = service(ledger_engine, clock)
    a = svc.create("chat", "v1", "v2", "latency-only", mode="live", deadline_minutes=1)
    clock.advance(61)
    svc.run_once()
    assert svc.get(a.id).done


def test_concurrent_polls_do_not_count_samples_twice(ledger_engine: Engine, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    svc = service(ledger_engine, clock)
    a = svc.create("chat", "v1", "v2", "latency-only", mode="live", deadline_minutes=60)
    traffic(ledger_engine, tmp_path / "spool", T0, 30, 20, 20, seed=5)
    clock.advance(30)
    first = svc.poll(a)  # wins
    stale = svc.poll(a)  # the same read revision: its write is dropped
    assert stale.revision == first.revision
    assert stale.judge_result.metric("latency_s").canary.n == 20


@pytest.mark.parametrize(
    "kw",
    [
        dict(alias="", baseline="v1", canary="v2", window_minutes=5),
        dict(alias="chat", baseline="v1", canary="v1", window_minutes=5),
        dict(alias="chat", baseline="v1", canary="v2"),
        dict(alias="chat", baseline="v1", canary="v2", mode="live"),
        dict(alias="chat", baseline="v1", canary="v2", mode="weird", window_minutes=5),
        dict(alias="chat", baseline="v1", canary="v2", profile="nope", window_minutes=5),
    ],
)
def test_bad_requests_are_refused(ledger_engine: Engine, kw: dict) -> None:
    with pytest.raises(CanaryError):
        service(ledger_engine, FakeClock()).create(**kw)
