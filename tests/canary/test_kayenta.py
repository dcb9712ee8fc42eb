"""Issue 20: Kayenta's judge semantics, with data of our own, through the fixed judge with
the Kayenta-compatible options (and the defects the side-by-side found, each pinned)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from canary.classifier import Outcome, SequentialMetric, classify_fixed
from canary.config import DEFAULT_LLM, Direction, Kind, MetricConfig, NanStrategy, Profile
from canary.judge import SequentialAnalysis, Verdict, judge, score

ALPHA = 0.02  # Kayenta's 98 % intervals, one metric at a time
# Kayenta-like: any significant shift beyond a 10 % effect fails (allowedIncrease 1.1)
K = MetricConfig(name="m", floor=0.10, tolerance=0.25, min_samples=5, shift_fraction=0.25, direction=Direction.EITHER)


def _kayenta(*metrics: MetricConfig, weights: dict[str, float] | None = None) -> Profile:
    return Profile(
        name="kayenta",
        metrics=metrics,
        group_weights=weights or {},
        alpha=ALPHA,
        correction="none",
        pass_threshold=95.0,
        marginal_threshold=75.0,
    )


def _lognormal(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(0.3), 0.4, n) * scale


# --- classification by direction, effect-size thresholds, Kayenta's tolerance ---------------


def test_classification_by_direction() -> None:
    base = _lognormal(300, 1)
    up, down = _lognormal(300, 2, 1.5), _lognormal(300, 3, 0.6)
    for direction, up_is, down_is in (
        (Direction.INCREASE, Outcome.HIGH, Outcome.PASS),
        (Direction.DECREASE, Outcome.PASS, Outcome.LOW),
        (Direction.EITHER, Outcome.HIGH, Outcome.LOW),
    ):
        cfg = dataclasses.replace(K, direction=direction)
        assert classify_fixed(cfg, base, up, ALPHA).outcome is up_is
        assert classify_fixed(cfg, base, down, ALPHA).outcome is down_is


def test_asymmetric_allowed_increase_and_decrease() -> None:
    """floor = allowedIncrease - 1, floor_decrease = 1 - allowedDecrease."""
    base = _lognormal(3000, 4)
    cfg = dataclasses.replace(K, floor=0.5, floor_decrease=0.1, tolerance=0.6)
    assert classify_fixed(cfg, base, _lognormal(3000, 5, 1.3), ALPHA).outcome is not Outcome.HIGH
    assert classify_fixed(cfg, base, _lognormal(3000, 6, 0.77), ALPHA).outcome is Outcome.LOW


def test_shift_fraction_is_kayentas_tolerance() -> None:
    """High only when the interval's lower end is above 0.25 x |shift|: a shift measured too
    loosely is not High even though the interval excludes 0."""
    rng = np.random.default_rng(7)
    base, can = rng.lognormal(0, 1.2, 60), rng.lognormal(0.75, 1.2, 60)
    plain = classify_fixed(dataclasses.replace(K, shift_fraction=0.0), base, can, ALPHA)
    strict = classify_fixed(K, base, can, ALPHA)
    assert plain.outcome is Outcome.HIGH and plain.lower > 0
    if plain.lower <= 0.25 * abs(plain.effect):
        assert strict.outcome is not Outcome.HIGH
    else:
        assert strict.outcome is Outcome.HIGH


def test_tied_ranks_do_not_break_the_test() -> None:
    """Values on a coarse grid, with ties across versions (Kayenta's tied-rank cases)."""
    base = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 40)
    same = classify_fixed(K, base, np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 40), ALPHA)
    assert same.outcome is Outcome.PASS and same.effect == 0.0
    higher = classify_fixed(K, base, np.repeat([3.0, 4.0, 5.0, 6.0, 7.0], 40), ALPHA)
    assert higher.outcome is Outcome.HIGH


# --- zero-heavy inputs (defect 1) ----------------------------------------------------------


@pytest.mark.parametrize("zeros", [0.45, 0.70, 0.80, 0.92])
def test_zero_inflated_doubling_is_high_in_the_fixed_judge(zeros: float) -> None:
    """Cost is 0 for every cache hit; the canary doubles the cost of the rest. The rank
    interval collapses to [0, 0] at these shares and used to pass."""
    rng = np.random.default_rng(int(zeros * 100))

    def cost(n: int, factor: float) -> np.ndarray:
        v = rng.lognormal(np.log(5e-4), 0.5, n) * factor
        v[rng.random(n) < zeros] = 0.0
        return v

    cfg = DEFAULT_LLM.metric("cost_usd")
    res = classify_fixed(cfg, cost(20000, 1.0), cost(2000, 2.0), DEFAULT_LLM.metric_alpha)
    assert res.outcome is Outcome.HIGH, res.reason
    assert res.test.startswith("ratio of means") and res.p_value < 1e-4
    assert res.effect == pytest.approx(1.0, abs=0.3)


