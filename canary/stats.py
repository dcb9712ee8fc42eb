"""Fixed-horizon tests: Mann-Whitney U with the Hodges-Lehmann shift, and rate comparisons.

These are valid for one look at a sample of a size fixed in advance. Re-running them at every
poll inflates false failures; `canary.sequential` holds the tests that stay valid under
continuous monitoring.

Hodges-Lehmann confidence interval (Hodges & Lehmann 1963; Lehmann, "Nonparametrics", 1975,
ch. 2): with D the n*m differences y_j - x_i and c the largest integer with P0(U <= c) <=
alpha/2 under the Mann-Whitney null, [D_(c+1), D_(N-c)] covers the shift with probability
>= 1 - alpha (distribution-free for continuous data; it is the set of shifts the two-sided
Mann-Whitney test does not reject). c comes from the exact null distribution of U for small
samples without ties and from the normal approximation with tie correction otherwise.

Large samples: the order statistics of the n*m differences are found exactly without forming
them (`pairwise_order_statistics`). The rank of a candidate d, #(y - x <= d), costs one binary
search per element of the smaller sample (O(min(n,m) log max(n,m))). A 100 x 100 grid of the
samples' quantiles gives a first bracket for the wanted rank; interpolation on the rank
function (alternated with bisection) narrows it until at most n + m differences remain, which
are gathered and selected among. About 5 rank evaluations per order statistic; exact (up to
the rounding of y - x) at any n: 32 000 x 3 600 values take a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize
from scipy import stats as sps
from scipy.special import gammaln

EXACT_MAX_PAIRS = 2500  # n*m up to which the exact null distribution of U is used (no ties)
LARGE_COUNT = 10  # every cell of the 2x2 table at least this: normal approximations for rates


def bonferroni(alpha: float, m: int) -> float:
    """Per-test level that keeps the family-wise error rate of m tests at alpha."""
    return alpha / max(1, m)


# --- Mann-Whitney / Hodges-Lehmann -------------------------------------------------------


@lru_cache(maxsize=256)
def mwu_null_cdf(n: int, m: int) -> np.ndarray:
    """Exact P0(U <= u) for u = 0..n*m (continuous data, no ties).

    The counts of U are the coefficients of the Gaussian binomial [n+m choose n]_q =
    prod_{i=1..n} (1 - q^(m+i)) / (1 - q^i); each factor keeps the partial product a polynomial.
    """
    size = n * m + 1
    c = np.zeros(size)
    c[0] = 1.0
    for i in range(1, n + 1):
        shift = m + i
        if shift < size:
            c[shift:] -= c[: size - shift].copy()
        for r in range(i):  # divide by (1 - q^i): running sums along each residue class mod i
            c[r::i] = np.cumsum(c[r::i])
    pmf = np.clip(c, 0.0, None)
    cdf = np.cumsum(pmf / pmf.sum())
    cdf.flags.writeable = False
    return cdf


def _tie_corrected_sd(n: int, m: int, pooled: np.ndarray | None, presorted: bool = False) -> float:
    """Null sd of U, with the usual correction for ties (Lehmann 1975, eq. 1.32)."""
    total = n + m
    var = n * m / 12.0 * (total + 1)
    if pooled is not None:
        v = pooled if presorted else np.sort(pooled)
        starts = np.flatnonzero(np.concatenate(([True], v[1:] != v[:-1], [True])))
        t = np.diff(starts).astype(float)
        t = t[t > 1]
        if t.size:
            var -= n * m / 12.0 * float(np.sum(t**3 - t)) / (total * (total - 1))
    return math.sqrt(max(var, 0.0))


def mwu_lower_critical(n: int, m: int, alpha: float, *, exact: bool, sd: float | None = None) -> int:
    """Largest c with P0(U <= c) <= alpha/2 (-1 when even U = 0 is not that rare)."""
    if exact:
        cdf = mwu_null_cdf(n, m)
        # the relative slack keeps exact ties like P(U <= 0) = 0.05 at alpha/2 = 0.05 inside
        return int(np.searchsorted(cdf, alpha / 2.0 * (1 + 1e-9), side="right")) - 1
    if sd is None:
        sd = _tie_corrected_sd(n, m, None)
    z = sps.norm.isf(alpha / 2.0)
    # P0(U <= c) ~ Phi((c + 0.5 - nm/2) / sd), with continuity correction.
    return int(math.floor(n * m / 2.0 - 0.5 - z * sd))


def _count_le(xs: np.ndarray, ys: np.ndarray, d: float, iterate_y: bool) -> int:
    """Number of pairs with y_j - x_i <= d; `xs` or `ys` sorted, whichever is searched."""
    if iterate_y:  # xs sorted: y_j - x_i <= d  <=>  x_i >= y_j - d
        return int(xs.size * ys.size - np.searchsorted(xs, ys - d, side="left").sum())
    return int(np.searchsorted(ys, xs + d, side="right").sum())


def _gather(xs: np.ndarray, ys: np.ndarray, lo: float, hi: float, iterate_y: bool) -> np.ndarray:
    """All differences y_j - x_i counted in (lo, hi] by `_count_le`."""
    if iterate_y:
        a = np.searchsorted(xs, ys - hi, side="left")
        b = np.searchsorted(xs, ys - lo, side="left")
        outer, inner, sign = ys, xs, 1.0
    else:
        a = np.searchsorted(ys, xs + lo, side="right")
        b = np.searchsorted(ys, xs + hi, side="right")
        outer, inner, sign = xs, ys, -1.0
    lengths = b - a
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0)
    owner = np.repeat(np.arange(outer.size), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    idx = np.repeat(a, lengths) + offsets
    differences: np.ndarray = sign * (outer[owner] - inner[idx])
    return differences


def _smallest_above(xs: np.ndarray, ys: np.ndarray, lo: float, iterate_y: bool) -> float:
    if iterate_y:
        b = np.searchsorted(xs, ys - lo, side="left")
        ok = b > 0
        return float(np.min(ys[ok] - xs[b[ok] - 1]))
    a = np.searchsorted(ys, xs + lo, side="right")
    ok = a < ys.size
    return float(np.min(ys[a[ok]] - xs[ok]))


def _grid_sample(xs: np.ndarray, ys: np.ndarray, size: int = 100) -> np.ndarray:
    """Sorted differences of evenly spaced order statistics of both (sorted) samples: a cheap
    stand-in for the distribution of all pairwise differences."""
    px = xs[np.linspace(0, xs.size - 1, min(xs.size, size)).astype(int)]
    py = ys[np.linspace(0, ys.size - 1, min(ys.size, size)).astype(int)]
    return np.sort((py[:, None] - px[None, :]).ravel())


def _select(
    xs: np.ndarray,
    ys: np.ndarray,
    k: int,
    sample: np.ndarray | None,
    known: dict[float, int],
    gathered: list[tuple[int, np.ndarray]],
) -> float:
    """k-th smallest y_j - x_i for sorted xs, ys (see the module docstring).

    known: rank counts already evaluated, {d: #(y - x <= d)}, and gathered: sorted runs of
    differences with the rank before their first, both shared between the order statistics
    of one call (the two middle ones of an even count usually share one gather).
    """
    for start, run in gathered:
        if start < k <= start + run.size:
            return float(run[k - start - 1])
    n, m = xs.size, ys.size
    total = n * m
    iterate_y = m <= n  # binary-search the larger sample for each element of the smaller one

    def count(d: float) -> int:
        if d not in known:
            known[d] = _count_le(xs, ys, d, iterate_y)
        return known[d]

    lo, hi = float(ys[0] - xs[-1]), float(ys[-1] - xs[0])
    if k == 1:
        return lo
    if k == total:
        return hi
    if count(lo) >= k:
        return lo
    known.setdefault(hi, total)
    cap = max(n + m, 2048)
    if sample is not None:  # a guess from the subsample, checked against the true counts
        q = (k - 0.5) / total
        margin = 4.0 * math.sqrt(q * (1 - q) / sample.size) + 2.0 / sample.size
        count(float(sample[int(max(0.0, q - margin) * (sample.size - 1))]))
        count(float(sample[int(math.ceil(min(1.0, q + margin) * (sample.size - 1)))]))
    lo = max(d for d, c in known.items() if c < k)
    hi = min(d for d, c in known.items() if c >= k)
    c_lo, c_hi = known[lo], known[hi]
    for step in range(200):
        if c_hi - c_lo <= cap:
            cand = _gather(xs, ys, lo, hi, iterate_y)
            r = k - c_lo - 1
            if 0 <= r < cand.size:
                cand.sort()
                gathered.append((c_lo, cand))
                return float(cand[r])
            break  # rounding disagreed with the counts; fall back below
        if step % 3 < 2:  # regula falsi on the (locally nearly linear) rank function
            guess = lo + (hi - lo) * (k - c_lo) / (c_hi - c_lo)
        else:
            guess = lo + (hi - lo) / 2.0
        if not lo < guess < hi:
            guess = lo + (hi - lo) / 2.0
            if not lo < guess < hi:
                break  # bracket exhausted: one heavily tied value fills it
        c = count(guess)
        if c >= k:
            hi, c_hi = guess, c
        else:
            lo, c_lo = guess, c
    return _smallest_above(xs, ys, lo, iterate_y)


def pairwise_order_statistics(
    x: np.ndarray, y: np.ndarray, ks: Sequence[int], *, presorted: bool = False
) -> list[float]:
    """The ks-th smallest (1-based) of the n*m differences y_j - x_i, without forming them."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if not presorted:
        x, y = np.sort(x), np.sort(y)
    total = x.size * y.size
    for k in ks:
        if not 1 <= k <= total:
            raise ValueError(f"k={k} outside 1..{total}")
    sample = _grid_sample(x, y) if total > max(x.size + y.size, 2048) else None
    known: dict[float, int] = {}
    gathered: list[tuple[int, np.ndarray]] = []
    return [_select(x, y, k, sample, known, gathered) for k in ks]


def kth_pairwise_difference(x: np.ndarray, y: np.ndarray, k: int, *, presorted: bool = False) -> float:
    """The k-th smallest (1-based) of the n*m differences y_j - x_i."""
    return pairwise_order_statistics(x, y, [k], presorted=presorted)[0]


@dataclass(frozen=True)
class ShiftEstimate:
    """Hodges-Lehmann shift of y relative to x, its CI, and the Mann-Whitney test."""

    shift: float
    lower: float
    upper: float
    confidence: float
    p_value: float
    u_statistic: float
    method: str  # "exact" or "normal"


def mann_whitney(x: np.ndarray, y: np.ndarray, *, presorted: bool = False) -> tuple[float, float, bool]:
    """(U, two-sided p-value, exact?) of the Mann-Whitney test; U = #{y > x} + #{y = x} / 2.

    Exact null distribution when n*m <= EXACT_MAX_PAIRS and there are no ties, else the normal
    approximation with tie correction and continuity correction (as scipy's "asymptotic").
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if not presorted:
        x, y = np.sort(x), np.sort(y)
    n, m = x.size, y.size
    below = np.searchsorted(x, y, side="left")
    equal = np.searchsorted(x, y, side="right") - below
    u = float(below.sum() + 0.5 * equal.sum())
    pooled = np.sort(np.concatenate([x, y]), kind="stable")  # a merge of two sorted runs
    has_ties = bool(np.any(pooled[1:] == pooled[:-1]))
    if n * m <= EXACT_MAX_PAIRS and not has_ties:
        cdf = mwu_null_cdf(n, m)
        ui = int(round(u))
        lower_tail = cdf[ui]
        upper_tail = 1.0 - (cdf[ui - 1] if ui > 0 else 0.0)
        return u, float(min(1.0, 2.0 * min(lower_tail, upper_tail))), True
    sd = _tie_corrected_sd(n, m, pooled if has_ties else None, presorted=True)
    if sd == 0:
        return u, 1.0, False
    z = max(0.0, abs(u - n * m / 2.0) - 0.5) / sd
    return u, float(min(1.0, 2.0 * sps.norm.sf(z))), False


def hodges_lehmann(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> ShiftEstimate:
    """HL estimate median(y_j - x_i) with its distribution-free CI and the two-sided MWU p-value.

    x is the baseline, y the canary; a positive shift means the canary is higher.
    """
    x = np.sort(np.asarray(x, dtype=float))
    y = np.sort(np.asarray(y, dtype=float))
    n, m = x.size, y.size
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one value")
    total = n * m
    u, p_value, exact = mann_whitney(x, y, presorted=True)
    if exact:
        c = mwu_lower_critical(n, m, 1.0 - confidence, exact=True)
    else:
        pooled = np.sort(np.concatenate([x, y]), kind="stable")
        c = mwu_lower_critical(n, m, 1.0 - confidence, exact=False, sd=_tie_corrected_sd(n, m, pooled, presorted=True))

    ks = [total // 2 + 1] if total % 2 else [total // 2, total // 2 + 1]
    if c >= 0:
        ks += [c + 1, total - c]
    values = pairwise_order_statistics(x, y, ks, presorted=True)
    shift = float(np.mean(values[: 1 if total % 2 else 2]))
    lower, upper = (values[-2], values[-1]) if c >= 0 else (-math.inf, math.inf)
    return ShiftEstimate(shift, lower, upper, confidence, p_value, u, "exact" if exact else "normal")


# --- proportions --------------------------------------------------------------------------


def odds_to_rate_ratio(odds: float, base_rate: float) -> float:
    """Rate ratio implied by an odds ratio at a baseline rate (Zhang & Yu 1998)."""
    if math.isinf(odds):
        return 1.0 / base_rate if base_rate > 0 else math.inf
    return odds / (1.0 - base_rate + base_rate * odds)


def relative_change(rate_x: float, rate_y: float) -> float:
    """rate_y / rate_x - 1, with 0/0 read as no change and k/0 as +inf."""
    if rate_x > 0:
        return rate_y / rate_x - 1.0
    return 0.0 if rate_y == 0 else math.inf


@dataclass(frozen=True)
class RateComparison:
    """Canary (y) against baseline (x) rate: relative change and its CI, test p-value."""

    rate_x: float
    rate_y: float
    change: float  # rate_y / rate_x - 1
    lower: float
    upper: float
    confidence: float
    p_value: float
    method: str


def exact_odds_ratio_ci(k_x: int, n_x: int, k_y: int, n_y: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact conditional CI of the odds ratio (y against x), as scipy's
    `odds_ratio(kind="conditional")` (Cornfield 1956): given the k_x + k_y events, k_y is
    Fisher-noncentral-hypergeometric in psi; each end solves one tail = (1 - confidence) / 2.
    """
    alpha = 1.0 - confidence
    events = k_x + k_y
    u = np.arange(max(0, events - n_x), min(events, n_y) + 1)
    log_h = (
        gammaln(n_y + 1)
        - gammaln(u + 1)
        - gammaln(n_y - u + 1)
        + gammaln(n_x + 1)
        - gammaln(events - u + 1)
        - gammaln(n_x - events + u + 1)
    )

    def tail(g: float, upper: bool) -> float:
        w = log_h + u * g
        w = np.exp(w - w.max())
        mask = u >= k_y if upper else u <= k_y
        return float(w[mask].sum() / w.sum()) - alpha / 2

    lo = 0.0 if k_y <= u[0] else math.exp(optimize.brentq(tail, -50, 50, args=(True,), xtol=1e-10))
    hi = math.inf if k_y >= u[-1] else math.exp(optimize.brentq(tail, -50, 50, args=(False,), xtol=1e-10))
    return lo, hi


def compare_rates(k_x: int, n_x: int, k_y: int, n_y: int, confidence: float = 0.95) -> RateComparison:
    """Compare two binomial rates with a test that is honest for sparse counts.

    When every cell of the 2x2 table has at least `LARGE_COUNT` counts: pooled two-proportion z
    test and the Katz log rate-ratio CI. Otherwise Fisher's exact test and the exact conditional
    CI of the odds ratio, turned into a rate-ratio CI at the observed baseline rate: zero-heavy
    data then gives a wide interval and an honest p-value instead of a confident "no change".
    """
    if n_x <= 0 or n_y <= 0:
        raise ValueError("both samples need at least one value")
    alpha = 1.0 - confidence
    p_x, p_y = k_x / n_x, k_y / n_y
    change = relative_change(p_x, p_y)
    cells = (k_x, n_x - k_x, k_y, n_y - k_y)
    if min(cells) >= LARGE_COUNT:
        pooled = (k_x + k_y) / (n_x + n_y)
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_x + 1 / n_y))
        p_value = float(2 * sps.norm.sf(abs(p_y - p_x) / se0)) if se0 > 0 else 1.0
        se = math.sqrt(1 / k_y - 1 / n_y + 1 / k_x - 1 / n_x)
        z = sps.norm.isf(alpha / 2)
        log_rr = math.log(p_y / p_x)
        lower, upper = math.exp(log_rr - z * se) - 1, math.exp(log_rr + z * se) - 1
        method = "two-proportion z test, Katz rate-ratio CI"
    else:
        table = [[k_y, n_y - k_y], [k_x, n_x - k_x]]
        p_value = float(sps.fisher_exact(table).pvalue)
        or_low, or_high = exact_odds_ratio_ci(k_x, n_x, k_y, n_y, confidence)
        lower = odds_to_rate_ratio(or_low, p_x) - 1
        upper = odds_to_rate_ratio(or_high, p_x) - 1
        method = "Fisher exact test, exact conditional CI"
    return RateComparison(p_x, p_y, change, lower, upper, confidence, p_value, method)


