"""Always-valid tests: formulas against direct computation, and error control when polled."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from canary.sequential import (
    ConditionalRateMixture,
    NormalMixtureSPRT,
    RunningMoments,
    mixture_boundary_z,
    mixture_log_lr,
    rate_confidence_sequence,
)


def test_running_moments_match_numpy() -> None:
    rng = np.random.default_rng(0)
    data = rng.lognormal(size=1000)
    mom = RunningMoments()
    for chunk in np.array_split(data, [3, 4, 200, 201, 650]):
        mom.add(chunk)
    assert mom.n == 1000
    assert mom.mean == pytest.approx(data.mean())
    assert mom.variance == pytest.approx(data.var(ddof=1))


def test_mixture_formula_is_the_mixture_integral() -> None:
    """Lambda = integral of N(delta; theta, v) / N(delta; 0, v) dN(theta; 0, tau2)."""
    for delta, v, t2 in ((0.3, 0.01, 0.02), (-0.05, 0.004, 0.1), (1.2, 0.5, 0.3)):

        def integrand(theta: float, delta: float = delta, v: float = v, t2: float = t2) -> float:
            lr = sps.norm.pdf(delta, theta, math.sqrt(v)) / sps.norm.pdf(delta, 0, math.sqrt(v))
            return lr * sps.norm.pdf(theta, 0, math.sqrt(t2))

        numeric, _ = integrate.quad(integrand, -10, 10, points=[delta])
        assert mixture_log_lr(delta, v, t2) == pytest.approx(math.log(numeric), rel=1e-6)
        z = mixture_boundary_z(v, t2, 0.01)
        assert mixture_log_lr(z * math.sqrt(v), v, t2) == pytest.approx(math.log(100))


def test_normal_mixture_maps_the_t_statistic_to_the_normal_scale() -> None:
    rng = np.random.default_rng(1)
    s = NormalMixtureSPRT(alpha=0.05, mixture_sd=0.3)
    s.update(rng.normal(0, 1, 400), rng.normal(0.2, 1.3, 60))
    a, b = s.x.variance / s.x.n, s.y.variance / s.y.n
    df = (a + b) ** 2 / (a * a / (s.x.n - 1) + b * b / (s.y.n - 1))
    assert s.df == pytest.approx(df)
    for theta0 in (0.0, 0.1, -0.2):
        t = (s.estimate - theta0) / math.sqrt(s.variance)
        z = sps.norm.isf(sps.t.sf(abs(t), df))
        assert abs(z) < abs(t)  # t tails are heavier: the same t is weaker evidence
        expected = mixture_log_lr(z * math.sqrt(s.variance), s.variance, s.tau2)
        assert s.log_e_value(theta0) == pytest.approx(expected, rel=1e-9)


def test_confidence_sequence_ends_are_where_the_e_value_reaches_one_over_alpha() -> None:
    rng = np.random.default_rng(2)
    s = NormalMixtureSPRT(alpha=0.01, mixture_sd=0.25)
    s.update(rng.normal(size=900), rng.normal(0.1, 1, size=100))
    lo, hi = s.confidence_sequence()
    assert lo < s.estimate < hi
    for end in (lo, hi):
        assert s.log_e_value(end) == pytest.approx(math.log(100), rel=1e-9)


def test_always_valid_p_value_is_monotone_and_rejects_a_real_shift() -> None:
    rng = np.random.default_rng(3)
    s = NormalMixtureSPRT(alpha=0.05, min_samples=20)
    ps = []
    for _ in range(60):
        s.update(rng.normal(size=90), rng.normal(0.5, 1, size=10))
        ps.append(s.p_value)
    assert all(a >= b for a, b in itertools.pairwise(ps))
    assert ps[-1] < 1e-6
    assert s.confidence_sequence()[0] > 0


def test_normal_mixture_type_one_error_under_continuous_monitoring() -> None:
    """A/A with unequal, random allocation, looked at after every batch of 30 for 150 looks:
    the test may reject at most alpha of the time (here far less, being conservative)."""
    rng = np.random.default_rng(4)
    runs, rejections = 300, 0
    for _ in range(runs):
        s = NormalMixtureSPRT(alpha=0.10, min_samples=30)
        for _ in range(150):
            k = rng.binomial(30, 0.1)
            s.update(rng.normal(size=30 - k), rng.normal(size=k))
            if s.p_value <= 0.10:
                rejections += 1
                break
    assert rejections <= sps.binom.ppf(0.999, runs, 0.10)


def _fisher_llr(k_y: int, n_x: int, n_y: int, events: int, g: float) -> float:
    return sps.nchypergeom_fisher.logpmf(k_y, n_x + n_y, n_y, events, math.exp(g)) - sps.hypergeom.logpmf(
        k_y, n_x + n_y, n_y, events
    )


def test_conditional_mixture_matches_fishers_noncentral_hypergeometric() -> None:
    """l(psi) is the sum over batches of log nchypergeom_fisher(psi) - log hypergeom."""
    m = ConditionalRateMixture(alpha=0.05)
    m.update(4, 900, 3, 100)
    for g in (-1.0, 0.52, 1.4):  # grid points
        assert m.log_likelihood_ratio(g) == pytest.approx(_fisher_llr(3, 900, 100, 7, g), rel=1e-7)
    m.update(2, 800, 2, 90)
    for g in (-1.0, 0.52, 1.4):  # grid points
        both = _fisher_llr(3, 900, 100, 7, g) + _fisher_llr(2, 800, 90, 4, g)
        assert m.log_likelihood_ratio(g) == pytest.approx(both, rel=1e-7)


def test_conditional_mixture_gets_no_evidence_from_zero_events() -> None:
    m = ConditionalRateMixture(alpha=0.05)
    for _ in range(50):
        m.update(0, 900, 0, 100)
    assert m.log_e_value() == 0.0 and m.p_value == 1.0
    assert m.confidence_sequence() == (0.0, math.inf)


def test_conditional_mixture_fails_a_few_canary_errors_against_a_clean_baseline() -> None:
    """0 errors in 9 000 baseline requests, the canary's errors keep coming: at a 10 % share
    each canary-only event is 10:1 evidence, so a handful is enough."""
    m = ConditionalRateMixture(alpha=0.05 / 7)
    events = 0
    while m.p_value > 0.05 / 7:
        m.update(0, 900, 1, 100)
        events += 1
    assert 2 <= events <= 6
    assert m.confidence_sequence()[0] > 1.0


def test_conditional_mixture_type_one_error_with_sparse_events() -> None:
    """A/A at a 1 % event rate, 10 % canary share, 60 looks: exact, whatever the sparsity."""
    rng = np.random.default_rng(5)
    runs, rejections = 250, 0
    for _ in range(runs):
        m = ConditionalRateMixture(alpha=0.10)
        for _ in range(60):
            n_y = rng.binomial(300, 0.1)
            n_x = 300 - n_y
            m.update(int(rng.binomial(n_x, 0.01)), n_x, int(rng.binomial(n_y, 0.01)), n_y)
        rejections += m.p_value <= 0.10
    assert rejections <= sps.binom.ppf(0.999, runs, 0.10)


def test_conditional_mixture_confidence_sequence_covers_the_true_odds_ratio() -> None:
    rng = np.random.default_rng(6)
    runs, missed = 150, 0
    p_x, p_y = 0.02, 0.04
    true_or = (p_y / (1 - p_y)) / (p_x / (1 - p_x))
    for _ in range(runs):
        m = ConditionalRateMixture(alpha=0.10)
        ever_missed = False
        for _ in range(40):
            m.update(int(rng.binomial(900, p_x)), 900, int(rng.binomial(100, p_y)), 100)
            lo, hi = m.confidence_sequence()
            ever_missed |= not lo <= true_or <= hi
        missed += ever_missed
    assert missed <= sps.binom.ppf(0.999, runs, 0.10)


def test_rate_confidence_sequence_by_hand_and_its_coverage() -> None:
    """With no events and a Beta(1, b) prior the mixture is b / (b + n) / (1 - p)^n, so the
    upper end solves n * -log(1 - p) = log(1/alpha) + log((b + n) / b)."""
    alpha, n, b = 0.01, 2000, 199.0
    lo, hi = rate_confidence_sequence(0, n, alpha, prior_mean=1 / 200, prior_size=200)
    assert lo == 0.0
    assert -n * math.log1p(-hi) == pytest.approx(math.log(1 / alpha) + math.log((b + n) / b), rel=1e-6)
    # time-uniform coverage: watched after every batch, the true rate leaves it rarely
    rng = np.random.default_rng(3)
    runs, missed = 300, 0
    for _ in range(runs):
        k = m = 0
        for _ in range(50):
            k += int(rng.binomial(100, 0.004))
            m += 100
            lo, hi = rate_confidence_sequence(k, m, 0.05)
            if not lo <= 0.004 <= hi:
                missed += 1
                break
    assert missed <= sps.binom.ppf(0.999, runs, 0.05)