def test_zero_inflated_doubling_is_high_in_the_sequential_judge() -> None:
    rng = np.random.default_rng(11)
    cfg = DEFAULT_LLM.metric("cost_usd")
    m = SequentialMetric(cfg, DEFAULT_LLM.metric_alpha, keep_samples=False)
    for _ in range(60):
        b = rng.lognormal(np.log(5e-4), 0.5, 900)
        c = rng.lognormal(np.log(5e-4), 0.5, 100) * 2
        b[rng.random(900) < 0.7] = 0.0
        c[rng.random(100) < 0.7] = 0.0
        m.update(b, c)
        if m.result().outcome is Outcome.HIGH:
            break
    assert m.result().outcome is Outcome.HIGH


def test_zero_inflated_equal_versions_pass() -> None:
    rng = np.random.default_rng(12)

    def cost(n: int) -> np.ndarray:
        v = rng.lognormal(np.log(5e-4), 0.5, n)
        v[rng.random(n) < 0.7] = 0.0
        return v

    res = classify_fixed(DEFAULT_LLM.metric("cost_usd"), cost(40000), cost(10000), DEFAULT_LLM.metric_alpha)
    assert res.outcome is Outcome.PASS, res.reason


# --- missing data and NaN strategies -------------------------------------------------------


def test_nan_strategy_remove_and_replace() -> None:
    base = _lognormal(200, 13)
    can = _lognormal(200, 14)
    can[:100] = math.nan
    removed = classify_fixed(K, base, can, ALPHA)
    assert removed.canary.n == 100 and removed.outcome is Outcome.PASS
    replaced = classify_fixed(
        dataclasses.replace(K, nan_strategy=NanStrategy.REPLACE_ZERO, scale="linear"), base, can, ALPHA
    )
    assert replaced.canary.n == 200 and replaced.outcome is Outcome.LOW  # half the values became 0


def test_missing_data_on_a_critical_metric_fails_the_canary() -> None:
    crit = dataclasses.replace(K, name="err", critical=True, group="errors")
    other = dataclasses.replace(K, name="lat", group="latency")
    prof = _kayenta(crit, other)
    res = judge({"lat": _lognormal(100, 15), "err": []}, {"lat": _lognormal(100, 16)}, prof)
    assert res.metric("err").outcome is Outcome.NODATA_FAIL and res.metric("err").critical_failure
    assert res.verdict is Verdict.FAIL and res.score == 0.0 and "critical" in res.reason


def test_critical_effect_size_thresholds() -> None:
    """A critical metric fails the run only beyond criticalIncrease; below it a High counts
    in its group like any metric."""
    crit = dataclasses.replace(
        K, name="err", critical=True, critical_increase=1.0, group="errors", direction=Direction.INCREASE
    )
    other = dataclasses.replace(K, name="lat", group="latency")
    prof = _kayenta(crit, other, weights={"errors": 10})
    base = {"err": _lognormal(500, 17), "lat": _lognormal(500, 18)}
    mild = judge(base, {"err": _lognormal(500, 19, 1.4), "lat": _lognormal(500, 20)}, prof)
    assert mild.metric("err").outcome is Outcome.HIGH and not mild.metric("err").critical_failure
    assert mild.score == 90.0 and mild.verdict is Verdict.MARGINAL
    assert "within the critical thresholds" in mild.metric("err").reason
    severe = judge(base, {"err": _lognormal(500, 21, 3.0), "lat": _lognormal(500, 22)}, prof)
    assert severe.metric("err").critical_failure and severe.verdict is Verdict.FAIL and severe.score == 0.0


# --- group scoring -------------------------------------------------------------------------


