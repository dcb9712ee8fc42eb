"""Metric configs and named profiles for canary analysis.

A metric config says how one metric is judged; a profile is the set of metrics of one analysis
with its group weights and score thresholds (Kayenta's "canary config"). Profiles round-trip
through plain dicts so the API can take them as JSON and the ledger can store them.

Effects are relative throughout: +0.10 means "canary 10 % higher than baseline". For
continuous metrics on the log scale that is the ratio of geometric means (sequential mode) or
the Hodges-Lehmann shift of log values (fixed mode), which for a pure scale change equals the
ratio of every quantile; for proportions it is the ratio of rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    CONTINUOUS = "continuous"  # one real value per request (latency, cost)
    PROPORTION = "proportion"  # one 0/1 value per request (error, safety hit)


class Direction(StrEnum):
    """Which change harms: a canary is only failed for moving the metric this way."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class NanStrategy(StrEnum):
    REMOVE = "remove"
    REPLACE_ZERO = "replace_zero"


class OutlierRule(StrEnum):
    NONE = "none"
    TUKEY = "tukey"  # [Q1 - f IQR, Q3 + f IQR] on the analysis scale (log values by default)
    KAYENTA = "kayenta"  # Kayenta's: [min(p1, Q1 - f IQR), max(p99, Q3 + f IQR)] on raw values


class Scale(StrEnum):
    LOG = "log"  # effects are ratios; values below `log_floor` are clipped to it
    LINEAR = "linear"  # effects are differences divided by the baseline mean


