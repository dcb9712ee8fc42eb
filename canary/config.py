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


class Scale(StrEnum):
    LOG = "log"  # effects are ratios; values below `log_floor` are clipped to it
    LINEAR = "linear"  # effects are differences divided by the baseline mean


@dataclass(frozen=True)
class MetricConfig:
    """How one metric is judged.

    floor: relative harm below which the metric never fails (sequential mode: it fails only
        when the whole confidence sequence lies beyond the floor).
    tolerance: relative harm that must be ruled out for the metric to pass (its interval's
        harmful end must be inside it); between floor and tolerance the metric stays
        undecided, and undecided at the end means Inconclusive. Must be >= floor.
    absolute_tolerance: proportions only; the metric also passes when the canary's rate is
        shown to be below this (needed when both rates are ~0 and ratios mean nothing).
    min_samples: per version; below it the metric is Inconclusive, never Pass.
    must_have_data: no data in a version is a failure (NodataFail) instead of Inconclusive.
    outlier_iqr_factor: fixed mode only: drop values outside [Q1 - f IQR, Q3 + f IQR] per
        version, on the analysis scale (Kayenta uses f = 3). None keeps everything, the default
        for latencies, whose tail is where regressions show.
    mixture_sd: sd of the mSPRT mixing distribution: in units of the metric's sd for continuous
        metrics, in log odds ratio for proportions. None: 0.25 and 1.0.
    """

    name: str
    kind: Kind = Kind.CONTINUOUS
    direction: Direction = Direction.INCREASE
    floor: float = 0.10
    tolerance: float = 0.25
    absolute_tolerance: float | None = None
    critical: bool = False
    min_samples: int = 50
    must_have_data: bool = False
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    outlier_iqr_factor: float | None = None
    scale: Scale = Scale.LOG
    log_floor: float = 1e-9
    group: str = "default"
    label: str | None = None
    mixture_sd: float | None = None

    def __post_init__(self) -> None:
        for name, enum in (("kind", Kind), ("direction", Direction), ("nan_strategy", NanStrategy), ("scale", Scale)):
            object.__setattr__(self, name, enum(getattr(self, name)))  # accept plain strings
        if self.floor < 0 or self.tolerance < self.floor:
            raise ValueError(f"{self.name}: need 0 <= floor <= tolerance")
        if self.min_samples < 1:
            raise ValueError(f"{self.name}: min_samples must be >= 1")
        if self.absolute_tolerance is not None and self.kind is not Kind.PROPORTION:
            raise ValueError(f"{self.name}: absolute_tolerance applies to proportions only")

    @property
    def display(self) -> str:
        return self.label or self.name

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, StrEnum):
                d[k] = v.value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MetricConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown metric config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class Profile:
    """The metrics of one analysis, Kayenta-style scoring, and the family-wise error level.

    alpha: family-wise false-fail level across all metrics (Bonferroni: alpha / m per metric)
        when correction is "bonferroni"; per metric when "none" (Kayenta's behaviour).
    """

    name: str
    metrics: tuple[MetricConfig, ...]
    group_weights: Mapping[str, float] = field(default_factory=dict)
    pass_threshold: float = 95.0
    marginal_threshold: float = 75.0
    alpha: float = 0.05
    correction: str = "bonferroni"

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

    @property
    def metric_alpha(self) -> float:
        """The per-metric level: alpha / m under Bonferroni."""
        return self.alpha / len(self.metrics) if self.correction == "bonferroni" else self.alpha

    def weight(self, group: str) -> float:
        return float(self.group_weights.get(group, 1.0))

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


def _latency(name: str, label: str, **kw: Any) -> MetricConfig:
    kw.setdefault("log_floor", 1e-4)
    return MetricConfig(name=name, label=label, group="latency", **kw)


# Names match `canary.samples.METRICS`, which derives them from a `RequestRecord`.
DEFAULT_LLM = Profile(
    name="default-llm",
    metrics=(
        _latency("latency_s", "e2e latency"),
        _latency("ttft_s", "ttft"),
        _latency("tpot_s", "tpot"),
        _latency("output_tokens_per_s", "output tokens/s", direction=Direction.DECREASE,
                 log_floor=1e-2),
        MetricConfig(name="error", label="error rate", kind=Kind.PROPORTION, critical=True,
                     must_have_data=True, min_samples=100, floor=0.10, tolerance=1.0,
                     absolute_tolerance=0.002, group="errors"),
        MetricConfig(name="safety_hit", label="safety hit rate", kind=Kind.PROPORTION,
                     min_samples=100, floor=0.10, tolerance=1.0, absolute_tolerance=0.002,
                     group="safety"),
        MetricConfig(name="cost_usd", label="cost per request", group="cost", log_floor=1e-7),
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
    """The same profile with other metrics (e.g. a subset chosen by a caller)."""
    return dataclasses.replace(profile, metrics=tuple(metrics))