def test_unweighted_groups_share_what_the_weights_leave() -> None:
    prof = _kayenta(
        dataclasses.replace(K, name="a", group="g1"),
        dataclasses.replace(K, name="b", group="g2"),
        dataclasses.replace(K, name="c", group="g3"),
        weights={"g1": 50},
    )
    assert [prof.weight(g) for g in ("g1", "g2", "g3")] == [50.0, 25.0, 25.0]
    assert (
        _kayenta(dataclasses.replace(K, name="a", group="g1"), dataclasses.replace(K, name="b", group="g2")).weight(
            "g2"
        )
        == 50.0
    )


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"g1": 70, "g2": 40}, "over 100"),
        ({"g1": 100}, "leaving nothing"),
        ({"g1": 30, "g2": 30}, "must sum to 100"),
        ({"g1": 50, "nope": 10}, "no scored metric is in"),
    ],
)
def test_profiles_whose_weights_cannot_work_are_refused(weights: dict[str, float], message: str) -> None:
    metrics = [dataclasses.replace(K, name="a", group="g1"), dataclasses.replace(K, name="b", group="g2")]
    with pytest.raises(ValueError, match=message):
        _kayenta(*metrics, weights=weights)
    with pytest.raises(ValueError, match=message):
        Profile.from_dict({**_kayenta(*metrics).to_dict(), "group_weights": weights})


def test_a_group_without_data_scores_zero_with_its_weight() -> None:
    prof = _kayenta(
        dataclasses.replace(K, name="a", group="g1"),
        dataclasses.replace(K, name="b", group="g2"),
        dataclasses.replace(K, name="c", group="g3"),
        weights={"g1": 60, "g2": 30, "g3": 10},
    )
    base = {"a": _lognormal(2000, 23), "b": _lognormal(2000, 24)}
    res = judge(base, {"a": _lognormal(2000, 25), "b": _lognormal(2000, 26)}, prof)
    assert res.metric("c").outcome is Outcome.INCONCLUSIVE and not res.metric("c").has_data
    assert res.score == 90.0  # not 100 by re-normalising over g1 and g2


def test_metric_in_more_than_one_group_and_muted_metrics() -> None:
    shared = dataclasses.replace(K, name="a", group="g1", also_in=("g2",), direction=Direction.INCREASE)
    prof = _kayenta(
        shared,
        dataclasses.replace(K, name="b", group="g2"),
        dataclasses.replace(K, name="quiet", group="g3", muted=True),
        weights={"g1": 50, "g2": 50},
    )
    assert prof.groups == ("g1", "g2")
    base = {n: _lognormal(300, i) for i, n in enumerate(("a", "b", "quiet"))}
    res = judge(
        base, {"a": _lognormal(300, 30, 2.0), "b": _lognormal(300, 31), "quiet": _lognormal(300, 32, 3.0)}, prof
    )
    assert res.metric("a").outcome is Outcome.HIGH and res.metric("quiet").outcome is Outcome.HIGH
    # g1: 0/1, g2: 1/2 -> 0.5 * 0 + 0.5 * 50; the muted High does not count
    assert res.score == 25.0 and "muted" in res.metric("quiet").reason and not res.metric("quiet").failed


def test_score_is_rounded_to_two_decimals() -> None:
    metrics = [dataclasses.replace(K, name=f"m{i}", group="g") for i in range(3)]
    prof = _kayenta(*metrics)
    base = {f"m{i}": _lognormal(300, 40 + i) for i in range(3)}
    can = {**{f"m{i}": _lognormal(300, 50 + i) for i in range(2)}, "m2": _lognormal(300, 60, 2.0)}
    assert judge(base, can, prof).score == 66.67
    assert score(judge(base, can, prof).metrics, prof) == 66.67


# --- no silent pass at the deadline (defect 5) ---------------------------------------------


def _two(must_decide: bool) -> Profile:
    return _kayenta(
        dataclasses.replace(K, name="lat", group="latency", min_samples=20),
        MetricConfig(
            name="hits", kind=Kind.PROPORTION, min_samples=20, tolerance=1.0, group="safety", must_decide=must_decide
        ),
        dataclasses.replace(K, name="lat2", group="latency", min_samples=20),
        weights={"latency": 90},
    )


def test_the_final_verdict_names_every_metric_that_never_decided() -> None:
    rng = np.random.default_rng(70)
    base = {"lat": _lognormal(3000, 71), "lat2": _lognormal(3000, 72), "hits": rng.random(3000) < 0.005}
    can = {"lat": _lognormal(300, 73), "lat2": _lognormal(300, 74), "hits": rng.random(300) < 0.01}
    res = judge(base, can, _two(must_decide=False))
    assert res.metric("hits").outcome is Outcome.INCONCLUSIVE
    assert "never decided" in res.reason and "hits" in res.reason
    strict = judge(base, can, _two(must_decide=True))
    assert strict.verdict is Verdict.INCONCLUSIVE and "never decided: hits" in strict.reason
    a = SequentialAnalysis(_two(must_decide=True))
    a.update(base, can)
    end = a.finish()
    assert end.verdict is Verdict.INCONCLUSIVE and "hits" in end.reason
