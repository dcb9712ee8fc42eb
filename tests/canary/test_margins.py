"""Issue 22: rate metrics judged on an absolute margin beside the relative one, and metrics
whose rank interval collapses onto a tied value judged on their means."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from canary.classifier import Outcome, SequentialMetric, classify_fixed
from canary.config import DEFAULT_LLM
from canary.judge import SequentialAnalysis, Verdict, judge
from canary.simulate import Regression, TrafficModel, TrafficSimulator

ALPHA = DEFAULT_LLM.metric_alpha
ERROR, SAFETY = DEFAULT_LLM.metric("error"), DEFAULT_LLM.metric("safety_hit")
# Canary requests (zero events in both versions, baseline 9x larger) that the default-llm
# margins need to pass: the numbers stated in canary/config.py and docs/canary.md.
NEEDED = {
    ("error", "fixed"): 1263,
    ("error", "sequential"): 1714,
    ("safety_hit", "fixed"): 3161,
    ("safety_hit", "sequential"): 3758,
}
CLEAN = TrafficModel(rps=10.0, canary_share=0.5, error_rate=0.0, safety_rate=0.0)


def test_relative_tolerance_alone_never_passes_zero_events() -> None:
    no_margin = classify_fixed(
        dataclasses.replace(ERROR, absolute_margin=None), np.zeros(500_000), np.zeros(100_000), ALPHA
    )
    assert no_margin.outcome is Outcome.INCONCLUSIVE and "+inf" in no_margin.reason


@pytest.mark.parametrize("name", ["error", "safety_hit"])
def test_fixed_zero_events_pass_on_the_absolute_margin_at_the_stated_count(name: str) -> None:
    cfg = DEFAULT_LLM.metric(name)
    n = NEEDED[(name, "fixed")]
    short = classify_fixed(cfg, np.zeros(9 * (n - 1)), np.zeros(n - 1), ALPHA)
    assert short.outcome is Outcome.INCONCLUSIVE
    assert "nor the" in short.reason and "absolute margin" in short.reason
    enough = classify_fixed(cfg, np.zeros(9 * n), np.zeros(n), ALPHA)
    assert enough.outcome is Outcome.PASS and enough.margin == "absolute"
    assert f"within the +{100 * cfg.absolute_margin:.2f} pp absolute margin: Pass" in enough.reason


@pytest.mark.parametrize("name", ["error", "safety_hit"])
def test_sequential_zero_events_pass_on_the_absolute_margin_at_the_stated_count(name: str) -> None:
    cfg = DEFAULT_LLM.metric(name)
    n = NEEDED[(name, "sequential")]
    m = SequentialMetric(cfg, ALPHA)
    m.update(np.zeros(9 * (n - 1)), np.zeros(n - 1))
    assert m.result().outcome is Outcome.INCONCLUSIVE and not m.result().decided
    m.update(np.zeros(9), np.zeros(1))
    res = m.result()
    assert res.outcome is Outcome.PASS and res.margin == "absolute" and "CS" in res.reason


def test_relative_margin_decides_when_rates_are_not_tiny() -> None:
    rng = np.random.default_rng(1)
    res = classify_fixed(ERROR, rng.random(200_000) < 0.05, rng.random(100_000) < 0.05, ALPHA)
    assert res.outcome is Outcome.PASS and res.margin == "relative" and "relative tolerance" in res.reason


def test_error_rate_from_zero_to_one_percent_fails_fixed_and_sequential() -> None:
    rng = np.random.default_rng(2)
    base, can = np.zeros(9000), (rng.random(1000) < 0.01).astype(float)
    assert can.sum() >= 5
    fixed = classify_fixed(ERROR, base, can, ALPHA)
    assert fixed.outcome is Outcome.HIGH and fixed.critical_failure
    m = SequentialMetric(ERROR, ALPHA)
    for _ in range(30):
        m.update(np.zeros(900), (rng.random(100) < 0.01).astype(float))
        if m.result().outcome is not Outcome.INCONCLUSIVE:
            break
    assert m.result().outcome is Outcome.HIGH
    # and the verdict: the critical error rate fails the canary
    sim = TrafficSimulator(
        TrafficModel(rps=10.0, canary_share=0.1, error_rate=0.0, safety_rate=0.0), Regression(), seed=3
    )
    b, c = sim.advance(1200)
    c["error"] = (rng.random(c["error"].size) < 0.01).astype(float)
    res = judge(b, c, DEFAULT_LLM)
    assert res.verdict is Verdict.FAIL and res.score == 0.0 and "error rate High" in res.reason


def test_clean_aa_passes_the_default_profile_once_enough_requests_are_seen() -> None:
    """The issue's A/A: identical versions, zero errors and safety hits in both."""
    sim = TrafficSimulator(CLEAN, Regression(), seed=4)
    b, c = sim.advance(200)  # ~1,000 canary requests: not enough to rule out +0.2 points of hits
    early = judge(b, c, DEFAULT_LLM)
    assert early.verdict is Verdict.INCONCLUSIVE and "safety hit rate" in early.reason
    more_b, more_c = sim.advance(600)  # ~4,000 in all
    b = {k: np.concatenate([b[k], more_b[k]]) for k in b}
    c = {k: np.concatenate([c[k], more_c[k]]) for k in c}
    assert c["error"].size >= NEEDED[("safety_hit", "fixed")]
    late = judge(b, c, DEFAULT_LLM)
    assert late.verdict is Verdict.PASS, late.reason
    assert late.metric("error").margin == late.metric("safety_hit").margin == "absolute"


def test_clean_aa_passes_the_sequential_default_profile() -> None:
    sim = TrafficSimulator(CLEAN, Regression(), seed=5)
    analysis = SequentialAnalysis(DEFAULT_LLM, keep_samples=False)
    for _ in range(200):
        res = analysis.update(*sim.advance(30))
        if res.decided:
            break
    assert res.decided and res.verdict is Verdict.PASS, res.reason
    assert res.metric("safety_hit").canary.n >= NEEDED[("safety_hit", "sequential")]


def test_tied_values_are_judged_on_means_not_a_collapsed_interval() -> None:
    """TPOT on a coarse clock: 60 % of values exactly equal. Equal versions pass on the ratio
    of means with a real interval; a canary whose other values are 40 % slower fails."""
    rng = np.random.default_rng(6)

    def tpot(n: int, slow: float) -> np.ndarray:
        v = np.full(n, 0.02)
        other = rng.random(n) > 0.6
        v[other] = 0.02 + rng.exponential(0.01, int(other.sum())) * slow
        return v

    cfg = DEFAULT_LLM.metric("tpot_s")
    same = classify_fixed(cfg, tpot(4000, 1.0), tpot(4000, 1.0), ALPHA)
    assert same.outcome is Outcome.PASS and same.test.startswith("ratio of means")
    assert same.lower < 0 < same.upper and same.lower != same.upper
    slower = classify_fixed(cfg, tpot(4000, 1.0), tpot(4000, 3.0), ALPHA)
    assert slower.outcome is Outcome.HIGH, slower.reason
