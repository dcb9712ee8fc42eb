"""Per-metric classification: outcomes, floors, tolerances, sparse data, reasons."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from canary.classifier import Outcome, SequentialMetric, classify_fixed, prepare, remove_outliers
from canary.config import Direction, Kind, MetricConfig, NanStrategy, OutlierRule

ALPHA = 0.05 / 7

TTFT = MetricConfig(name="ttft_s", label="ttft", floor=0.10, tolerance=0.25)
TOKENS = MetricConfig(name="output_tokens_per_s", label="tokens/s", direction=Direction.DECREASE)
ERRORS = MetricConfig(
    name="error",
    label="error rate",
    kind=Kind.PROPORTION,
    critical=True,
    must_have_data=True,
    min_samples=100,
    tolerance=1.0,
    absolute_margin=0.005,
)


def _lognormal(n: int, seed: int, sigma: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(0.3), sigma, n)


def test_fixed_high_with_a_readable_reason() -> None:
    base = _lognormal(400, 1)
    # the same values 31 % higher: every pairwise log difference is mirrored around log 1.31,
    # so the Hodges-Lehmann shift is exactly +31 %
    res = classify_fixed(TTFT, base, base * 1.31, ALPHA)
    assert res.outcome is Outcome.HIGH
    assert res.effect == pytest.approx(0.31)
    assert res.lower > 0.10 and res.upper > res.effect
    assert res.reason.startswith("ttft +31% (99.3% CI +")
    assert res.reason.endswith("significant and above the 10% floor: High")
    assert res.baseline.n == 400 and res.canary.p50 == pytest.approx(1.31 * res.baseline.p50)
    assert res.p_value is not None and res.p_value < ALPHA
    json.dumps(res.to_dict())


def test_fixed_significant_change_below_the_floor_passes() -> None:
    base = _lognormal(20000, 2)
    res = classify_fixed(TTFT, base, _lognormal(20000, 3) * 1.05, ALPHA)
    assert res.lower > 0  # significant ...
    assert res.outcome is Outcome.PASS  # ... but smaller than the 10 % floor
    assert "tolerance: Pass" in res.reason


def test_fixed_direction_decrease_fails_low_and_ignores_increases() -> None:
    base = _lognormal(2000, 4)
    low = classify_fixed(TOKENS, base, _lognormal(500, 5) * 0.7, ALPHA)
    assert low.outcome is Outcome.LOW and "floor: Low" in low.reason
    high = classify_fixed(TOKENS, base, _lognormal(500, 6) * 1.5, ALPHA)
    assert high.outcome is Outcome.PASS
    either = MetricConfig(name="x", direction=Direction.EITHER)
    assert classify_fixed(either, base, _lognormal(500, 6) * 1.5, ALPHA).outcome is Outcome.HIGH
    assert classify_fixed(either, base, _lognormal(500, 5) * 0.7, ALPHA).outcome is Outcome.LOW


def test_fixed_too_few_samples_or_no_data() -> None:
    base = _lognormal(500, 7)
    few = classify_fixed(TTFT, base, _lognormal(20, 8) * 3, ALPHA)
    assert few.outcome is Outcome.INCONCLUSIVE
    assert "20 samples, below the minimum 50" in few.reason
    none = classify_fixed(TTFT, base, [], ALPHA)
    assert none.outcome is Outcome.INCONCLUSIVE and not none.has_data
    required = classify_fixed(ERRORS, np.zeros(500), None, ALPHA)
    assert required.outcome is Outcome.NODATA_FAIL and required.failed


def test_fixed_wide_interval_is_inconclusive_not_pass() -> None:
    """Fewer than enough points to rule out a large regression: no silent pass."""
    rng = np.random.default_rng(9)
    base, can = rng.lognormal(0, 1.5, 60), rng.lognormal(0, 1.5, 60)
    res = classify_fixed(TTFT, base, can, ALPHA)
    assert res.upper > TTFT.tolerance
    assert res.outcome is Outcome.INCONCLUSIVE and "cannot rule out" in res.reason


def test_sparse_errors_against_a_clean_baseline_are_not_a_silent_pass() -> None:
    base = np.zeros(2000)
    four = np.zeros(200)
    four[:4] = 1
    res = classify_fixed(ERRORS, base, four, ALPHA)
    assert res.outcome is Outcome.HIGH
    assert res.test.startswith("Fisher")
    assert res.reason.startswith("error rate 0.00% -> 2.00% (+inf")
    one = np.zeros(200)
    one[0] = 1
    res1 = classify_fixed(ERRORS, base, one, ALPHA)
    assert res1.outcome is Outcome.INCONCLUSIVE  # not significant, and far from ruled out


def test_zero_errors_pass_only_with_enough_traffic() -> None:
    small = classify_fixed(ERRORS, np.zeros(5000), np.zeros(500), ALPHA)
    assert small.outcome is Outcome.INCONCLUSIVE
    large = classify_fixed(ERRORS, np.zeros(50000), np.zeros(5000), ALPHA)
    assert large.outcome is Outcome.PASS and large.margin == "absolute"
    assert "rate change at most +0.13 pp, within the +0.50 pp absolute margin: Pass" in large.reason


def test_prepare_nan_strategies_and_validation() -> None:
    vals = [1.0, math.nan, 3.0]
    assert prepare(TTFT, vals).tolist() == [1.0, 3.0]
    zero = MetricConfig(name="c", nan_strategy=NanStrategy.REPLACE_ZERO)
    assert prepare(zero, vals).tolist() == [1.0, 0.0, 3.0]
    assert prepare(ERRORS, [True, False]).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="0/1"):
        prepare(ERRORS, [0, 2])


def test_tukey_outlier_rule_fences_at_three_iqr() -> None:
    vals = np.concatenate([np.arange(1.0, 101.0), [400.0, -300.0]])
    # Q1 = 25.75, Q3 = 75.25 on 102 points -> fences about -122.8 and 223.8
    kept = remove_outliers(vals, OutlierRule.TUKEY, 3.0)
    assert kept.size == 100 and kept.max() == 100.0 and kept.min() == 1.0
    assert remove_outliers(vals, OutlierRule.NONE).size == 102


def test_kayenta_outlier_rule_fences_at_the_larger_of_p99_and_three_iqr() -> None:
    """Tight middle, long tail: Q3 + 3 IQR is below the 99th percentile, so Kayenta's fence is
    the percentile and only the outer 1 % go, where Tukey's fence cuts deep into the tail."""
    vals = np.concatenate([np.full(900, 10.0) + np.linspace(0, 1, 900), np.linspace(20, 100, 100)])
    p1, q1, q3, p99 = np.percentile(vals, [1, 25, 75, 99])
    assert q3 + 3 * (q3 - q1) < p99
    kayenta = remove_outliers(vals, OutlierRule.KAYENTA, 3.0)
    tukey = remove_outliers(vals, OutlierRule.TUKEY, 3.0)
    assert kayenta.max() <= p99 and kayenta.size == int(np.sum((vals >= min(p1, q1 - 3 * (q3 - q1))) & (vals <= p99)))
    assert tukey.size < kayenta.size and tukey.max() < 20
    # legacy configs with an IQR factor mean the Tukey rule
    assert MetricConfig.from_dict({"name": "x", "outlier_iqr_factor": 2.0}).outliers is OutlierRule.TUKEY


