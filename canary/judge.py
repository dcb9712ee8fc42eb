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
from dataclasses import dataclass
from functools import cached_property
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


class Mode(StrEnum):
    FIXED = "fixed"  # one look at a window (`judge`)
    SEQUENTIAL = "sequential"  # live, always-valid looks (`SequentialAnalysis`)


class Rule(StrEnum):
    """The rule of `verdict` that gave a decision (stored as the result's `extra.rule`)."""

    CRITICAL_FAILURE = "critical_failure"
    TOO_LITTLE_DATA = "too_little_data"
    SCORE_BELOW_PASS = "score_below_pass"
    ALL_DECIDED = "all_decided"
    UNDECIDED_AT_DEADLINE = "undecided_at_deadline"
    WAITING = "waiting"
    PASS_WHATEVER_THE_REST = "pass_whatever_the_rest"
    SCORE_WITHOUT_UNDECIDED = "score_without_undecided"


@dataclass(frozen=True, kw_only=True)
class JudgeResult:
    """A canary verdict with its per-metric rows.

    score: Kayenta's score; for an undecided sequential analysis it counts the undecided
    metrics as passing (the best score still reachable).
    decided: the verdict is final (always True for fixed-horizon results).
    rule: the rule that gave the verdict (None in results stored without one).
    """

    verdict: Verdict
    score: float | None
    decided: bool
    mode: Mode
    profile: str
    alpha: float
    metric_alpha: float
    reason: str
    metrics: tuple[MetricResult, ...]
    looks: int = 1
    rule: Rule | None = None

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
            "mode": self.mode.value,
            "profile": self.profile,
            "alpha": self.alpha,
            "metric_alpha": self.metric_alpha,
            "reason": self.reason,
            "looks": self.looks,
            "baseline_samples": self.baseline_samples,
            "canary_samples": self.canary_samples,
            "metrics": [m.to_dict() for m in self.metrics],
            "extra": {"rule": self.rule.value} if self.rule else {},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "JudgeResult":
        """Inverse of `to_dict` (e.g. for results stored in the ledger as JSON)."""
        rule = (d.get("extra") or {}).get("rule")
        return cls(
            verdict=Verdict(d["verdict"]),
            score=d["score"],
            decided=d["decided"],
            mode=Mode(d["mode"]),
            profile=d["profile"],
            alpha=d["alpha"],
            metric_alpha=d["metric_alpha"],
            reason=d["reason"],
            metrics=tuple(MetricResult.from_dict(m) for m in d["metrics"]),
            looks=d.get("looks", 1),
            rule=Rule(rule) if rule else None,
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


def score(results: Sequence[MetricResult], profile: Profile, undecided_as: Outcome | None = None) -> float | None:
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


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The verdict on the current metric rows, with the rule that gave it."""

    verdict: Verdict
    score: float | None
    decided: bool
    rule: Rule
    reason: str


@dataclass(frozen=True)
class _Rows:
    """The metric rows sorted by what the rules ask of them."""

    all: Sequence[MetricResult]
    profile: Profile
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

    def score(self, undecided_as: Outcome | None = None) -> float | None:
        return score(self.all, self.profile, undecided_as)

    @cached_property
    def best(self) -> float | None:
        """The best score still reachable: undecided metrics counted as passing."""
        return self.score(undecided_as=Outcome.PASS)

    def graded(self, s: float | None, rule: Rule, reason: str) -> Decision:
        """A decision by the score thresholds (pass, marginal or fail)."""
        assert s is not None
        v = _by_score(s, self.profile)
        return Decision(verdict=v, score=s, decided=True, rule=rule, reason=f"{v.value}: score {s:.2f}{reason}")


# Kayenta's rules in order (critical failure, too little data, score), then ours for metrics
# not decided yet. Each returns a decision, or None to leave the rows to the next rule.


def _critical_failure(rows: _Rows) -> Decision | None:
    if not rows.critical_failed:
        return None
    return Decision(
        verdict=Verdict.FAIL,
        score=0.0,
        decided=True,
        rule=Rule.CRITICAL_FAILURE,
        reason=f"fail: critical metric failed: {_names(rows.critical_failed)}",
    )


def _too_little_data(rows: _Rows) -> Decision | None:
    n = len(rows.scored)
    if not (rows.final and n and 2 * len(rows.no_data) >= n):
        return None
    return Decision(
        verdict=Verdict.FAIL,
        score=0.0,
        decided=True,
        rule=Rule.TOO_LITTLE_DATA,
        reason=f"fail: {len(rows.no_data)} of {n} metrics have no data",
    )


def _score_below_pass(rows: _Rows) -> Decision | None:
    """Passing is out of reach. At the end the Kayenta score (Inconclusive left out, never
    above the best reachable) grades it; while live, the best still reachable does."""
    pass_at = rows.profile.pass_threshold
    if rows.best is None or rows.best >= pass_at:
        return None
    undecided = f"; never decided: {_labels(rows.pending)}" if rows.final and rows.pending else ""
    return rows.graded(
        rows.score() if rows.final else rows.best,
        Rule.SCORE_BELOW_PASS,
        f"{'' if rows.final else ' at best'}, below {pass_at:g}: {_names(rows.failed)}{undecided}",
    )


def _all_decided(rows: _Rows) -> Decision | None:
    if rows.pending:
        return None
    s = rows.score()
    return Decision(
        verdict=Verdict.PASS,
        score=s,
        decided=True,
        rule=Rule.ALL_DECIDED,
        reason=f"pass: score {s:.2f}; {len(rows.scored)} metrics judged" if s is not None else "pass: nothing to judge",
    )


def _waiting_for_blocking(rows: _Rows) -> Decision | None:
    """A pass waits for critical and must-decide metrics, and for half the metrics or more."""
    if not (rows.blocking or 2 * len(rows.pending) >= len(rows.scored)):
        return None
    why = _labels(rows.blocking or rows.pending)
    if rows.final:
        return Decision(
            verdict=Verdict.INCONCLUSIVE,
            score=rows.score(),
            decided=True,
            rule=Rule.UNDECIDED_AT_DEADLINE,
            reason=f"inconclusive: never decided: {_labels(rows.pending)} (a pass needs {why})",
        )
    return Decision(
        verdict=Verdict.INCONCLUSIVE,
        score=rows.best,
        decided=False,
        rule=Rule.WAITING,
        reason=f"inconclusive: undecided: {why}",
    )


def _pass_whatever_the_rest(rows: _Rows) -> Decision | None:
    worst = rows.score(undecided_as=Outcome.HIGH)
    if worst is None or worst < rows.profile.pass_threshold:
        return None
    never = f"; never decided: {_labels(rows.pending)}" if rows.final else ""
    return Decision(
        verdict=Verdict.PASS,
        score=worst,
        decided=True,
        rule=Rule.PASS_WHATEVER_THE_REST,
        reason=f"pass: score {worst:.2f} even if {_labels(rows.pending)} failed{never}",
    )


def _rest_undecided(rows: _Rows) -> Decision:
    """The last rule: at the end the score without the undecided metrics grades; while live, wait."""
    if rows.final:
        return rows.graded(
            rows.score(),
            Rule.SCORE_WITHOUT_UNDECIDED,
            f"; never decided, left out of the score: {_labels(rows.pending)}",
        )
    return Decision(
        verdict=Verdict.INCONCLUSIVE,
        score=rows.best,
        decided=False,
        rule=Rule.WAITING,
        reason=f"inconclusive: undecided: {_labels(rows.pending)}",
    )


_RULES = (
    _critical_failure,
    _too_little_data,
    _score_below_pass,
    _all_decided,
    _waiting_for_blocking,
    _pass_whatever_the_rest,
)


def verdict(results: Sequence[MetricResult], profile: Profile, *, final: bool) -> Decision:
    """The first of the rules above that decides, in order; `_rest_undecided` when none does."""
    rows = _Rows(results, profile, final)
    for rule in _RULES:
        if (d := rule(rows)) is not None:
            return d
    return _rest_undecided(rows)


# --- entry points -------------------------------------------------------------------------


def judge(
    baseline: Samples, canary: Samples, profile: "str | Profile | Mapping[str, Any]" = "default-llm"
) -> JudgeResult:
    """Fixed-horizon (Kayenta-like) analysis of one window of samples per version."""
    prof = get_profile(profile)
    alpha = prof.metric_alpha
    rows = tuple(classify_fixed(m, baseline.get(m.name), canary.get(m.name), alpha) for m in prof.metrics)
    d = verdict(rows, prof, final=True)
    return JudgeResult(
        verdict=d.verdict,
        score=d.score,
        decided=d.decided,
        mode=Mode.FIXED,
        profile=prof.name,
        alpha=prof.alpha,
        metric_alpha=alpha,
        reason=d.reason,
        metrics=rows,
        rule=d.rule,
    )


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

    def __init__(
        self,
        profile: "str | Profile | Mapping[str, Any]" = "default-llm",
        *,
        keep_samples: bool = True,
        min_canary_samples: int = 0,
    ) -> None:
        self.profile = get_profile(profile)
        self.min_canary_samples = min_canary_samples
        alpha = self.profile.metric_alpha
        self._metrics = [SequentialMetric(m, alpha, keep_samples=keep_samples) for m in self.profile.metrics]
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

    def update(
        self, baseline: Samples | None = None, canary: Samples | None = None, *, final: bool = False
    ) -> JudgeResult:
        """Add new samples and look. After a decision, data is still taken in for the
        summaries, but the verdict stays the decided one."""
        baseline, canary = baseline or {}, canary or {}
        for m in self._metrics:
            m.update(baseline.get(m.cfg.name), canary.get(m.cfg.name))
        self.looks += 1
        if self._decision is not None:
            return self._decision
        rows = tuple(m.result(final=final) for m in self._metrics)
        d = verdict(rows, self.profile, final=final)
        decided, reason = d.decided, d.reason
        canary_n = max((r.canary.n for r in rows), default=0)
        if decided and d.verdict is Verdict.PASS and not final and canary_n < self.min_canary_samples:
            # a pass is not final before the sample floor: the confidence sequences stay valid
            # at any later look, so collecting on and passing later spends nothing extra
            decided = False
            reason = f"{reason}; waiting for {self.min_canary_samples} canary samples (have {canary_n})"
        result = JudgeResult(
            verdict=d.verdict,
            score=d.score,
            decided=decided,
            mode=Mode.SEQUENTIAL,
            profile=self.profile.name,
            alpha=self.profile.alpha,
            metric_alpha=self.profile.metric_alpha,
            reason=reason,
            metrics=rows,
            looks=self.looks,
            rule=d.rule,
        )
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
