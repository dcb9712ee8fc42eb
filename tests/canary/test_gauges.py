from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from canary.gauges import CanaryGauges
from canary.service import CanaryService
from ledger.db import create_engine_for
from tests.canary._ledger import T0, FakeClock, traffic


def test_current_verdict_and_score_of_each_canary(ledger_engine: Engine, tmp_path: Path) -> None:
    traffic(ledger_engine, tmp_path / "spool", T0, 600, 800, 400, slow=1.5, seed=1)
    clock = FakeClock(T0 + timedelta(minutes=10))
    a = CanaryService(ledger_engine, clock=clock, ingest_lag_s=0).create(
        "chat", "v1", "v2", "default-llm", window_minutes=10
    )
    assert a.verdict == "fail"
    registry = CollectorRegistry()
    CanaryGauges(ledger_engine, clock=clock).register(registry)

    labels = {"model_alias": "chat", "canary_version": "v2"}
    assert registry.get_sample_value("inferwatch_canary_verdict", {**labels, "verdict": "fail"}) == 1.0
    assert registry.get_sample_value("inferwatch_canary_verdict", {**labels, "verdict": "pass"}) == 0.0
    assert registry.get_sample_value("inferwatch_canary_score", labels) == a.judge_result.score

    clock.advance(2 * 3600)  # a decided analysis older than an hour is no longer "current"
    assert registry.get_sample_value("inferwatch_canary_verdict", {**labels, "verdict": "fail"}) is None


def test_a_database_that_is_away_gives_no_series_not_a_failed_scrape(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")
    registry = CollectorRegistry()
    CanaryGauges(engine).register(registry)
    assert registry.get_sample_value("inferwatch_canary_score", {"model_alias": "chat", "canary_version": "v2"}) is None
