"""What each canary metric means for one request record."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

from canary.samples import METRICS, metric_values, samples_from_records, split_by_version
from ledger.record import RequestRecord, SafetyHit


def _record(version: str = "v1", **kw: object) -> RequestRecord:
    base = dict(
        request_id="r",
        started_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        tenant="t",
        key_id=None,
        operation="chat",
        alias="m",
        model_version=version,
        upstream=None,
        status_code=200,
        latency_s=2.0,
        ttft_s=0.3,
        tpot_s=0.02,
        prompt_tokens=10,
        completion_tokens=100,
        cost_usd=0.001,
    )
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


def test_successful_request() -> None:
    v = metric_values(_record())
    assert v == {
        "latency_s": 2.0,
        "ttft_s": 0.3,
        "tpot_s": 0.02,
        "output_tokens_per_s": 50.0,
        "error": 0.0,
        "safety_hit": 0.0,
        "cost_usd": 0.001,
    }


def test_only_the_services_faults_are_errors() -> None:
    fault = metric_values(_record(status_code=503, error_type="upstream_error"))
    assert fault["error"] == 1.0 and math.isnan(fault["latency_s"]) and math.isnan(fault["cost_usd"])
    assert metric_values(_record(status_code=400))["error"] == 0.0
    assert metric_values(_record(status_code=429, error_type="rate_limited"))["error"] == 0.0
    assert metric_values(_record(status_code=500, client_disconnected=True))["error"] == 0.0


def test_only_output_safety_hits_count() -> None:
    out = SafetyHit(direction="output", category="hate", scanner="s", action="block")
    inp = SafetyHit(direction="input", category="hate", scanner="s", action="block")
    assert metric_values(_record(safety=[out]))["safety_hit"] == 1.0
    assert metric_values(_record(safety=[inp]))["safety_hit"] == 0.0


def test_split_by_version() -> None:
    records = [_record("a"), _record("b", latency_s=4.0), _record("a", status_code=502), _record("c")]
    base, can = split_by_version(records, "a", "b")
    assert set(base) == set(METRICS) and base["error"].tolist() == [0.0, 1.0]
    assert can["latency_s"].tolist() == [4.0]
    # a failure before the first token has no TTFT; a stream that broke after it keeps its own
    assert np.isnan(samples_from_records([_record(status_code=500, ttft_s=None, tpot_s=None)])["ttft_s"]).all()
    broken = samples_from_records([_record(status_code=502, error_type="upstream_disconnected", partial=True)])
    assert broken["ttft_s"].tolist() == [0.3] and broken["tpot_s"].tolist() == [0.02]
    assert np.isnan(broken["latency_s"]).all() and np.isnan(broken["cost_usd"]).all()
