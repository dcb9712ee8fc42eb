"""Simulated LLM traffic with known truth, and runners that poll judges over it.

Per request: output tokens, time to first token and time per output token are log-normal;
e2e latency = ttft + tpot * (tokens - 1); output tokens/s = tokens / latency; cost is priced
from prompt and output tokens; errors and output safety hits are Bernoulli. Errored requests
have no latency, throughput or cost (NaN), as the ledger has none for them. A canary
`Regression` multiplies ttft and tpot (so every latency quantile scales by the same factor),
the error and safety rates, and the cost. Optional: a cache hit share (cost exactly 0, the
zero-inflated case) and a Pareto-stretched share of ttft (heavy tails).

Requests arrive as a Poisson process at `rps`; each goes to the canary with probability
`canary_share`, independently of everything else (the randomised routing the tests assume).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from canary.config import Profile
from canary.judge import JudgeResult, SequentialAnalysis, Verdict, judge

Batch = dict[str, np.ndarray]


@dataclass(frozen=True)
class TrafficModel:
    rps: float = 10.0
    canary_share: float = 0.10
    ttft_median_s: float = 0.35
    ttft_sigma: float = 0.6
    tpot_median_s: float = 0.025
    tpot_sigma: float = 0.35
    output_tokens_median: float = 200.0
    output_tokens_sigma: float = 0.8
    prompt_tokens_median: float = 500.0
    prompt_tokens_sigma: float = 0.7
    usd_per_input_token: float = 0.5e-6
    usd_per_output_token: float = 1.5e-6
    error_rate: float = 0.01
    safety_rate: float = 0.005
    cache_hit_rate: float = 0.0  # answered from the gateway's cache: cost exactly 0
    tail_share: float = 0.0  # share of requests whose ttft is stretched by a Pareto factor
    tail_index: float = 1.5  # Pareto shape of that factor (< 2: infinite variance)


@dataclass(frozen=True)
class Regression:
    """Multipliers applied to the canary (1.0 everywhere: an A/A test)."""

    latency: float = 1.0
    error_rate: float = 1.0
    safety_rate: float = 1.0
    cost: float = 1.0


def requests(n: int, model: TrafficModel, regression: Regression, rng: np.random.Generator) -> Batch:
    """n simulated requests of one version, as metric arrays named like `canary.samples`."""
    tokens = np.maximum(1.0, np.round(rng.lognormal(np.log(model.output_tokens_median), model.output_tokens_sigma, n)))
    prompt = np.maximum(1.0, np.round(rng.lognormal(np.log(model.prompt_tokens_median), model.prompt_tokens_sigma, n)))
    ttft = rng.lognormal(np.log(model.ttft_median_s), model.ttft_sigma, n) * regression.latency
    if model.tail_share:
        ttft *= np.where(rng.random(n) < model.tail_share, 1.0 + rng.pareto(model.tail_index, n), 1.0)
    tpot = rng.lognormal(np.log(model.tpot_median_s), model.tpot_sigma, n) * regression.latency
    latency = ttft + tpot * (tokens - 1)
    cost = (prompt * model.usd_per_input_token + tokens * model.usd_per_output_token) * regression.cost
    if model.cache_hit_rate:
        cost[rng.random(n) < model.cache_hit_rate] = 0.0
    error = rng.random(n) < min(1.0, model.error_rate * regression.error_rate)
    safety = (rng.random(n) < min(1.0, model.safety_rate * regression.safety_rate)) & ~error
    nan = np.where(error, np.nan, 1.0)
    return {
        "latency_s": latency * nan,
        "ttft_s": ttft * nan,
        "tpot_s": tpot * nan,
        "output_tokens_per_s": tokens / latency * nan,
        "cost_usd": cost * nan,
        "error": error.astype(float),
        "safety_hit": safety.astype(float),
    }


@dataclass
class TrafficSimulator:
    """A baseline and a canary sharing a Poisson request stream."""

    model: TrafficModel = field(default_factory=TrafficModel)
    regression: Regression = field(default_factory=Regression)
    seed: int = 0
    seconds: float = 0.0
    baseline_requests: int = 0
    canary_requests: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def advance(self, seconds: float) -> tuple[Batch, Batch]:
        """The requests of the next `seconds`: (baseline batch, canary batch)."""
        total = int(self.rng.poisson(self.model.rps * seconds))
        n_canary = int(self.rng.binomial(total, self.model.canary_share))
        self.seconds += seconds
        self.baseline_requests += total - n_canary
        self.canary_requests += n_canary
        return (
            requests(total - n_canary, self.model, Regression(), self.rng),
            requests(n_canary, self.model, self.regression, self.rng),
        )


# --- polling runners ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """How one simulated analysis ended."""

    verdict: Verdict
    decided: bool  # decided before the horizon (fixed judge: rejected before it)
    seconds: float  # time of the decision, or the horizon
    canary_requests: int  # canary requests routed by then
    looks: int
    first_failed: str | None  # name of a failing metric, if any

    @property
    def rejected(self) -> bool:
        """Judged not promotable: fail or marginal."""
        return self.verdict in (Verdict.FAIL, Verdict.MARGINAL)


def _first_failed(result: JudgeResult) -> str | None:
    return next((m.name for m in result.metrics if m.failed), None)


def _outcome(result: JudgeResult, sim: TrafficSimulator, looks: int, decided: bool) -> RunOutcome:
    return RunOutcome(result.verdict, decided, sim.seconds, sim.canary_requests, looks, _first_failed(result))


@dataclass
class _FixedPoller:
    """Kayenta-style: the fixed-horizon judge re-run on all data so far at every look."""

    profile: Profile
    chunks: tuple[list[Batch], list[Batch]] = field(default_factory=lambda: ([], []))

    def look(self, baseline: Batch, canary: Batch) -> JudgeResult:
        self.chunks[0].append(baseline)
        self.chunks[1].append(canary)
        merged = [{k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]} for chunks in self.chunks]
        for chunks, m in zip(self.chunks, merged, strict=True):
            chunks[:] = [m]
        return judge(merged[0], merged[1], self.profile)


def poll(
    sim: TrafficSimulator,
    interval_s: float,
    horizon_s: float,
    *,
    sequential: Profile | None = None,
    fixed: Profile | None = None,
) -> dict[str, RunOutcome]:
    """Poll a sequential analysis and/or a re-run fixed-horizon judge on one simulated stream.

    Looks every interval_s until horizon_s. The sequential run ends at its decision (or its
    final look at the horizon); the fixed run ends at its first fail/marginal verdict (or at
    the horizon with its last verdict). Both see exactly the same requests.
    """
    seq = SequentialAnalysis(sequential, keep_samples=False) if sequential is not None else None
    fix = _FixedPoller(fixed) if fixed is not None else None
    out: dict[str, RunOutcome] = {}
    looks = 0
    while sim.seconds < horizon_s - 1e-9 and (("sequential" not in out and seq) or ("fixed" not in out and fix)):
        baseline, canary = sim.advance(interval_s)
        looks += 1
        last = sim.seconds >= horizon_s - 1e-9
        if seq is not None and "sequential" not in out:
            r = seq.update(baseline, canary)
            if r.decided:
                out["sequential"] = _outcome(r, sim, looks, decided=True)
            elif last:  # the deadline: undecided metrics become Inconclusive
                out["sequential"] = _outcome(seq.finish(), sim, looks, decided=False)
        if fix is not None and "fixed" not in out:
            r = fix.look(baseline, canary)
            if r.verdict in (Verdict.FAIL, Verdict.MARGINAL):
                out["fixed"] = _outcome(r, sim, looks, decided=True)
            elif last:
                out["fixed"] = _outcome(r, sim, looks, decided=False)
    return out
