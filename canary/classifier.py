"""Classify one metric: Pass, High, Low, NodataFail or Inconclusive, with a reason.

Two modes share the outcome rules' shape, not their evidence:

- Fixed horizon (`classify_fixed`, Kayenta-like): one look at all the data. High when the
  interval excludes zero on the harmful side (significant at the per-metric level) and the
  point estimate reaches the floor; Low mirrored. Otherwise Pass when the interval rules out
  harm beyond the tolerance, else Inconclusive. Valid for one look only.
- Sequential (`SequentialMetric`): an always-valid confidence sequence, polled at will. High
  only when the whole sequence lies beyond the floor, so a true change at or below the floor
  fails with probability at most alpha over the whole run; Pass while it lies inside the
  tolerance; undecided in between, Inconclusive if still undecided at the end. High and Low
  are final once reached.

Continuous metrics are compared on the log scale unless configured linear: latencies, costs
and throughputs are positive, right-skewed and change multiplicatively, so log values are
close to normal (exactly so for log-normal data) and the sequential test's normal theory
applies after a short burn-in; its effect is the ratio of geometric means, and of every
quantile under a pure scale change. The assumption is a finite variance of log values and
independent requests; heavy bimodality on the log scale slows the CLT down, so keep
`min_samples` at 50 or more. Values are not outlier-trimmed in sequential mode (the running
sums cannot take it back), which log values make unnecessary. Proportions are compared through
their rate ratio. Effects are relative: +0.31 is "31 % higher".

Two more margins, for data where ratios and ranks see nothing (issue 22, docs/canary.md):
a rate metric also passes when its increase in rate units is shown to be at most
`absolute_margin` (zero events in both versions never rule out "+100 %"); and in fixed mode a
continuous metric with one value in 20 % or more of its samples (zero cost of cache hits) is
judged on its ratio of means, since the rank interval collapses onto the tied value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from canary import stats
from canary.config import Direction, Kind, MetricConfig, NanStrategy, OutlierRule, Scale
from canary.sequential import ConditionalRateMixture, NormalMixtureSPRT, rate_confidence_sequence


class Outcome(StrEnum):
    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA_FAIL = "NodataFail"
    INCONCLUSIVE = "Inconclusive"


FAILED = frozenset({Outcome.HIGH, Outcome.LOW, Outcome.NODATA_FAIL})
COUNTED = FAILED | {Outcome.PASS}  # the outcomes in Kayenta's score denominator


@dataclass(frozen=True)
class Summary:
    """Per-version summary of the values judged (after the NaN strategy)."""

    n: int
    mean: float | None
    p50: float | None
    p95: float | None

    @classmethod
    def of(cls, values: np.ndarray) -> "Summary":
        if values.size == 0:
            return cls(0, None, None, None)
        p50, p95 = np.percentile(values, [50, 95])
        return cls(int(values.size), float(values.mean()), float(p50), float(p95))


@dataclass(frozen=True)
class MetricResult:
    """One row of a canary analysis."""

    name: str
    label: str
    kind: Kind
    direction: Direction
    critical: bool
    group: str
    outcome: Outcome
    effect: float | None  # relative: +0.31 = canary 31 % higher
    lower: float | None  # interval on the same scale
    upper: float | None
    interval: str | None  # "98% CI" or "99.3% CS"
    test: str
    p_value: float | None
    e_value: float | None
    reason: str
    baseline: Summary
    canary: Summary
    decided: bool  # False while a sequential analysis may still change it
    groups: tuple[str, ...] = ()  # every group it scores in (Kayenta: one or more); () = (group,)
    muted: bool = False  # reported only: never scored, never failing
    must_decide: bool = False
    critical_failure: bool = False  # a critical metric failed beyond its critical thresholds
    margin: str | None = None  # for a Pass: the margin that decided it, "relative" or "absolute"

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED and not self.muted

    @property
    def score_groups(self) -> tuple[str, ...]:
        return self.groups or (self.group,)

    @property
    def has_data(self) -> bool:
        return self.baseline.n > 0 and self.canary.n > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (infinite values as "inf" / "-inf")."""
        d = asdict(self)
        d["outcome"] = self.outcome.value
        d["kind"], d["direction"] = self.kind.value, self.direction.value
        d["groups"] = list(self.groups)
        for key in _FLOATS:
            d[key] = _json_float(d[key])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MetricResult":
        d = dict(d)
        d["outcome"] = Outcome(d["outcome"])
        d["kind"], d["direction"] = Kind(d["kind"]), Direction(d["direction"])
        d["baseline"], d["canary"] = Summary(**d["baseline"]), Summary(**d["canary"])
        d["groups"] = tuple(d.get("groups") or ())
        for key in _FLOATS:
            if d[key] is not None:
                d[key] = float(d[key])
        return cls(**d)


