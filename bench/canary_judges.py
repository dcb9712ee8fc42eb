"""Sequential canary judge against a Kayenta-style fixed-horizon judge re-run at every look.

Simulates A/A and A/B traffic (canary.simulate: log-normal latencies, Bernoulli errors, a
canary at a given traffic share) and polls both judges on the same requests every
`--interval` seconds:

- sequential: `SequentialAnalysis` with the profile (always-valid tests, Bonferroni over
  metrics); a run ends at its first decision.
- fixed: the fixed-horizon judge (Mann-Whitney/Hodges-Lehmann, Fisher/z for rates) re-run on
  all data so far at every look with Kayenta's defaults: 98 % intervals per metric, no
  correction across metrics. A run ends at its first fail/marginal verdict.

"Rejected" means judged fail or marginal (not promotable). For A/A that is a false fail, for
A/B a detection. Prints a table (or --json) and the issue's targets next to the numbers.

    ./dev bench canary_judges [--runs 100] [--json] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from scipy import stats as sps

from canary.config import Profile, get_profile
from canary.judge import Verdict
from canary.simulate import Regression, RunOutcome, TrafficModel, TrafficSimulator, poll

JUDGES = ("sequential", "fixed")


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    regression: Regression
    minutes: float
    regressed: bool  # A/B: rejecting is a detection; A/A: a false fail
    model: dict[str, float] = dataclasses.field(default_factory=dict)  # TrafficModel overrides


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    return [
        Scenario("aa", "A/A (identical versions)", Regression(), args.aa_minutes, False),
        Scenario(
            "latency",
            f"latencies x{args.latency_factor:g} (ttft, tpot, e2e)",
            Regression(latency=args.latency_factor),
            args.latency_minutes,
            True,
        ),
        Scenario(
            "errors",
            f"error rate {100 * args.error_rate:g}% -> {100 * args.error_rate * args.error_factor:g}%",
            Regression(error_rate=args.error_factor),
            args.error_minutes,
            True,
        ),
        Scenario(
            "zero_cost",
            f"cost x2 of uncached requests, {100 * args.cache_hit_rate:g}% cache hits (cost 0)",
            Regression(cost=2.0),
            args.aa_minutes,
            True,
            {"cache_hit_rate": args.cache_hit_rate},
        ),
        Scenario(
            "zero_cost_aa",
            f"A/A, {100 * args.cache_hit_rate:g}% cache hits (cost 0)",
            Regression(),
            args.aa_minutes,
            False,
            {"cache_hit_rate": args.cache_hit_rate},
        ),
        Scenario(
            "heavy_aa",
            f"A/A, heavy-tailed ttft ({100 * args.tail_share:g}% Pareto({args.tail_index:g})-stretched)",
            Regression(),
            args.aa_minutes,
            False,
            {"tail_share": args.tail_share, "tail_index": args.tail_index},
        ),
        Scenario(
            "heavy_latency",
            f"latencies x{args.latency_factor:g}, heavy-tailed ttft",
            Regression(latency=args.latency_factor),
            args.latency_minutes,
            True,
            {"tail_share": args.tail_share, "tail_index": args.tail_index},
        ),
    ]


def run_one(
    scenario: Scenario, seed: int, model: TrafficModel, interval: float, sequential: Profile, fixed: Profile
) -> dict[str, RunOutcome]:
    sim = TrafficSimulator(dataclasses.replace(model, **scenario.model), scenario.regression, seed=seed)
    return poll(sim, interval, scenario.minutes * 60, sequential=sequential, fixed=fixed)


def _rate(k: int, n: int) -> dict[str, float]:
    ci = sps.binomtest(k, n).proportion_ci(0.95) if n else None
    return {
        "rate": k / n if n else float("nan"),
        "count": k,
        "runs": n,
        "ci_low": ci.low if ci else float("nan"),
        "ci_high": ci.high if ci else float("nan"),
    }


def summarize(outcomes: list[RunOutcome], scenario: Scenario) -> dict[str, Any]:
    rejected = [o for o in outcomes if o.rejected]
    passed = [o for o in outcomes if o.verdict is Verdict.PASS]
    early_pass = [o for o in passed if o.decided]
    decisions = rejected if scenario.regressed or not early_pass else rejected + early_pass
    first = {}
    for o in rejected:
        if o.first_failed:
            first[o.first_failed] = first.get(o.first_failed, 0) + 1

    def med(xs: list[float]) -> float | None:
        return float(np.median(xs)) if xs else None

    return {
        "rejected": _rate(len(rejected), len(outcomes)),
        "passed": _rate(len(passed), len(outcomes)),
        "passed_early": _rate(len(early_pass), len(outcomes)),
        "median_canary_requests_to_rejection": med([o.canary_requests for o in rejected]),
        "median_minutes_to_rejection": med([o.seconds / 60 for o in rejected]),
        "p90_canary_requests_to_rejection": (
            float(np.percentile([o.canary_requests for o in rejected], 90)) if rejected else None
        ),
        "median_canary_requests_to_early_pass": med([o.canary_requests for o in early_pass]),
        "median_minutes_to_early_pass": med([o.seconds / 60 for o in early_pass]),
        "median_canary_requests_to_decision": med([o.canary_requests for o in decisions]),
        "first_failed_metric": first,
        "final_verdicts": {v.value: sum(o.verdict is v for o in outcomes) for v in Verdict},
    }


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, checked on the sequential judge for the scenarios that ran."""
    rows = [
        (
            "aa",
            "A/A false fail rate under continuous polling",
            "<= 5%",
            lambda r: r["rejected"]["rate"],
            lambda v: v <= 0.05,
            "{:.1%}",
        ),
        ("latency", "latency +25% detected", ">= 95%", lambda r: r["rejected"]["rate"], lambda v: v >= 0.95, "{:.1%}"),
        (
            "latency",
            "latency +25% median canary requests to decision",
            "<= 500",
            lambda r: r["median_canary_requests_to_rejection"],
            lambda v: v is not None and v <= 500,
            "{:.0f}",
        ),
        (
            "errors",
            "error rate 1% -> 2% detected",
            ">= 90%",
            lambda r: r["rejected"]["rate"],
            lambda v: v >= 0.90,
            "{:.1%}",
        ),
    ]
    out = []
    for key, name, goal, get, ok, fmt in rows:
        if key not in results:
            continue
        value = get(results[key]["sequential"])
        out.append(
            {
                "target": name,
                "goal": goal,
                "sequential": value,
                "shown": fmt.format(value) if value is not None else "n/a",
                "met": bool(ok(value)),
            }
        )
    return out


