"""Statistical behaviour of the judges on simulated traffic with known truth.

Rates are asserted with margins from the binomial distribution (seeds are fixed, so the runs
are deterministic; the margins say how far off the truth a correct judge could land). The
`slow` versions repeat the A/A measurements with many more seeds and looks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats as sps

from canary.config import DEFAULT_LLM, Direction, Profile
from canary.judge import SequentialAnalysis, Verdict, judge
from canary.simulate import Regression, RunOutcome, TrafficModel, TrafficSimulator, poll

MODEL = TrafficModel(rps=10.0, canary_share=0.10)


def _runs(
    seeds: range,
    regression: Regression,
    interval_s: float,
    horizon_s: float,
    model: TrafficModel = MODEL,
    **judges: Profile,
) -> list[dict[str, RunOutcome]]:
    return [poll(TrafficSimulator(model, regression, seed=s), interval_s, horizon_s, **judges) for s in seeds]


def _at_most(count: int, runs: int, rate: float) -> bool:
    """count is consistent with a true rate <= `rate` (one-sided binomial, 0.1 % tail)."""
    return count <= sps.binom.ppf(0.999, runs, rate)


def _zero_floor(profile: Profile, *names: str) -> Profile:
    """The harshest A/A setting: any difference at all fails, nothing can pass early."""
    metrics = tuple(
        dataclasses.replace(
            profile.metric(n), floor=0.0, tolerance=0.0, absolute_margin=None, direction=Direction.EITHER
        )
        for n in names
    )
    return Profile(name="zero-floor", metrics=metrics, alpha=profile.alpha)


def test_aa_false_fail_rate_of_the_sequential_judge_polled_for_an_hour() -> None:
    """default-llm, 7 metrics at 0.05 / 7 each, looked at every minute for an hour."""
    runs = _runs(range(200), Regression(), 60, 3600, sequential=DEFAULT_LLM)
    fails = sum(r["sequential"].rejected for r in runs)
    assert _at_most(fails, 200, DEFAULT_LLM.alpha)
    # A fine canary passes only once every must-decide metric is decided: at 1 canary request
    # a second, ruling out a doubled 0.5 % safety-hit rate (or +0.2 points) takes most of the
    # hour, so about a quarter pass within it (53 of these 200) and the rest end inconclusive.
    # (Before issue 20, 60 % "passed" by dropping the undecided safety metric at the deadline.)
    passed = sum(r["sequential"].verdict is Verdict.PASS for r in runs)
    inconclusive = sum(r["sequential"].verdict is Verdict.INCONCLUSIVE for r in runs)
    assert passed + inconclusive + fails == 200 and passed >= 30


def test_aa_zero_floor_sequential_type_one_error() -> None:
    """Without floors every look is a plain test of 'no difference' for a continuous and a
    sparse proportion metric; the always-valid tests must still hold alpha = 5 %."""
    prof = _zero_floor(DEFAULT_LLM, "ttft_s", "error")
    runs = _runs(range(150), Regression(), 60, 3600, sequential=prof)
    fails = sum(r["sequential"].rejected for r in runs)
    assert _at_most(fails, 150, prof.alpha)


def test_fixed_horizon_judge_polled_repeatedly_inflates_false_fails() -> None:
    """The same A/A streams, one continuous metric without a floor: re-running the
    fixed-horizon Mann-Whitney judge at every look (30 looks) fails far more than its 5 %,
    the sequential judge does not."""
    prof = _zero_floor(DEFAULT_LLM, "ttft_s")
    model = dataclasses.replace(MODEL, rps=5.0)
    runs = _runs(range(60), Regression(), 60, 1800, model=model, sequential=prof, fixed=prof)
    fixed = sum(r["fixed"].rejected for r in runs)
    seq = sum(r["sequential"].rejected for r in runs)
    assert sps.binomtest(fixed, 60, prof.alpha, alternative="greater").pvalue < 0.001
    assert fixed > seq
    assert _at_most(seq, 60, prof.alpha)


def test_25_percent_latency_regression_at_10_percent_traffic_is_caught() -> None:
    runs = _runs(range(40), Regression(latency=1.25), 30, 1800, sequential=DEFAULT_LLM)
    caught = [r["sequential"] for r in runs if r["sequential"].rejected and r["sequential"].decided]
    assert len(caught) >= 38
    assert np.median([o.canary_requests for o in caught]) <= 500
    assert all(o.first_failed in ("latency_s", "ttft_s", "tpot_s", "output_tokens_per_s") for o in caught)


def test_doubled_error_rate_is_caught_in_most_runs() -> None:
    """1 % -> 2 % at 10 % traffic: the critical error metric fails the canary."""
    runs = _runs(range(40), Regression(error_rate=2.0), 60, 4 * 3600, sequential=DEFAULT_LLM)
    caught = [r["sequential"] for r in runs if r["sequential"].verdict is Verdict.FAIL]
    assert len(caught) >= 32  # "most": true rate ~0.95+ here; 32/40 leaves binomial room
    assert all(o.first_failed == "error" for o in caught)


def test_sparse_errors_against_a_clean_baseline_never_pass() -> None:
    """The baseline never errs; the canary errs 1 % of the time. Ten minutes hold only a
    handful of canary errors: the verdict may be fail or inconclusive, never pass."""
    verdicts = {"sequential": [], "fixed": []}
    for seed in range(40):
        rng = np.random.default_rng(seed)
        analysis = SequentialAnalysis(DEFAULT_LLM, keep_samples=False)
        sim = TrafficSimulator(dataclasses.replace(MODEL, error_rate=0.0), Regression(), seed=seed)
        all_b, all_c = [], []
        result = None
        for _ in range(20):
            b, c = sim.advance(30)
            c["error"] = (rng.random(c["error"].size) < 0.01).astype(float)
            all_b.append(b)
            all_c.append(c)
            result = analysis.update(b, c)
            if result.decided:
                break
        if not analysis.decided:
            result = analysis.finish()
        verdicts["sequential"].append(result.verdict)
        merged = [{k: np.concatenate([x[k] for x in xs]) for k in xs[0]} for xs in (all_b, all_c)]
        verdicts["fixed"].append(judge(merged[0], merged[1], DEFAULT_LLM).verdict)
    for name, vs in verdicts.items():
        assert Verdict.PASS not in vs, name
    assert verdicts["sequential"].count(Verdict.FAIL) >= 20  # most are caught, not just held


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_aa_false_fail_rate_long_run_many_seeds() -> None:
    """1000 A/A canaries, polled every 30 s for two hours."""
    runs = _runs(range(1000), Regression(), 30, 7200, sequential=DEFAULT_LLM)
    fails = sum(r["sequential"].rejected for r in runs)
    assert _at_most(fails, 1000, DEFAULT_LLM.alpha)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("metric", ["ttft_s", "latency_s", "cost_usd", "error", "safety_hit"])
def test_aa_zero_floor_type_one_error_many_seeds(metric: str) -> None:
    """1000 A/A canaries per metric, no floor, polled every 30 s for an hour."""
    prof = _zero_floor(DEFAULT_LLM, metric)
    runs = _runs(range(1000, 2000), Regression(), 30, 3600, sequential=prof)
    fails = sum(r["sequential"].rejected for r in runs)
    assert _at_most(fails, 1000, prof.alpha)