_FLOATS = ("effect", "lower", "upper", "p_value", "e_value")


def _json_float(v: float | None) -> float | str | None:
    if v is None or math.isfinite(v):
        return v
    return "inf" if v > 0 else "-inf" if v < 0 else None


# --- input preparation --------------------------------------------------------------------


def prepare(cfg: MetricConfig, values: ArrayLike | None) -> np.ndarray:
    """Values as floats after the NaN strategy; proportions as 0.0/1.0."""
    if values is None:
        return np.empty(0)
    arr = np.asarray(values, dtype=float).ravel()
    nan = np.isnan(arr)
    if nan.any():
        arr = arr[~nan] if cfg.nan_strategy is NanStrategy.REMOVE else np.where(nan, 0.0, arr)
    if cfg.kind is Kind.PROPORTION:
        if np.any((arr != 0) & (arr != 1)):
            raise ValueError(f"{cfg.name}: proportion samples must be 0/1 (or booleans)")
    return arr


def to_analysis_scale(cfg: MetricConfig, values: np.ndarray) -> np.ndarray:
    if cfg.scale is Scale.LOG:
        logged: np.ndarray = np.log(np.maximum(values, cfg.log_floor))
        return logged
    return values


def remove_outliers(values: np.ndarray, rule: OutlierRule, factor: float = 3.0) -> np.ndarray:
    """Drop one version's outliers. tukey: outside [Q1 - f IQR, Q3 + f IQR]; kayenta:
    outside [min(p1, Q1 - f IQR), max(p99, Q3 + f IQR)], Kayenta's fence, which never drops
    more than the outer 1 % on either side."""
    if rule is OutlierRule.NONE or values.size < 4:
        return values
    p1, q1, q3, p99 = np.percentile(values, [1, 25, 75, 99])
    lo, hi = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
    if rule is OutlierRule.KAYENTA:
        lo, hi = min(p1, lo), max(p99, hi)
    kept: np.ndarray = values[(values >= lo) & (values <= hi)]
    return kept


TIE_SHARE = 0.2  # fixed mode: a single value this common makes rank methods blind (see below)


def tie_share(b: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """(share of the pooled values equal to the most common one, that value)."""
    pooled = np.concatenate([b, c])
    values, counts = np.unique(pooled, return_counts=True)
    i = int(np.argmax(counts))
    return float(counts[i] / pooled.size), float(values[i])


def _relative(cfg: MetricConfig, delta: float, baseline_level: float) -> float:
    """A difference on the analysis scale as a relative change."""
    if cfg.scale is Scale.LOG:
        return math.expm1(delta) if delta < 700 else math.inf
    if baseline_level == 0:
        return math.copysign(math.inf, delta) if delta else 0.0
    return delta / abs(baseline_level)


# --- outcome rules and reasons ------------------------------------------------------------


def _harms(direction: Direction) -> tuple[bool, bool]:
    """(an increase harms, a decrease harms)."""
    return direction is not Direction.DECREASE, direction is not Direction.INCREASE


def _pct(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    p = 100 * v
    return f"{p:+.1f}%" if abs(p) < 10 else f"{p:+.0f}%"


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):.3g}%"


def _effect_text(
    cfg: MetricConfig, effect: float, lower: float, upper: float, interval: str, rates: tuple[float, float] | None
) -> str:
    span = f"{interval} {_pct(lower)}..{_pct(upper)}"
    if rates is not None:
        return f"{cfg.display} {100 * rates[0]:.2f}% -> {100 * rates[1]:.2f}% ({_pct(effect)}, {span})"
    return f"{cfg.display} {_pct(effect)} ({span})"