def clopper_pearson_upper(k: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) exact upper bound of a binomial rate."""
    if k >= n:
        return 1.0
    return float(sps.beta.ppf(1 - alpha, k + 1, n - k))


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) exact lower bound of a binomial rate."""
    if k <= 0:
        return 0.0
    return float(sps.beta.ppf(alpha, k, n - k + 1))


def rate_increase_upper(k_x: int, n_x: int, k_y: int, n_y: int, alpha: float) -> float:
    """Exact one-sided (1 - alpha) upper bound of rate_y - rate_x, the increase in rate units.

    The canary's Clopper-Pearson upper bound minus the baseline's lower bound, alpha / 2 each
    (a union bound, so exact at any count, zeros included; 0 of n events in both gives
    about ln(2 / alpha) / n).
    """
    return clopper_pearson_upper(k_y, n_y, alpha / 2) - clopper_pearson_lower(k_x, n_x, alpha / 2)


@dataclass(frozen=True)
class MeanComparison:
    """Relative difference of two means (y against x) with a delta-method CI."""

    mean_x: float
    mean_y: float
    change: float  # mean_y / mean_x - 1
    lower: float
    upper: float
    p_value: float


def compare_means(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> MeanComparison:
    """Ratio of means on raw values, CI from the delta method on log(mean_y / mean_x).

    For values with many exact ties (zero cost of cache hits, discrete token timings), where
    rank methods and the Hodges-Lehmann interval collapse to a point: the mean moves with the
    share of zeros and with the non-zero values alike. Needs a positive baseline mean.
    """
    mx, my = float(np.mean(x)), float(np.mean(y))
    vx = float(np.var(x, ddof=1)) / x.size if x.size > 1 else 0.0
    vy = float(np.var(y, ddof=1)) / y.size if y.size > 1 else 0.0
    se_diff = math.sqrt(vx + vy)
    if se_diff > 0:
        p_value = float(2 * sps.norm.sf(abs(my - mx) / se_diff))
    else:  # both samples constant
        p_value = 1.0 if mx == my else 0.0
    if mx <= 0:
        change = 0.0 if my == mx else math.inf
        return MeanComparison(mx, my, change, change, change if my == mx else math.inf, p_value)
    z = sps.norm.isf((1 - confidence) / 2)
    if my <= 0:
        return MeanComparison(mx, my, -1.0, -1.0, math.expm1(z * math.sqrt(vx) / mx), p_value)
    se_log = math.sqrt(vx / mx**2 + vy / my**2)
    log_ratio = math.log(my / mx)
    return MeanComparison(
        mx, my, my / mx - 1, math.expm1(log_ratio - z * se_log), math.expm1(log_ratio + z * se_log), p_value
    )