@dataclass(frozen=True)
class MetricConfig:
    """How one metric is judged.

    floor: relative harm below which the metric never fails (sequential mode: it fails only
        when the whole confidence sequence lies beyond the floor). Kayenta: allowedIncrease =
        1 + floor. floor_decrease: the same for decreases (Kayenta's allowedDecrease = 1 -
        floor_decrease); None: the same as floor.
    tolerance: relative harm that must be ruled out for the metric to pass (its interval's
        harmful end must be inside it); between floor and tolerance the metric stays
        undecided, and undecided at the end means Inconclusive. Must be >= floor.
    absolute_margin: proportions only; the metric also passes when the increase of the rate
        (canary - baseline, in rate units: 0.005 = half a percentage point) is shown to be at
        most this. Relative margins mean nothing when both rates are ~0: with zero events in
        both versions no amount of traffic rules out "+100 %".
    shift_fraction: fixed mode, Kayenta's `tolerance` (0.25 there): High only when the
        interval's lower end is above this fraction of |Hodges-Lehmann shift| (Low mirrored).
        0 (the default) asks only that the interval exclude zero.
    critical: a failure of this metric fails the whole canary (score 0); with
        critical_increase / critical_decrease (relative, Kayenta's criticalIncrease = 1 +
        critical_increase, criticalDecrease = 1 - critical_decrease) only a failure beyond
        them does, smaller failures count like any metric's. A critical metric without data
        at the end fails the canary (NodataFail), as in Kayenta.
    min_samples: per version; below it the metric is Inconclusive, never Pass.
    must_have_data: no data in a version is a failure (NodataFail) instead of Inconclusive.
    must_decide: a canary passes only once this metric is decided (Pass); Inconclusive at
        the deadline makes the canary inconclusive instead of being left out of the score.
    muted: judged and reported, never scored and never failing (Kayenta's "report-only").
    outliers / outlier_factor: fixed mode only, values dropped per version before the test:
        "tukey" drops outside [Q1 - f IQR, Q3 + f IQR] on the analysis scale; "kayenta" is
        Kayenta's rule, fencing at the larger of the 99th percentile and Q3 + f IQR (and the
        smaller of the 1st percentile and Q1 - f IQR) on raw values. Default "none": the
        tail of a latency is where regressions show.
    groups: Kayenta allows a metric in more than one group: `group` plus `also_in`.
    mixture_sd: sd of the mSPRT mixing distribution: in units of the metric's sd for continuous
        metrics, in log odds ratio for proportions. None: 0.25 and 1.0.
    """

    name: str
    kind: Kind = Kind.CONTINUOUS
    direction: Direction = Direction.INCREASE
    floor: float = 0.10
    tolerance: float = 0.25
    floor_decrease: float | None = None
    absolute_margin: float | None = None
    shift_fraction: float = 0.0
    critical: bool = False
    critical_increase: float | None = None
    critical_decrease: float | None = None
    min_samples: int = 50
    must_have_data: bool = False
    must_decide: bool = False
    muted: bool = False
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    outliers: OutlierRule = OutlierRule.NONE
    outlier_factor: float = 3.0
    scale: Scale = Scale.LOG
    log_floor: float = 1e-9
    group: str = "default"
    also_in: tuple[str, ...] = ()
    label: str | None = None
    mixture_sd: float | None = None

    def __post_init__(self) -> None:
        for name, enum in (
            ("kind", Kind),
            ("direction", Direction),
            ("nan_strategy", NanStrategy),
            ("scale", Scale),
            ("outliers", OutlierRule),
        ):
            object.__setattr__(self, name, enum(getattr(self, name)))  # accept plain strings
        object.__setattr__(self, "also_in", tuple(self.also_in))
        if self.floor < 0 or self.tolerance < max(self.floor, self.decrease_floor):
            raise ValueError(f"{self.name}: need 0 <= floor, floor_decrease <= tolerance")
        if self.min_samples < 1:
            raise ValueError(f"{self.name}: min_samples must be >= 1")
        if self.absolute_margin is not None:
            if self.kind is not Kind.PROPORTION:
                raise ValueError(f"{self.name}: absolute_margin applies to proportions only")
            if not 0 < self.absolute_margin < 1:
                raise ValueError(f"{self.name}: absolute_margin is a rate difference in (0, 1)")
        for name in ("critical_increase", "critical_decrease"):
            v = getattr(self, name)
            if v is not None and (not self.critical or v < 0):
                raise ValueError(f"{self.name}: {name} needs critical=True and a value >= 0")
        if not 0 <= self.shift_fraction < 1:
            raise ValueError(f"{self.name}: shift_fraction must be in [0, 1)")

    @property
    def decrease_floor(self) -> float:
        return self.floor if self.floor_decrease is None else self.floor_decrease

    @property
    def groups(self) -> tuple[str, ...]:
        return (self.group, *(g for g in self.also_in if g != self.group))

    @property
    def display(self) -> str:
        return self.label or self.name

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, StrEnum):
                d[k] = v.value
        d["also_in"] = list(self.also_in)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MetricConfig":
        d = _upgrade(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown metric config keys: {sorted(unknown)}")
        return cls(**d)


def _upgrade(d: Mapping[str, Any]) -> dict[str, Any]:
    """Configs stored before the keys were renamed: `absolute_tolerance` (a ceiling on the
    canary's rate) becomes the margin on its increase, `outlier_iqr_factor` the Tukey rule."""
    d = dict(d)
    if "absolute_tolerance" in d:
        d.setdefault("absolute_margin", d.pop("absolute_tolerance"))
    if "outlier_iqr_factor" in d:
        factor = d.pop("outlier_iqr_factor")
        if factor is not None:
            d.setdefault("outliers", OutlierRule.TUKEY.value)
            d.setdefault("outlier_factor", factor)
    return d


@dataclass(frozen=True)
class Profile:
    """The metrics of one analysis, Kayenta-style scoring, and the family-wise error level.

    alpha: family-wise false-fail level across all metrics (Bonferroni: alpha / m per metric)
        when correction is "bonferroni"; per metric when "none" (Kayenta's behaviour).
    group_weights: percent per group, as Kayenta's: groups not named share what the named
        ones leave (100 - sum) equally. Refused: weights summing over 100, weights of groups no
        metric is in, and named weights that leave nothing for the unnamed groups (or, with
        every group named, do not sum to 100).
    """

    name: str
    metrics: tuple[MetricConfig, ...]
    group_weights: Mapping[str, float] = field(default_factory=dict)
    pass_threshold: float = 95.0
    marginal_threshold: float = 75.0
    alpha: float = 0.05
    correction: str = "bonferroni"
    _weights: dict[str, float] = field(init=False, repr=False, compare=False)  # resolved from group_weights

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("duplicate metric names in profile")
        if not self.metrics:
            raise ValueError("a profile needs at least one metric")
        if not 0 <= self.marginal_threshold <= self.pass_threshold <= 100:
            raise ValueError("need 0 <= marginal_threshold <= pass_threshold <= 100")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if self.correction not in ("bonferroni", "none"):
            raise ValueError("correction must be 'bonferroni' or 'none'")
        object.__setattr__(self, "_weights", _resolve_weights(self))

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group a scored metric is in, in order of first appearance."""
        return tuple(dict.fromkeys(g for m in self.metrics if not m.muted for g in m.groups))

    @property
    def metric_alpha(self) -> float:
        """The per-metric level: alpha / m under Bonferroni."""
        return self.alpha / len(self.metrics) if self.correction == "bonferroni" else self.alpha

    def weight(self, group: str) -> float:
        """The group's share of the score, percent (Kayenta's weights, unnamed groups filled)."""
        return self._weights[group]

    def metric(self, name: str) -> MetricConfig:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metrics": [m.to_dict() for m in self.metrics],
            "group_weights": dict(self.group_weights),
            "pass_threshold": self.pass_threshold,
            "marginal_threshold": self.marginal_threshold,
            "alpha": self.alpha,
            "correction": self.correction,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Profile":
        d = dict(d)
        d["metrics"] = tuple(MetricConfig.from_dict(m) for m in d.get("metrics", ()))
        return cls(**d)


def _resolve_weights(p: Profile) -> dict[str, float]:
    groups = p.groups
    given = {g: float(w) for g, w in p.group_weights.items()}
    unknown = sorted(set(given) - set(groups))
    if unknown:
        raise ValueError(f"profile {p.name!r}: weights for groups no scored metric is in: {unknown}")
    if any(w < 0 for w in given.values()):
        raise ValueError(f"profile {p.name!r}: group weights must be >= 0")
    total = sum(given.values())
    if total > 100 + 1e-9:
        raise ValueError(f"profile {p.name!r}: group weights sum to {total:g}, over 100")
    rest = [g for g in groups if g not in given]
    if rest:
        if not given:
            return {g: 100.0 / len(rest) for g in rest}
        if total >= 100 - 1e-9:
            raise ValueError(f"profile {p.name!r}: weights sum to {total:g}, leaving nothing for groups {rest}")
        return {**given, **{g: (100.0 - total) / len(rest) for g in rest}}
    if abs(total - 100) > 1e-9:
        raise ValueError(
            f"profile {p.name!r}: group weights sum to {total:g}; with every group weighted they must sum to 100"
        )
    return given


def _latency(name: str, label: str, **kw: Any) -> MetricConfig:
    kw.setdefault("log_floor", 1e-4)
    return MetricConfig(name=name, label=label, group="latency", **kw)


# Names match `canary.samples.METRICS`, which derives them from a `RequestRecord`.
# Absolute margins come from the default SLOs (slo/defaults.yaml): availability 99.5 % leaves an
# error budget of 0.5 % of requests, so "+0.5 points" asks that the canary cannot add more than
# one whole budget's burn rate (it would burn at least twice as fast as a healthy version at
# the objective). safety-output 99.9 % leaves 0.1 %; its margin is two budgets (+0.2 points):
# one budget would take ~6,300 clean canary requests to show, two take ~3,200.
# Canary requests with zero events in both versions (baseline 9x larger) needed to pass on the
# margin at alpha 0.05 / 7 per metric: error 1,263 fixed, 1,714 sequential; safety hit 3,161
# fixed, 3,758 sequential. Pinned by tests/canary/test_margins.py.
DEFAULT_LLM = Profile(
    name="default-llm",
    metrics=(
        _latency("latency_s", "e2e latency"),
        _latency("ttft_s", "ttft"),
        _latency("tpot_s", "tpot"),
        _latency("output_tokens_per_s", "output tokens/s", direction=Direction.DECREASE, log_floor=1e-2),
        MetricConfig(
            name="error",
            label="error rate",
            kind=Kind.PROPORTION,
            critical=True,
            must_have_data=True,
            min_samples=100,
            floor=0.10,
            tolerance=1.0,
            absolute_margin=0.005,
            group="errors",
        ),
        MetricConfig(
            name="safety_hit",
            label="safety hit rate",
            kind=Kind.PROPORTION,
            min_samples=100,
            floor=0.10,
            tolerance=1.0,
            absolute_margin=0.002,
            must_decide=True,
            group="safety",
        ),
        # linear: the mean cost per request is what a bill sees, and cache hits cost exactly 0,
        # which on a log scale would be a second mode at log_floor that hides changes of the rest
        MetricConfig(name="cost_usd", label="cost per request", group="cost", scale=Scale.LINEAR),
    ),
    group_weights={"latency": 40.0, "errors": 30.0, "safety": 15.0, "cost": 15.0},
    pass_threshold=95.0,
    marginal_threshold=75.0,
    alpha=0.05,
)

# Latency metrics only, for services whose errors and costs are judged elsewhere.
LATENCY_ONLY = Profile(
    name="latency-only",
    metrics=tuple(m for m in DEFAULT_LLM.metrics if m.group == "latency"),
    group_weights={"latency": 100.0},
)

PROFILES: dict[str, Profile] = {p.name: p for p in (DEFAULT_LLM, LATENCY_ONLY)}


def get_profile(profile: "str | Profile | Mapping[str, Any]") -> Profile:
    """A profile by name, as given, or from its dict form."""
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str):
        try:
            return PROFILES[profile]
        except KeyError:
            raise KeyError(f"unknown canary profile {profile!r}; known: {sorted(PROFILES)}") from None
    return Profile.from_dict(profile)


def replace_metrics(profile: Profile, metrics: Sequence[MetricConfig]) -> Profile:
    """The same profile with other metrics (e.g. a subset chosen by a caller). The weights of
    groups that are gone are dropped; when every group left is weighted, they are scaled to
    100, and when what is left would starve the unweighted groups, all groups share equally."""
    present = {g for m in metrics if not m.muted for g in m.groups}
    kept = {g: float(w) for g, w in profile.group_weights.items() if g in present}
    total = sum(kept.values())
    if present <= set(kept) and total > 0:
        kept = {g: 100.0 * w / total for g, w in kept.items()}
    elif total >= 100:
        kept = {}
    return dataclasses.replace(profile, metrics=tuple(metrics), group_weights=kept)
