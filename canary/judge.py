"""Combine per-metric outcomes into a canary verdict (Kayenta's NetflixACAJudge scoring).

Score: per group 100 * Pass / (Pass + High + Low + NodataFail), averaged over the groups that
have such metrics with the profile's weights; Inconclusive metrics are left out, as Kayenta
leaves them out. A critical failure, or no data for half the metrics or more, forces 0.
Verdict: pass at or above `pass_threshold`, marginal at or above `marginal_threshold`, else
fail; inconclusive when a critical metric, or half the metrics or more, are Inconclusive and
the rest cannot already fail the canary.

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


def score(results: Sequence[MetricResult], profile: Profile,
          undecided_as: Outcome | None = None) -> float | None:
    """Kayenta's weighted group score; None when no metric counts.

    undecided_as: count Inconclusive metrics as this outcome (Pass for the best reachable
    score, High for the worst) instead of leaving them out.
    """
    groups: dict[str, list[int]] = {}
    for r in results:
        outcome = r.outcome
        if outcome is Outcome.INCONCLUSIVE and undecided_as is not None:
            outcome = undecided_as
        if outcome in COUNTED:
            passed, counted = groups.setdefault(r.group, [0, 0])
            groups[r.group] = [passed + (outcome is Outcome.PASS), counted + 1]
    if not groups:
        return None
    total_w = sum(profile.weight(g) for g in groups)
    if total_w <= 0:
        return None
    return sum(profile.weight(g) * 100.0 * p / c for g, (p, c) in groups.items()) / total_w


def _by_score(s: float, profile: Profile) -> Verdict:
    if s >= profile.pass_threshold:
        return Verdict.PASS
    return Verdict.MARGINAL if s >= profile.marginal_threshold else Verdict.FAIL


def _names(rows: Iterable[MetricResult]) -> str:
    return ", ".join(f"{r.label} {r.outcome.value}" for r in rows)


def verdict(results: Sequence[MetricResult], profile: Profile, final: bool) -> tuple[Verdict, float | None, bool, str]:
    """(verdict, score, decided, reason) for the current metric rows."""
    failed = [r for r in results if r.failed]
    pending = [r for r in results if r.outcome is Outcome.INCONCLUSIVE]
    critical_failed = [r for r in failed if r.critical]
    if critical_failed:
        return Verdict.FAIL, 0.0, True, f"fail: critical metric failed: {_names(critical_failed)}"
    no_data = [r for r in results if not r.has_data]
    if final and 2 * len(no_data) >= len(results):
        return Verdict.FAIL, 0.0, True, f"fail: {len(no_data)} of {len(results)} metrics have no data"

    best = score(results, profile, undecided_as=Outcome.PASS)
    if best is not None and best < profile.pass_threshold:
        # Passing is out of reach. At the end the Kayenta score (Inconclusive left out, never
        # above `best`) grades it; while live, the best still reachable does.
        s = score(results, profile) if final else best
        assert s is not None
        v = _by_score(s, profile)
        return v, s, True, f"{v.value}: score {s:.0f}{'' if final else ' at best'}, below {profile.pass_threshold:.0f}: {_names(failed)}"
    critical_pending = [r for r in pending if r.critical]
    if not pending:
        s = score(results, profile)
        assert s is not None
        return Verdict.PASS, s, True, f"pass: score {s:.0f}; {len(results)} metrics judged"
    if critical_pending or 2 * len(pending) >= len(results):
        why = ", ".join(r.label for r in (critical_pending or pending))
        if final:
            return Verdict.INCONCLUSIVE, score(results, profile), True, f"inconclusive: not enough evidence for {why}"
        return Verdict.INCONCLUSIVE, best, False, f"inconclusive: undecided: {why}"
    worst = score(results, profile, undecided_as=Outcome.HIGH)
    if worst is not None and worst >= profile.pass_threshold:
        return Verdict.PASS, worst, True, f"pass: score {worst:.0f} even if {', '.join(r.label for r in pending)} failed"
    if final:
        s = score(results, profile)
        assert s is not None
        v = _by_score(s, profile)
        return v, s, True, f"{v.value}: score {s:.0f} without the inconclusive {', '.join(r.label for r in pending)}"
    return Verdict.INCONCLUSIVE, best, False, f"inconclusive: undecided: {', '.join(r.label for r in pending)}"


# --- entry points -------------------------------------------------------------------------


def judge(baseline: Samples, canary: Samples, profile: "str | Profile | Mapping[str, Any]" = "default-llm") -> JudgeResult:
    """Fixed-horizon (Kayenta-like) analysis of one window of samples per version."""
    prof = get_profile(profile)
    alpha = prof.metric_alpha
    rows = tuple(classify_fixed(m, baseline.get(m.name), canary.get(m.name), alpha) for m in prof.metrics)
    v, s, decided, reason = verdict(rows, prof, final=True)
    return JudgeResult(v, s, decided, "fixed", prof.name, prof.alpha, alpha, reason, rows)


class SequentialAnalysis:
    """Live, always-valid canary analysis; feed it the samples that arrived since the last poll.

        analysis = SequentialAnalysis("default-llm")
        while True:
            result = analysis.update(new_baseline, new_canary)   # dicts: metric -> array
            if result.decided: break
        result = analysis.finish()   # at the deadline: undecided metrics become Inconclusive

    keep_samples=False skips storing the values (summaries then hold n and mean only); for
    simulations with many runs.
    """

    def __init__(self, profile: "str | Profile | Mapping[str, Any]" = "default-llm", *,
                 keep_samples: bool = True) -> None:
        self.profile = get_profile(profile)
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
        v, s, decided, reason = verdict(rows, self.profile, final)
        result = JudgeResult(v, s, decided, "sequential", self.profile.name, self.profile.alpha,
                             self.profile.metric_alpha, reason, rows, self.looks)
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
            "metrics": [m.state_dict() for m in self._metrics],
            "decision": self._decision.to_dict() if self._decision else None,
            "last": self._last.to_dict() if self._last else None,
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> "SequentialAnalysis":
        a = cls(Profile.from_dict(d["profile"]))
        a._metrics = [SequentialMetric.from_state(m) for m in d["metrics"]]
        a.looks = int(d["looks"])
        a._decision = JudgeResult.from_dict(d["decision"]) if d["decision"] else None
        a._last = JudgeResult.from_dict(d["last"]) if d["last"] else None
        return a
