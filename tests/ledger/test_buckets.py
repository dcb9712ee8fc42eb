import math

import pytest

from ledger.buckets import DEFAULT_BUCKETS, LATENCY_BUCKETS, bucket_for, normalize, with_thresholds


def test_value_equal_to_a_bound_belongs_to_that_bound():
    bounds = (0.1, 0.5, 1.0)
    assert bucket_for(0.1, bounds) == 0.1
    assert bucket_for(0.5, bounds) == 0.5
    assert bucket_for(1.0, bounds) == 1.0


def test_values_between_below_and_above_bounds():
    bounds = (0.1, 0.5, 1.0)
    assert bucket_for(0.0, bounds) == 0.1
    assert bucket_for(-1.0, bounds) == 0.1
    assert bucket_for(math.nextafter(0.1, 1.0), bounds) == 0.5
    assert bucket_for(0.75, bounds) == 1.0
    assert bucket_for(math.nextafter(1.0, 2.0), bounds) is None
    assert bucket_for(None, bounds) is None
    assert bucket_for(float("nan"), bounds) is None


def test_with_thresholds_merges_sorts_and_dedupes():
    merged = with_thresholds(LATENCY_BUCKETS, [2.0, 0.64, 0.3])
    assert merged == tuple(sorted(set(LATENCY_BUCKETS) | {2.0, 0.3}))
    with pytest.raises(ValueError):
        with_thresholds([1.0], [0.0])


def test_normalize_fills_defaults_and_rejects_unknown_metrics():
    b = normalize({"ttft": [2.0, 1.0]})
    assert b["ttft"] == (1.0, 2.0)
    assert b["latency"] == DEFAULT_BUCKETS["latency"]
    with pytest.raises(ValueError):
        normalize({"queue_time": [1.0]})