def _pct(r: dict[str, float]) -> str:
    return f"{100 * r['rate']:.1f}% [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"


def _most_first(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"


def _num(v: float | None, fmt: str = "{:.0f}") -> str:
    return fmt.format(v) if v is not None else "-"


def render(
    console: Console,
    config: dict[str, Any],
    results: dict[str, dict[str, Any]],
    scen: list[Scenario],
    checks: list[dict[str, Any]],
) -> None:
    console.print(
        f"[bold]Canary judges[/bold]: {config['runs']} runs per scenario, {config['rps']:g} rps, "
        f"{100 * config['canary_share']:g}% canary, a look every {config['interval_s']:g} s; "
        f"sequential = '{config['profile']}' at alpha {config['alpha']:g} (Bonferroni), "
        f"fixed = Kayenta-style re-run, {100 * (1 - config['fixed_alpha']):g}% per metric, no correction"
    )
    for s in scen:
        t = Table(title=f"{s.title}, horizon {s.minutes:g} min", title_justify="left")
        t.add_column("")
        for j in JUDGES:
            t.add_column(j, justify="right")
        r = results[s.key]
        label = "detected (fail/marginal)" if s.regressed else "false fail (fail/marginal)"
        t.add_row(label + ", 95% CI", *(_pct(r[j]["rejected"]) for j in JUDGES))
        t.add_row(
            "median canary requests to that", *(_num(r[j]["median_canary_requests_to_rejection"]) for j in JUDGES)
        )
        t.add_row("median minutes to that", *(_num(r[j]["median_minutes_to_rejection"], "{:.1f}") for j in JUDGES))
        t.add_row("p90 canary requests to that", *(_num(r[j]["p90_canary_requests_to_rejection"]) for j in JUDGES))
        if not s.regressed:
            t.add_row("passed before the horizon", *(_pct(r[j]["passed_early"]) for j in JUDGES))
            t.add_row(
                "median canary requests to that", *(_num(r[j]["median_canary_requests_to_early_pass"]) for j in JUDGES)
            )
            t.add_row("median minutes to that", *(_num(r[j]["median_minutes_to_early_pass"], "{:.1f}") for j in JUDGES))
        t.add_row(
            "final verdicts", *(", ".join(f"{k} {v}" for k, v in r[j]["final_verdicts"].items() if v) for j in JUDGES)
        )
        t.add_row("first failing metric", *(_most_first(r[j]["first_failed_metric"]) for j in JUDGES))
        console.print(t)
    t = Table(title="Targets (sequential judge)", title_justify="left")
    for c in ("target", "goal", "measured", "met"):
        t.add_column(c)
    for c in checks:
        t.add_row(c["target"], c["goal"], c["shown"], "yes" if c["met"] else "[red]NO[/red]")
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100, help="simulated canaries per scenario")
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.add_argument("--profile", default="default-llm")
    p.add_argument("--rps", type=float, default=10.0, help="total requests per second")
    p.add_argument("--share", type=float, default=0.10, help="canary traffic share")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between looks")
    p.add_argument("--aa-minutes", type=float, default=60.0)
    p.add_argument("--latency-minutes", type=float, default=30.0)
    p.add_argument("--latency-factor", type=float, default=1.25)
    p.add_argument("--error-minutes", type=float, default=240.0)
    p.add_argument("--error-rate", type=float, default=0.01)
    p.add_argument("--error-factor", type=float, default=2.0)
    p.add_argument("--cache-hit-rate", type=float, default=0.6, help="zero-cost share in the zero_cost scenarios")
    p.add_argument("--tail-share", type=float, default=0.05, help="Pareto-stretched ttft share (heavy_* scenarios)")
    p.add_argument("--tail-index", type=float, default=1.5)
    p.add_argument("--fixed-alpha", type=float, default=0.02, help="per-metric level of the fixed judge")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--only",
        choices=["aa", "latency", "errors", "zero_cost", "zero_cost_aa", "heavy_aa", "heavy_latency"],
        action="append",
        help="run only these scenarios (repeatable)",
    )
    args = p.parse_args(argv)

    profile = get_profile(args.profile)
    fixed = dataclasses.replace(profile, alpha=args.fixed_alpha, correction="none")
    model = TrafficModel(rps=args.rps, canary_share=args.share, error_rate=args.error_rate)
    scen = [s for s in scenarios(args) if not args.only or s.key in args.only]
    console = Console(stderr=args.json)
    config = {
        "runs": args.runs,
        "rps": args.rps,
        "canary_share": args.share,
        "interval_s": args.interval,
        "profile": profile.name,
        "alpha": profile.alpha,
        "fixed_alpha": args.fixed_alpha,
        "model": dataclasses.asdict(model),
        "seed": args.seed,
        "horizons_min": {s.key: s.minutes for s in scen},
    }

    outcomes: dict[str, dict[str, list[RunOutcome]]] = {s.key: {j: [] for j in JUDGES} for s in scen}
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=console, transient=args.json) as progress,
        ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool,
    ):
        tasks = {s.key: progress.add_task(s.title, total=args.runs) for s in scen}
        futures = {
            pool.submit(run_one, s, args.seed + i, model, args.interval, profile, fixed): s
            for s in scen
            for i in range(args.runs)
        }
        for fut in as_completed(futures):
            s = futures[fut]
            for j, o in fut.result().items():
                outcomes[s.key][j].append(o)
            progress.advance(tasks[s.key])
    elapsed = time.perf_counter() - started

    results = {s.key: {j: summarize(outcomes[s.key][j], s) for j in JUDGES} for s in scen}
    checks = targets(results)
    if args.json:
        print(
            json.dumps(
                {"config": config, "results": results, "targets": checks, "elapsed_s": round(elapsed, 1)},
                indent=2,
                default=str,
            )
        )
    else:
        render(console, config, results, scen, checks)
        console.print(f"{elapsed:.0f} s on {args.workers} worker(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