def _feed(metric: SequentialMetric, base: np.ndarray, can: np.ndarray, batches: int) -> None:
    for b, c in zip(np.array_split(base, batches), np.array_split(can, batches), strict=True):
        metric.update(b, c)


def test_sequential_high_is_sticky_and_uses_a_confidence_sequence() -> None:
    m = SequentialMetric(TTFT, ALPHA)
    _feed(m, _lognormal(3000, 10), _lognormal(300, 11) * 1.6, 10)
    res = m.result()
    assert res.outcome is Outcome.HIGH and res.decided
    assert "% CS +" in res.reason and res.lower > TTFT.floor
    assert res.e_value > 1 / ALPHA and res.p_value < ALPHA
    m.update(_lognormal(3000, 12), _lognormal(3000, 13))  # later data cannot undo a failure
    assert m.result().outcome is Outcome.HIGH


def test_sequential_floor_protects_small_real_changes() -> None:
    """A real +5 % change with a 10 % floor: never High however much data; passes once
    the sequence is inside the 25 % tolerance."""
    m = SequentialMetric(TTFT, ALPHA, keep_samples=False)
    rng = np.random.default_rng(14)
    seen = set()
    for _ in range(100):
        m.update(rng.lognormal(0, 0.6, 900), rng.lognormal(np.log(1.05), 0.6, 100))
        seen.add(m.result().outcome)
    assert Outcome.HIGH not in seen
    assert m.result().outcome is Outcome.PASS
    assert m.result().baseline.p50 is None  # keep_samples=False: n and mean only
    assert m.result().baseline.n == 90000


def test_sequential_undecided_becomes_inconclusive_at_the_end() -> None:
    m = SequentialMetric(TTFT, ALPHA)
    m.update(_lognormal(200, 15, 1.0), _lognormal(60, 16, 1.0))
    now = m.result()
    assert now.outcome is Outcome.INCONCLUSIVE and not now.decided and "undecided" in now.reason
    end = m.result(final=True)
    assert end.outcome is Outcome.INCONCLUSIVE and end.decided


def test_sequential_missing_data_fails_only_at_the_end() -> None:
    m = SequentialMetric(ERRORS, ALPHA)
    m.update(np.zeros(1000), None)
    assert m.result().outcome is Outcome.INCONCLUSIVE
    assert m.result(final=True).outcome is Outcome.NODATA_FAIL


def test_sequential_sparse_errors_fail_after_a_few_canary_errors() -> None:
    m = SequentialMetric(ERRORS, ALPHA)
    outcomes = []
    for _ in range(10):  # clean baseline; the canary errs twice per batch of 100 (2 %)
        can = np.zeros(100)
        can[:2] = 1
        m.update(np.zeros(900), can)
        outcomes.append(m.result().outcome)
    assert outcomes[0] is Outcome.INCONCLUSIVE  # 2 errors: not yet evidence
    assert outcomes[-1] is Outcome.HIGH
    assert m.result().reason.startswith("error rate 0.00% -> 2.00%")


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        MetricConfig(name="x", floor=0.3, tolerance=0.2)
    with pytest.raises(ValueError):
        MetricConfig(name="x", absolute_margin=0.01)  # a continuous metric has no rate
    with pytest.raises(ValueError):
        MetricConfig(name="x", critical_increase=0.5)  # only for critical metrics
    assert MetricConfig.from_dict(ERRORS.to_dict()) == ERRORS