@dataclass(frozen=True)
class _Evidence:
    effect: float
    lower: float
    upper: float
    test: str
    p_value: float | None
    e_value: float | None
    rates: tuple[float, float] | None = None  # (baseline, canary) for proportions
    # bounds of canary rate - baseline rate (rate units), for cfg.absolute_margin
    difference: tuple[float, float] | None = None


def _points(v: float) -> str:
    return f"{100 * v:+.2f} pp"


def _ratio_within(cfg: MetricConfig, ev: _Evidence) -> bool:
    """The interval rules out harm beyond the relative tolerance."""
    up_harms, down_harms = _harms(cfg.direction)
    return (not up_harms or ev.upper <= cfg.tolerance) and (not down_harms or ev.lower >= -cfg.tolerance)


def _absolute_within(cfg: MetricConfig, ev: _Evidence) -> bool:
    """The bounds on the rate difference rule out harm beyond the absolute margin."""
    if cfg.absolute_margin is None or ev.difference is None:
        return False
    up_harms, down_harms = _harms(cfg.direction)
    lo, hi = ev.difference
    return (not up_harms or hi <= cfg.absolute_margin) and (not down_harms or lo >= -cfg.absolute_margin)


def _margin(cfg: MetricConfig, ev: _Evidence) -> str | None:
    """The margin that lets the metric pass: "relative", "absolute", or None."""
    if _ratio_within(cfg, ev):
        return "relative"
    return "absolute" if _absolute_within(cfg, ev) else None


def _difference_text(cfg: MetricConfig, ev: _Evidence) -> str:
    up_harms, down_harms = _harms(cfg.direction)
    assert ev.difference is not None
    lo, hi = ev.difference
    ends = [f"at most {_points(hi)}"] if up_harms else []
    ends += [f"at least {_points(lo)}"] if down_harms else []
    return f"rate change {' and '.join(ends)}"


def _pass_text(cfg: MetricConfig, ev: _Evidence, margin: str) -> str:
    if margin == "absolute":
        return f"{_difference_text(cfg, ev)}, within the {_points(cfg.absolute_margin or 0)} absolute margin: Pass"
    return f"within the {_pct(cfg.tolerance).lstrip('+')} relative tolerance: Pass"


def _unresolved_text(cfg: MetricConfig, ev: _Evidence) -> str:
    up_harms, down_harms = _harms(cfg.direction)
    worst = []
    if up_harms and ev.upper > cfg.tolerance:
        worst.append(_pct(ev.upper))
    if down_harms and ev.lower < -cfg.tolerance:
        worst.append(_pct(ev.lower))
    text = f"cannot rule out {' or '.join(worst)} (tolerance {_pct(cfg.tolerance).lstrip('+')})"
    if cfg.absolute_margin is not None and ev.difference is not None:
        text += f" nor the {_points(cfg.absolute_margin)} absolute margin ({_difference_text(cfg, ev)})"
    return text


def _critical_failure(cfg: MetricConfig, outcome: Outcome, effect: float | None) -> bool:
    """A critical metric's failure that fails the whole canary: beyond the critical
    thresholds (Kayenta's criticalIncrease / criticalDecrease), or no data at all."""
    if not cfg.critical or cfg.muted or outcome not in FAILED:
        return False
    if outcome is Outcome.NODATA_FAIL or effect is None:
        return True
    if outcome is Outcome.HIGH:
        return cfg.critical_increase is None or effect >= cfg.critical_increase
    return cfg.critical_decrease is None or effect <= -cfg.critical_decrease


def _row(
    cfg: MetricConfig,
    outcome: Outcome,
    reason: str,
    base: Summary,
    can: Summary,
    *,
    decided: bool,
    ev: _Evidence | None = None,
    interval: str | None = None,
    test: str = "",
    margin: str | None = None,
) -> MetricResult:
    critical_failure = _critical_failure(cfg, outcome, ev.effect if ev else None)
    if cfg.critical and outcome in FAILED and not critical_failure:
        reason += (
            f" (critical, but within the critical thresholds "
            f"{_pct(cfg.critical_increase)}/{_pct(-(cfg.critical_decrease or 0))})"
        )
    if cfg.muted:
        reason += " (muted: reported, not scored)"
    return MetricResult(
        name=cfg.name,
        label=cfg.display,
        kind=cfg.kind,
        direction=cfg.direction,
        critical=cfg.critical,
        group=cfg.group,
        outcome=outcome,
        effect=ev.effect if ev else None,
        lower=ev.lower if ev else None,
        upper=ev.upper if ev else None,
        interval=interval if ev else None,
        test=ev.test if ev else test,
        p_value=ev.p_value if ev else None,
        e_value=ev.e_value if ev else None,
        reason=reason,
        baseline=base,
        canary=can,
        decided=decided,
        groups=cfg.groups,
        muted=cfg.muted,
        must_decide=cfg.must_decide,
        critical_failure=critical_failure,
        margin=margin,
    )


