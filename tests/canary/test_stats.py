"""Fixed-horizon statistics: Hodges-Lehmann shift and CI, Mann-Whitney, rate comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.stats.contingency import odds_ratio

from canary.stats import (
    bonferroni,
    clopper_pearson_upper,
    compare_rates,
    exact_odds_ratio_ci,
    hodges_lehmann,
    kth_pairwise_difference,
    mann_whitney,
    mwu_lower_critical,
    mwu_null_cdf,
    odds_to_rate_ratio,
)


def test_hl_hand_computed_three_by_three() -> None:
    # y - x for x = 1,2,3 and y = 4,6,9: 1 2 3 3 4 5 6 7 8; median 4.
    # Exact null of U for n = m = 3: P(U <= 0) = 1 / C(6,3) = 0.05, so the 90 % CI is
    # [D_(1), D_(9)] and the 95 % CI is unbounded (no U is rare enough).
    est = hodges_lehmann([1, 2, 3], [4, 6, 9], confidence=0.90)
    assert est.shift == 4.0
    assert (est.lower, est.upper) == (1.0, 8.0)
    assert est.method == "exact"
    wide = hodges_lehmann([1, 2, 3], [4, 6, 9], confidence=0.95)
    assert math.isinf(wide.lower) and math.isinf(wide.upper)


def test_hl_hand_computed_four_by_five() -> None:
    # n=4, m=5: C(9,4) = 126 arrangements; counts of U = 0,1,2 are 1,1,2, so
    # P(U<=1) = 2/126 = 0.0159 <= 0.025 < P(U<=2) = 4/126: c = 1, CI = [D_(2), D_(19)].
    # Sorted differences: 1 2 2 3 3 3 4 4 4 4 5 5 5 5 6 6 6 7 7 8.
    x, y = [1, 2, 3, 4], [5, 6, 7, 8, 9]
    assert mwu_lower_critical(4, 5, 0.05, exact=True) == 1
    est = hodges_lehmann(x, y, confidence=0.95)
    assert est.shift == 4.5  # mean of D_(10) = 4 and D_(11) = 5
    assert (est.lower, est.upper) == (2.0, 7.0)


@pytest.mark.parametrize("n,m", [(3, 4), (5, 5), (7, 10), (12, 9), (30, 40)])
def test_exact_null_distribution_matches_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 100 + m)
    cdf = mwu_null_cdf(n, m)
    assert cdf[-1] == pytest.approx(1.0)
    for _ in range(5):
        x, y = rng.normal(size=n), rng.normal(size=m) + rng.normal()
        res = sps.mannwhitneyu(y, x, alternative="less", method="exact")
        assert cdf[int(res.statistic)] == pytest.approx(res.pvalue, rel=1e-9)


def test_mann_whitney_matches_scipy_exact_and_asymptotic() -> None:
    rng = np.random.default_rng(7)
    for trial in range(60):
        n, m = rng.integers(2, 70, size=2)
        if trial % 2:
            x, y = rng.integers(0, 6, n).astype(float), rng.integers(0, 6, m).astype(float)
        else:
            x, y = rng.lognormal(size=n), rng.lognormal(0.3, 1, size=m)
        u, p, exact = mann_whitney(x, y)
        ref = sps.mannwhitneyu(y, x, alternative="two-sided", method="exact" if exact else "asymptotic")
        assert u == pytest.approx(ref.statistic)
        assert p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-15)


def test_ci_is_the_inversion_of_the_exact_test() -> None:
    """0 lies inside the HL CI exactly when scipy's exact two-sided test does not reject."""
    rng = np.random.default_rng(11)
    agree = 0
    for _ in range(200):
        n, m = rng.integers(3, 12, size=2)
        x, y = rng.normal(size=n), rng.normal(size=m) + rng.uniform(-1.5, 1.5)
        est = hodges_lehmann(x, y, confidence=0.95)
        p = sps.mannwhitneyu(y, x, alternative="two-sided", method="exact").pvalue
        agree += (est.lower < 0 < est.upper) == (p > 0.05)
    assert agree == 200


