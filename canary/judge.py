"""Combine per-metric outcomes into a canary verdict (Kayenta's NetflixACAJudge scoring).

Score (`score`): per group 100 * Pass / (Pass + High + Low + NodataFail) with Kayenta's group
weights (unnamed groups share 100 - the named ones), rounded to two decimals; a group without
data scores 0. A critical failure (beyond the metric's critical thresholds, or a critical
metric without data), or no data for half the metrics or more, forces 0.
Verdict (`verdict`, a `Decision` naming its rule): pass at or above `pass_threshold`, marginal
at or above `marginal_threshold`, else fail; inconclusive when a critical or must-decide
metric, or half the metrics or more, are Inconclusive and the rest cannot already fail the
canary. A final verdict names every metric that never reached a decision. Muted metrics are
reported and never scored.

Two entry points, the ones the rollout controller and the API wrap:
- `judge(baseline, canary, profile)`: one fixed-horizon look at a window of samples.
- `SequentialAnalysis(profile).update(baseline_batch, canary_batch)`: live analysis, polled as
  often as wanted. Per-metric level alpha / m (Bonferroni over the m metrics) with always-valid
  tests, so the chance that a canary no worse than the floors is ever failed stays at most
  alpha however often it is polled. It is decided as soon as the outcome is known: fail or
  marginal once passing has become impossible, pass once every metric that could still fail it
  has passed. The first decision is final.

Multiplicity: Bonferroni (alpha / m per metric), for fixed and sequential mode alike. Merging
e-values (e.g. their mean against 1/alpha) would test only "no metric changed", while a
verdict names the metrics that failed; Bonferroni bounds the chance that any named metric is
a false failure, and for e-values it is the same as asking each for m / alpha.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from numpy.typing import ArrayLike

from canary.classifier import COUNTED, MetricResult, Outcome, SequentialMetric, classify_fixed
from canary.config import Profile, get_profile

Samples = Mapping[str, ArrayLike]  # metric name -> one value per request (0/1 for proportions)


class Verdict(StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class JudgeResult:
    """A canary verdict with its per-metric rows.

    score: Kayenta's score; for an undecided sequential analysis it counts the undecided
    metrics as passing (the best score still reachable).
    decided: the verdict is final (always True for fixed-horizon results).
    """

    verdict: Verdict
    score: float | None
    decided: bool
    mode: str  # "fixed" or "sequential"
    profile: str
    alpha: float
    metric_alpha: float
    reason: str
    metrics: tuple[MetricResult, ...]
    looks: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> MetricResult:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def canary_samples(self) -> int:
        """The largest canary sample count over the metrics."""
        return max((m.canary.n for m in self.metrics), default=0)

    @property
    def baseline_samples(self) -> int:
        return max((m.baseline.n for m in self.metrics), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "score": self.score,
            "decided": self.decided,
            "mode": self.mode,
            "profile": self.profile,
            "alpha": self.alpha,
            "metric_alpha": self.metric_alpha,
            "reason": self.reason,
            "looks": self.looks,
            "baseline_samples": self.baseline_samples,
            "canary_samples": self.canary_samples,
            "metrics": [m.to_dict() for m in self.metrics],
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "JudgeResult":
        """Inverse of `to_dict` (e.g. for results stored in the ledger as JSON)."""
        return cls(
            verdict=Verdict(d["verdict"]), score=d["score"], decided=d["decided"], mode=d["mode"],
            profile=d["profile"], alpha=d["alpha"], metric_alpha=d["metric_alpha"],
            reason=d["reason"], metrics=tuple(MetricResult.from_dict(m) for m in d["metrics"]),
            looks=d.get("looks", 1), extra=dict(d.get("extra") or {}),
        )

    @property
    def exit_code(self) -> int:
        """For a CI gate: 0 pass, 1 fail or marginal, 2 inconclusive."""
        return {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.MARGINAL: 1, Verdict.INCONCLUSIVE: 2}[self.verdict]


# --- scoring ------------------------------------------------------------------------------


def _group_counts(results: Sequence[MetricResult], undecided_as: Outcome | None) -> dict[str, list[int]]:
    """Per group: [passed, counted] over the scored metrics (a metric counts in each group)."""
    groups: dict[str, list[int]] = {}
    for r in results:
        if r.muted:
            continue
        outcome = r.outcome
        if outcome is Outcome.INCONCLUSIVE and undecided_as is not None:
            outcome = undecided_as
        for g in r.score_groups:
            counts = groups.setdefault(g, [0, 0])
            if outcome in COUNTED:
                counts[0] += outcome is Outcome.PASS
                counts[1] += 1
    return groups


def score(results: Sequence[MetricResult], profile: Profile,
          undecided_as: Outcome | None = None) -> float | None:
    """Kayenta's weighted group score, rounded to two decimals; None when no metric counts.

    Each group scores 100 * Pass / (Pass + High + Low + NodataFail) with its weight (percent,
    `Profile.weight`). A group none of whose metrics has data scores 0, as in Kayenta (its
    weight is not handed to the others). A group whose metrics have data but are all still
    Inconclusive is left out with its weight (Kayenta has no Inconclusive; the verdict names
    such metrics and `must_decide` keeps them from passing silently).
    undecided_as: count Inconclusive metrics as this outcome (Pass for the best reachable
    score, High for the worst) instead of leaving them out.
    """
    counts = _group_counts(results, undecided_as)
    with_data = {g for r in results if not r.muted and r.has_data for g in r.score_groups}
    total = points = 0.0
    for g, (passed, counted) in counts.items():
        w = profile.weight(g)
        if counted:
            total += w
            points += w * 100.0 * passed / counted
        elif g not in with_data:
            total += w  # Kayenta: no data, score 0
    if total <= 0 or not any(c for _, c in counts.values()):
        return None
    return round(points / total, 2)


def _by_score(s: float, profile: Profile) -> Verdict:
    if s >= profile.pass_threshold:
        return Verdict.PASS
    return Verdict.MARGINAL if s >= profile.marginal_threshold else Verdict.FAIL


def _names(rows: Iterable[MetricResult]) -> str:
    return ", ".join(f"{r.label} {r.outcome.value}" for r in rows)


def _labels(rows: Iterable[MetricResult]) -> str:
    return ", ".join(r.label for r in rows)


@dataclass(frozen=True)
class Decision:
    """The verdict on the current metric rows, with the rule that gave it."""

    verdict: Verdict
    score: float | None
    decided: bool
    rule: str  # the named rule below that decided
    reason: str


@dataclass(frozen=True)
class _Rows:
    """The metric rows sorted by what the rules ask of them."""

    all: Sequence[MetricResult]
    final: bool

    @property
    def scored(self) -> list[MetricResult]:
        return [r for r in self.all if not r.muted]

    @property
    def failed(self) -> list[MetricResult]:
        return [r for r in self.scored if r.failed]

    @property
    def pending(self) -> list[MetricResult]:
        return [r for r in self.scored if r.outcome is Outcome.INCONCLUSIVE]

    @property
    def critical_failed(self) -> list[MetricResult]:
        return [r for r in self.scored if r.critical_failure]

    @property
    def no_data(self) -> list[MetricResult]:
        return [r for r in self.scored if not r.has_data]

    @property
    def blocking(self) -> list[MetricResult]:
        """Pending metrics a pass has to wait for: critical or must-decide ones."""
        return [r for r in self.pending if r.critical or r.must_decide]


def verdict(results: Sequence[MetricResult], profile: Profile, *, final: bool) -> Decision:
    """Kayenta's rules in order (critical failure, too little data, score), then ours for
    metrics not decided yet. Each exit is one named rule."""
    rows = _Rows(results, final)
    n = len(rows.scored)
    if rows.critical_failed:
        return Decision(Verdict.FAIL, 0.0, True, "critical_failure",
                        f"fail: critical metric failed: {_names(rows.critical_failed)}")
    if final and n and 2 * len(rows.no_data) >= n:
        return Decision(Verdict.FAIL, 0.0, True, "too_little_data",
                        f"fail: {len(rows.no_data)} of {n} metrics have no data")
    best = score(results, profile, undecided_as=Outcome.PASS)
    if best is not None and best < profile.pass_threshold:
        # Passing is out of reach. At the end the Kayenta score (Inconclusive left out, never
        # above `best`) grades it; while live, the best still reachable does.
        s = score(results, profile) if final else best
        assert s is not None
        v = _by_score(s, profile)
        undecided = f"; never decided: {_labels(rows.pending)}" if final and rows.pending else ""
        return Decision(v, s, True, "score_below_pass",
                        f"{v.value}: score {s:.2f}{'' if final else ' at best'}, below {profile.pass_threshold:g}: "
                        f"{_names(rows.failed)}{undecided}")
    if not rows.pending:
        s = score(results, profile)
        return Decision(Verdict.PASS, s, True, "all_decided",
                        f"pass: score {s:.2f}; {n} metrics judged" if s is not None else "pass: nothing to judge")
    if rows.blocking or 2 * len(rows.pending) >= n:
        why = _labels(rows.blocking or rows.pending)
        if final:
            return Decision(Verdict.INCONCLUSIVE, score(results, profile), True, "undecided_at_deadline",
                            f"inconclusive: never decided: {_labels(rows.pending)} (a pass needs {why})")
        return Decision(Verdict.INCONCLUSIVE, best, False, "waiting", f"inconclusive: undecided: {why}")
    worst = score(results, profile, undecided_as=Outcome.HIGH)
    if worst is not None and worst >= profile.pass_threshold:
        return Decision(Verdict.PASS, worst, True, "pass_whatever_the_rest",
                        f"pass: score {worst:.2f} even if {_labels(rows.pending)} failed"
                        f"{'; never decided: ' + _labels(rows.pending) if final else ''}")
    if final:
        s = score(results, profile)
        assert s is not None
        v = _by_score(s, profile)
        return Decision(v, s, True, "score_without_undecided",
                        f"{v.value}: score {s:.2f}; never decided, left out of the score: {_labels(rows.pending)}")
    return Decision(Verdict.INCONCLUSIVE, best, False, "waiting", f"inconclusive: undecided: {_labels(rows.pending)}")


# --- entry points -------------------------------------------------------------------------


def judge(baseline: Samples, canary: Samples, profile: "str | Profile | Mapping[str, Any]" = "default-llm") -> JudgeResult:
    """Fixed-horizon (Kayenta-like) analysis of one window of samples per version."""
    prof = get_profile(profile)
    alpha = prof.metric_alpha
    rows = tuple(classify_fixed(m, baseline.get(m.name), canary.get(m.name), alpha) for m in prof.metrics)
    d = verdict(rows, prof, final=True)
    return JudgeResult(d.verdict, d.score, d.decided, "fixed", prof.name, prof.alpha, alpha, d.reason, rows,
                       extra={"rule": d.rule})


class SequentialAnalysis:
    """Live, always-valid canary analysis; feed it the samples that arrived since the last poll.

        analysis = SequentialAnalysis("default-llm")
        while True:
            result = analysis.update(new_baseline, new_canary)   # dicts: metric -> array
            if result.decided: break
        result = analysis.finish()   # at the deadline: undecided metrics become Inconclusive

    keep_samples=False skips storing the values (summaries then hold n and mean only); for
    simulations with many runs. min_canary_samples: a pass is decided only once the canary
    has that many samples (a rollout step's `min_step_samples`); fails are decided at once.
    """

    def __init__(self, profile: "str | Profile | Mapping[str, Any]" = "default-llm", *,
                 keep_samples: bool = True, min_canary_samples: int = 0) -> None:
        self.profile = get_profile(profile)
        self.min_canary_samples = min_canary_samples
        alpha = self.profile.metric_alpha
        self._metrics = [SequentialMetric(m, alpha, keep_samples) for m in self.profile.metrics]
        self.looks = 0
        self._decision: JudgeResult | None = None
        self._last: JudgeResult | None = None

    @property
    def decided(self) -> bool:
        return self._decision is not None

    @property
    def result(self) -> JudgeResult | None:
        """The latest result (None before the first update)."""
        return self._last

    def update(self, baseline: Samples | None = None, canary: Samples | None = None, *,
               final: bool = False) -> JudgeResult:
        """Add new samples and look. After a decision, data is still taken in for the
        summaries, but the verdict stays the decided one."""
        baseline, canary = baseline or {}, canary or {}
        for m in self._metrics:
            m.update(baseline.get(m.cfg.name), canary.get(m.cfg.name))
        self.looks += 1
        if self._decision is not None:
            return self._decision
        rows = tuple(m.result(final) for m in self._metrics)
        d = verdict(rows, self.profile, final=final)
        decided, reason = d.decided, d.reason
        canary_n = max((r.canary.n for r in rows), default=0)
        if decided and d.verdict is Verdict.PASS and not final and canary_n < self.min_canary_samples:
            # a pass is not final before the sample floor: the confidence sequences stay valid
            # at any later look, so collecting on and passing later spends nothing extra
            decided = False
            reason = f"{reason}; waiting for {self.min_canary_samples} canary samples (have {canary_n})"
        result = JudgeResult(d.verdict, d.score, decided, "sequential", self.profile.name, self.profile.alpha,
                             self.profile.metric_alpha, reason, rows, self.looks, extra={"rule": d.rule})
        if decided:
            self._decision = result
        self._last = result
        return result

    def finish(self) -> JudgeResult:
        """The final look at the deadline, without new data."""
        return self.update(final=True)

    def state_dict(self) -> dict[str, Any]:
        """Plain, JSON-able state, so a live analysis survives a restart (`from_state`).

        Restoring and continuing is the same test as never stopping; re-feeding old data to a
        fresh analysis instead would start a second test and spend alpha twice.
        """
        return {
            "profile": self.profile.to_dict(),
            "looks": self.looks,
            "min_canary_samples": self.min_canary_samples,
            "metrics": [m.state_dict() for m in self._metrics],
            "decision": self._decision.to_dict() if self._decision else None,
            "last": self._last.to_dict() if self._last else None,
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> "SequentialAnalysis":
        a = cls(Profile.from_dict(d["profile"]), min_canary_samples=int(d.get("min_canary_samples", 0)))
        a._metrics = [SequentialMetric.from_state(m) for m in d["metrics"]]
        a.looks = int(d["looks"])
        a._decision = JudgeResult.from_dict(d["decision"]) if d["decision"] else None
        a._last = JudgeResult.from_dict(d["last"]) if d["last"] else None
        return a