def _no_data_row(cfg: MetricConfig, base: Summary, can: Summary, *, final: bool) -> MetricResult | None:
    """The row for missing or too few samples, or None when there are enough."""
    if base.n == 0 or can.n == 0:
        which = "baseline and canary" if base.n == can.n == 0 else "baseline" if base.n == 0 else "canary"
        if final and (cfg.must_have_data or cfg.critical):
            why = "critical metric" if cfg.critical else "data is required"
            return _row(
                cfg, Outcome.NODATA_FAIL, f"{cfg.display}: no {which} data, {why}: NodataFail", base, can, decided=True
            )
        return _row(
            cfg, Outcome.INCONCLUSIVE, f"{cfg.display}: no {which} data: Inconclusive", base, can, decided=final
        )
    if min(base.n, can.n) < cfg.min_samples:
        return _row(
            cfg,
            Outcome.INCONCLUSIVE,
            f"{cfg.display}: {min(base.n, can.n)} samples, below the minimum {cfg.min_samples}: Inconclusive",
            base,
            can,
            decided=final,
        )
    return None


# --- fixed horizon ------------------------------------------------------------------------


def _fixed_rates(cfg: MetricConfig, b: np.ndarray, c: np.ndarray, alpha: float) -> _Evidence:
    kb, kc = int(b.sum()), int(c.sum())
    cmp = stats.compare_rates(kb, b.size, kc, c.size, 1 - alpha)
    # each end of the difference at alpha / 2, as each end of the two-sided interval
    diff = (
        -stats.rate_increase_upper(kc, c.size, kb, b.size, alpha / 2),
        stats.rate_increase_upper(kb, b.size, kc, c.size, alpha / 2),
    )
    return _Evidence(cmp.change, cmp.lower, cmp.upper, cmp.method, cmp.p_value, None, (cmp.rate_x, cmp.rate_y), diff)


def _fixed_continuous(cfg: MetricConfig, b: np.ndarray, c: np.ndarray, alpha: float) -> _Evidence:
    """Hodges-Lehmann shift with its Mann-Whitney interval, unless one value is so common that
    the interval collapses onto it (costs of 0 for cache hits, token timings on a coarse
    clock): the differences y - x are then mostly exactly 0 and [0, 0] would pass a canary
    whose non-tied values doubled. Such metrics are judged on the ratio of their means, which
    moves with the share of the tied value and with the rest alike."""
    if cfg.outliers is OutlierRule.KAYENTA:  # Kayenta's rule works on raw values
        b = remove_outliers(b, cfg.outliers, cfg.outlier_factor)
        c = remove_outliers(c, cfg.outliers, cfg.outlier_factor)
    share, value = tie_share(b, c)
    xb, xc = to_analysis_scale(cfg, b), to_analysis_scale(cfg, c)
    if cfg.outliers is OutlierRule.TUKEY:
        xb = remove_outliers(xb, cfg.outliers, cfg.outlier_factor)
        xc = remove_outliers(xc, cfg.outliers, cfg.outlier_factor)
    hl = stats.hodges_lehmann(xb, xc, 1 - alpha)
    if share < TIE_SHARE and hl.lower < hl.upper:
        level = float(np.median(xb))
        return _Evidence(
            _relative(cfg, hl.shift, level),
            _relative(cfg, hl.lower, level),
            _relative(cfg, hl.upper, level),
            f"Mann-Whitney U ({hl.method}), Hodges-Lehmann CI, {cfg.scale.value} scale",
            hl.p_value,
            None,
        )
    m = stats.compare_means(b, c, 1 - alpha)
    return _Evidence(
        m.change,
        m.lower,
        m.upper,
        f"ratio of means, delta-method CI ({100 * share:.0f}% of values equal {value:.3g}: "
        "rank interval not informative)",
        m.p_value,
        None,
    )