@pytest.mark.parametrize("kind", ["continuous", "ties"])
def test_kth_pairwise_difference_matches_brute_force(kind: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        n, m = rng.integers(1, 400, size=2)
        if kind == "ties":
            x, y = rng.integers(0, 8, n).astype(float), rng.integers(0, 8, m).astype(float)
        else:
            x, y = rng.lognormal(size=n), rng.lognormal(size=m)
        d = np.sort((y[:, None] - x[None, :]).ravel())
        for k in {1, d.size, d.size // 2 + 1, int(rng.integers(1, d.size + 1))}:
            assert kth_pairwise_difference(x, y, k) == pytest.approx(d[k - 1], abs=1e-12)


def test_kth_pairwise_difference_large_samples() -> None:
    """The bracketing search must agree with a full sort at sizes where it matters."""
    rng = np.random.default_rng(5)
    x, y = rng.lognormal(size=6000), rng.lognormal(size=700)
    d = np.sort((y[:, None] - x[None, :]).ravel())
    for k in (1, 17, d.size // 40, d.size // 2, d.size - 5):
        assert kth_pairwise_difference(x, y, k) == d[k - 1]
    zeros = np.zeros(5000)
    zeros[:10] = 1
    few = np.zeros(500)
    few[:20] = 1  # one value fills most of the differences: the tie path
    dz = np.sort((few[:, None] - zeros[None, :]).ravel())
    for k in (1, dz.size // 2, dz.size - 20_000, dz.size):
        assert kth_pairwise_difference(zeros, few, k) == dz[k - 1]


def test_hl_ci_coverage_on_shifted_normals() -> None:
    """The normal-approximation CI covers the true shift about as often as promised."""
    rng = np.random.default_rng(13)
    covered, reps = 0, 300
    for _ in range(reps):
        x, y = rng.normal(size=300), rng.normal(size=60) + 0.4
        est = hodges_lehmann(x, y, confidence=0.90)
        covered += est.lower <= 0.4 <= est.upper
    # Binomial(300, 0.9): 99.9 % of outcomes lie in [255, 284].
    lo, hi = sps.binom.ppf([0.0005, 0.9995], reps, 0.90)
    assert lo <= covered <= hi


def test_zero_heavy_data_fools_the_rank_shift() -> None:
    """Kayenta's complaint: errors as 0/1 values through Mann-Whitney/HL look unchanged
    (shift 0, CI [0, 0]) even when the canary's error rate is 20 times the baseline's."""
    base, can = np.zeros(5000), np.zeros(500)
    base[:10], can[:20] = 1, 1
    est = hodges_lehmann(base, can, confidence=0.98)
    assert est.shift == est.lower == est.upper == 0.0
    rates = compare_rates(10, 5000, 20, 500, confidence=0.98)
    assert rates.lower > 0 and rates.change == pytest.approx(19.0)


def test_compare_rates_sparse_uses_fisher() -> None:
    r = compare_rates(0, 2000, 3, 200, confidence=0.99)
    assert r.method.startswith("Fisher")
    assert r.p_value == pytest.approx(sps.fisher_exact([[3, 197], [0, 2000]]).pvalue)
    assert r.p_value < 0.01 and r.lower > 0 and math.isinf(r.change)
    none = compare_rates(0, 2000, 0, 200)
    assert none.p_value == 1.0 and none.change == 0.0
    assert none.lower == -1.0 and math.isinf(none.upper)  # no events: no information


def test_exact_odds_ratio_ci_matches_scipy() -> None:
    rng = np.random.default_rng(17)
    for _ in range(60):
        n_x, n_y = int(rng.integers(50, 5000)), int(rng.integers(20, 800))
        k_x, k_y = int(rng.integers(0, 12)), int(rng.integers(0, 12))
        ref = odds_ratio([[k_y, n_y - k_y], [k_x, n_x - k_x]], kind="conditional").confidence_interval(0.99)
        lo, hi = exact_odds_ratio_ci(k_x, n_x, k_y, n_y, 0.99)
        assert lo == pytest.approx(ref.low, rel=1e-7) and hi == pytest.approx(ref.high, rel=1e-7)


def test_compare_rates_large_counts_use_z_and_katz() -> None:
    r = compare_rates(300, 30000, 60, 3000, confidence=0.95)
    assert r.method.startswith("two-proportion z")
    se = math.sqrt(1 / 60 - 1 / 3000 + 1 / 300 - 1 / 30000)
    assert r.lower == pytest.approx(2 * math.exp(-1.959964 * se) - 1, rel=1e-5)
    assert r.upper == pytest.approx(2 * math.exp(1.959964 * se) - 1, rel=1e-5)
    pooled = 360 / 33000
    z = (0.02 - 0.01) / math.sqrt(pooled * (1 - pooled) * (1 / 30000 + 1 / 3000))
    assert r.p_value == pytest.approx(2 * sps.norm.sf(z))


def test_helpers() -> None:
    assert bonferroni(0.05, 7) == pytest.approx(0.05 / 7)
    assert odds_to_rate_ratio(1.0, 0.3) == 1.0
    assert odds_to_rate_ratio(3.0, 0.01) == pytest.approx(3.0 / (0.99 + 0.03))
    assert odds_to_rate_ratio(math.inf, 0.25) == 4.0
    # Clopper-Pearson with no events: 1 - alpha^(1/n).
    assert clopper_pearson_upper(0, 1000, 0.05) == pytest.approx(1 - 0.05 ** (1 / 1000))
    assert clopper_pearson_upper(5, 5, 0.05) == 1.0