def _decide(
    cfg: MetricConfig,
    ev: _Evidence,
    base: Summary,
    can: Summary,
    interval: str,
    *,
    high: bool,
    low: bool,
    final: bool,
    suffix: str,
) -> MetricResult:
    """The row for evidence whose High / Low tests were made by the caller's rule."""
    text = _effect_text(cfg, ev.effect, ev.lower, ev.upper, interval, ev.rates)
    if high:
        return _row(
            cfg,
            Outcome.HIGH,
            f"{text}, {suffix} above the {_pct(cfg.floor).lstrip('+')} floor: High",
            base,
            can,
            decided=True,
            ev=ev,
            interval=interval,
        )
    if low:
        return _row(
            cfg,
            Outcome.LOW,
            f"{text}, {suffix} below the -{_pct(cfg.decrease_floor).lstrip('+')} floor: Low",
            base,
            can,
            decided=True,
            ev=ev,
            interval=interval,
        )
    if (margin := _margin(cfg, ev)) is not None:
        return _row(
            cfg,
            Outcome.PASS,
            f"{text}, {_pass_text(cfg, ev, margin)}",
            base,
            can,
            decided=final,
            ev=ev,
            interval=interval,
            margin=margin,
        )
    state = "Inconclusive" if final else "undecided"
    return _row(
        cfg,
        Outcome.INCONCLUSIVE,
        f"{text}, {_unresolved_text(cfg, ev)}: {state}",
        base,
        can,
        decided=final,
        ev=ev,
        interval=interval,
    )


def classify_fixed(
    cfg: MetricConfig, baseline: ArrayLike | None, canary: ArrayLike | None, alpha: float
) -> MetricResult:
    """Kayenta-like one-look classification at per-metric level alpha."""
    b, c = prepare(cfg, baseline), prepare(cfg, canary)
    base, can = Summary.of(b), Summary.of(c)
    if (row := _no_data_row(cfg, base, can, final=True)) is not None:
        return row
    ev = (_fixed_rates if cfg.kind is Kind.PROPORTION else _fixed_continuous)(cfg, b, c, alpha)
    up_harms, down_harms = _harms(cfg.direction)
    bar = cfg.shift_fraction * abs(ev.effect) if math.isfinite(ev.effect) else 0.0
    return _decide(
        cfg,
        ev,
        base,
        can,
        f"{_level(alpha)} CI",
        high=up_harms and ev.lower > bar and ev.effect >= cfg.floor,
        low=down_harms and ev.upper < -bar and ev.effect <= -cfg.decrease_floor,
        final=True,
        suffix="significant and",
    )


# --- sequential ---------------------------------------------------------------------------


class SequentialMetric:
    """Always-valid classification of one metric, fed batch by batch.

    `update` adds the values that arrived since the last call; `result` can be asked at any
    time. With keep_samples=False the values are not stored (simulations): the summaries then
    carry n and mean only.
    """

    def __init__(self, cfg: MetricConfig, alpha: float, *, keep_samples: bool = True) -> None:
        self.cfg = cfg
        self.alpha = alpha
        self.keep_samples = keep_samples
        self._chunks: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._n = [0, 0]
        self._sum = [0.0, 0.0]
        self._sticky: MetricResult | None = None
        if cfg.kind is Kind.PROPORTION:
            self._rates = ConditionalRateMixture(alpha, cfg.mixture_sd or 1.0)
        else:
            self._means = NormalMixtureSPRT(alpha, cfg.mixture_sd or 0.25, cfg.min_samples)

    def state_dict(self) -> dict[str, Any]:
        """Plain, JSON-able state (with the stored samples, if kept); see `from_state`."""
        test = self._rates if self.cfg.kind is Kind.PROPORTION else self._means
        return {
            "config": self.cfg.to_dict(),
            "alpha": self.alpha,
            "keep_samples": self.keep_samples,
            "n": list(self._n),
            "sum": list(self._sum),
            "samples": [self._summary_values(i).tolist() for i in (0, 1)] if self.keep_samples else None,
            "sticky": self._sticky.to_dict() if self._sticky else None,
            "test": test.state_dict(),
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> "SequentialMetric":
        m = cls(MetricConfig.from_dict(d["config"]), d["alpha"], keep_samples=d["keep_samples"])
        m._n, m._sum = [int(v) for v in d["n"]], [float(v) for v in d["sum"]]
        if d["samples"] is not None:
            base, can = ([np.asarray(v, dtype=float)] if v else [] for v in d["samples"])
            m._chunks = (base, can)
        m._sticky = MetricResult.from_dict(d["sticky"]) if d["sticky"] else None
        if m.cfg.kind is Kind.PROPORTION:
            m._rates = ConditionalRateMixture.from_state(d["test"])
        else:
            m._means = NormalMixtureSPRT.from_state(d["test"])
        return m

    def update(self, baseline: ArrayLike | None, canary: ArrayLike | None) -> None:
        b, c = prepare(self.cfg, baseline), prepare(self.cfg, canary)
        for i, v in enumerate((b, c)):
            self._n[i] += v.size
            self._sum[i] += float(v.sum())
            if self.keep_samples and v.size:
                self._chunks[i].append(v)
        if self.cfg.kind is Kind.PROPORTION:
            kb, kc = int(b.sum()), int(c.sum())
            self._rates.update(kb, b.size, kc, c.size)
        else:
            self._means.update(to_analysis_scale(self.cfg, b), to_analysis_scale(self.cfg, c))

    def _summary_values(self, i: int) -> np.ndarray:
        chunks = self._chunks[i]
        if len(chunks) > 1:
            chunks[:] = [np.concatenate(chunks)]
        return chunks[0] if chunks else np.empty(0)

    def _summary(self, i: int) -> Summary:
        if self.keep_samples:
            return Summary.of(self._summary_values(i))
        n = self._n[i]
        return Summary(n, self._sum[i] / n if n else None, None, None)

    def _evidence(self) -> _Evidence:
        cfg = self.cfg
        if cfg.kind is Kind.PROPORTION:
            r = self._rates
            rate_b, rate_c = r.k_x / r.n_x, r.k_y / r.n_y
            lo, hi = r.confidence_sequence()
            return _Evidence(
                stats.relative_change(rate_b, rate_c),
                stats.odds_to_rate_ratio(lo, rate_b) - 1,
                stats.odds_to_rate_ratio(hi, rate_b) - 1,
                "mSPRT, exact conditional binomial mixture",
                r.p_value,
                math.exp(min(r.log_e_value(), 700)),
                (rate_b, rate_c),
                self._difference(),
            )
        s = self._means
        lo, hi = s.confidence_sequence()
        level = s.x.mean if cfg.scale is Scale.LOG else self._sum[0] / self._n[0]
        return _Evidence(
            _relative(cfg, s.estimate, level),
            _relative(cfg, lo, level),
            _relative(cfg, hi, level),
            f"mSPRT, normal mixture on {cfg.scale.value} values",
            s.p_value,
            math.exp(min(s.log_e_value(), 700)),
        )

    def _difference(self) -> tuple[float, float] | None:
        """Always-valid bounds on canary rate - baseline rate: each rate's confidence sequence
        at alpha / 4 (two ends, two rates), so both ends hold at every look with 1 - alpha."""
        margin = self.cfg.absolute_margin
        if margin is None:
            return None
        r, a = self._rates, self.alpha / 4
        lo_b, hi_b = rate_confidence_sequence(r.k_x, r.n_x, a, prior_mean=margin)
        lo_c, hi_c = rate_confidence_sequence(r.k_y, r.n_y, a, prior_mean=margin)
        return lo_c - hi_b, hi_c - lo_b

    def result(self, *, final: bool = False) -> MetricResult:
        """The metric's state now; with final=True, undecided becomes Inconclusive."""
        if self._sticky is not None:
            return self._sticky
        cfg = self.cfg
        base, can = self._summary(0), self._summary(1)
        if (row := _no_data_row(cfg, base, can, final=final)) is not None:
            return row
        ev = self._evidence()
        up_harms, down_harms = _harms(cfg.direction)
        row = _decide(
            cfg,
            ev,
            base,
            can,
            f"{_level(self.alpha)} CS",
            high=up_harms and ev.lower > cfg.floor,
            low=down_harms and ev.upper < -cfg.decrease_floor,
            final=final,
            suffix="wholly",
        )
        if row.outcome in (Outcome.HIGH, Outcome.LOW):
            self._sticky = row  # final once reached
        return row
