"""Scoring arithmetic, verdict rules, the fixed judge and the sequential analysis API."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from canary.classifier import MetricResult, Outcome, Summary
from canary.config import DEFAULT_LLM, Direction, Kind, MetricConfig, Profile, get_profile
from canary.judge import JudgeResult, Mode, Rule, SequentialAnalysis, Verdict, judge, score, verdict
from canary.simulate import Regression, TrafficModel, TrafficSimulator, requests

PROFILE = Profile(
    name="t",
    metrics=tuple(
        MetricConfig(name=n, group=g, critical=(n == "err"))
        for n, g in [
            ("l1", "latency"),
            ("l2", "latency"),
            ("l3", "latency"),
            ("l4", "latency"),
            ("err", "errors"),
            ("safety", "safety"),
            ("cost", "cost"),
        ]
    ),
    group_weights={"latency": 40, "errors": 30, "safety": 15, "cost": 15},
)


def _rows(outcomes: dict[str, Outcome], no_data: tuple[str, ...] = ()) -> list[MetricResult]:
    rows = []
    for cfg in PROFILE.metrics:
        n = 0 if cfg.name in no_data else 100
        rows.append(
            MetricResult(
                name=cfg.name,
                label=cfg.name,
                kind=cfg.kind,
                direction=cfg.direction,
                critical=cfg.critical,
                group=cfg.group,
                outcome=outcomes.get(cfg.name, Outcome.PASS),
                effect=None,
                lower=None,
                upper=None,
                interval=None,
                test="",
                p_value=None,
                e_value=None,
                reason="",
                baseline=Summary(n, None, None, None),
                canary=Summary(n, None, None, None),
                decided=True,
                critical_failure=cfg.critical and outcomes.get(cfg.name, Outcome.PASS) in (Outcome.HIGH, Outcome.LOW),
            )
        )
    return rows


def test_score_is_kayentas_weighted_group_ratio() -> None:
    rows = _rows({"l2": Outcome.HIGH, "cost": Outcome.HIGH})
    # latency 3/4, errors 1, safety 1, cost 0: (40*75 + 30*100 + 15*100 + 15*0) / 100
    assert score(rows, PROFILE) == pytest.approx(75.0)
    assert verdict(rows, PROFILE, final=True).verdict is Verdict.MARGINAL


def test_inconclusive_metrics_leave_the_score_and_their_group_weight() -> None:
    rows = _rows({"safety": Outcome.INCONCLUSIVE, "l1": Outcome.HIGH})
    # safety drops out with its weight: (40*75 + 30*100 + 15*100) / 85
    assert score(rows, PROFILE) == round(7500 / 85, 2)  # Kayenta rounds to two decimals
    assert score(rows, PROFILE, undecided_as=Outcome.PASS) == pytest.approx(90.0)
    assert score(rows, PROFILE, undecided_as=Outcome.HIGH) == pytest.approx(75.0)


def test_final_grade_uses_kayentas_score_without_inconclusive_metrics() -> None:
    rows = _rows({"l1": Outcome.HIGH, "l2": Outcome.HIGH, "safety": Outcome.INCONCLUSIVE, "cost": Outcome.INCONCLUSIVE})
    # (40*50 + 30*100) / 70 = 71.4 < 75: fail, although counting the two as passing gives 80
    d = verdict(rows, PROFILE, final=True)
    assert (d.verdict, d.decided) == (Verdict.FAIL, True) and d.score == pytest.approx(5000 / 70, abs=0.005)
    assert "never decided" in d.reason and "safety" in d.reason and "cost" in d.reason
    d = verdict(rows, PROFILE, final=False)
    assert (d.verdict, d.decided) == (Verdict.MARGINAL, True) and d.score == pytest.approx(80.0)


def test_critical_failure_forces_zero() -> None:
    d = verdict(_rows({"err": Outcome.HIGH}), PROFILE, final=True)
    assert (d.verdict, d.score, d.decided, d.rule) == (Verdict.FAIL, 0.0, True, "critical_failure")
    assert "critical" in d.reason and "err High" in d.reason


def test_half_the_metrics_without_data_forces_zero() -> None:
    rows = _rows({n: Outcome.INCONCLUSIVE for n in ("l1", "l2", "l3", "l4")}, no_data=("l1", "l2", "l3", "l4"))
    d = verdict(rows, PROFILE, final=True)
    assert (d.verdict, d.score, d.rule) == (Verdict.FAIL, 0.0, "too_little_data")
    # while live, missing data is only pending
    assert verdict(rows, PROFILE, final=False).verdict is Verdict.INCONCLUSIVE


def test_critical_inconclusive_is_inconclusive_unless_the_rest_already_fails() -> None:
    d = verdict(_rows({"err": Outcome.INCONCLUSIVE}), PROFILE, final=True)
    assert d.verdict is Verdict.INCONCLUSIVE and d.decided
    rows = _rows({"err": Outcome.INCONCLUSIVE, "cost": Outcome.HIGH, "safety": Outcome.HIGH, "l1": Outcome.HIGH})
    assert verdict(rows, PROFILE, final=True).verdict is Verdict.FAIL  # cannot reach 75 either way


def test_live_decisions() -> None:
    pending = {n: Outcome.INCONCLUSIVE for n in ("l1", "safety")}
    d = verdict(_rows(pending), PROFILE, final=False)
    assert (d.verdict, d.decided) == (Verdict.INCONCLUSIVE, False) and d.score == pytest.approx(100.0)
    # one failure already rules out a pass: decided marginal
    d = verdict(_rows({**pending, "cost": Outcome.HIGH}), PROFILE, final=False)
    assert (d.verdict, d.decided) == (Verdict.MARGINAL, True)
    # pending metrics that could not pull the score under 95 do not hold up a pass
    lenient = dataclasses.replace(PROFILE, pass_threshold=80.0, marginal_threshold=50.0)
    d = verdict(_rows({"safety": Outcome.INCONCLUSIVE}), lenient, final=False)
    assert (d.verdict, d.decided) == (Verdict.PASS, True)


def _window(seconds: float, regression: Regression, seed: int) -> tuple[dict, dict]:
    sim = TrafficSimulator(TrafficModel(), regression, seed=seed)
    return sim.advance(seconds)


def test_fixed_judge_end_to_end() -> None:
    base, can = _window(3600, Regression(latency=1.3), seed=1)
    res = judge(base, can, "default-llm")
    assert res.verdict in (Verdict.FAIL, Verdict.MARGINAL) and res.mode == "fixed" and res.decided
    assert res.metric("ttft_s").outcome is Outcome.HIGH
    assert res.metric("output_tokens_per_s").outcome is Outcome.LOW
    assert res.metric("cost_usd").outcome is Outcome.PASS
    assert res.metric_alpha == pytest.approx(0.05 / 7)
    payload = json.loads(json.dumps(res.to_dict()))
    assert payload["verdict"] == res.verdict.value and len(payload["metrics"]) == 7
    assert {"n", "mean", "p50", "p95"} <= set(payload["metrics"][0]["baseline"])


def test_fixed_judge_passes_a_long_identical_window() -> None:
    base, can = _window(4 * 3600, Regression(), seed=2)
    res = judge(base, can, "default-llm")
    assert res.verdict is Verdict.PASS, res.reason
    assert res.score == 100.0


def test_sequential_analysis_decides_once_and_stays_decided() -> None:
    sim = TrafficSimulator(TrafficModel(), Regression(latency=1.5), seed=3)
    analysis = SequentialAnalysis("default-llm")
    res = None
    for _ in range(120):
        res = analysis.update(*sim.advance(30))
        if res.decided:
            break
    assert res is not None and res.decided and analysis.decided
    assert res.verdict in (Verdict.FAIL, Verdict.MARGINAL)
    assert res.mode == "sequential" and res.looks == analysis.looks
    failed = [m for m in res.metrics if m.failed]
    assert failed and all("CS" in m.reason for m in failed)
    assert res.metric("latency_s").canary.p95 is not None  # summaries kept by default
    later = analysis.update(*sim.advance(30))
    assert later is res  # the first decision is final
    json.dumps(res.to_dict())


def test_sequential_analysis_finish_marks_undecided_inconclusive() -> None:
    analysis = SequentialAnalysis("default-llm")
    base, can = _window(120, Regression(), seed=4)
    first = analysis.update(base, can)
    assert first.verdict is Verdict.INCONCLUSIVE and not first.decided
    end = analysis.finish()
    assert end.decided and end.verdict is Verdict.INCONCLUSIVE
    assert "error rate" in end.reason  # the critical metric that could not be decided


def test_profiles_round_trip_and_lookup() -> None:
    assert get_profile("default-llm") is DEFAULT_LLM
    assert get_profile(DEFAULT_LLM.to_dict()) == DEFAULT_LLM
    with pytest.raises(KeyError, match="unknown canary profile"):
        get_profile("nope")
    with pytest.raises(ValueError):
        Profile(name="x", metrics=(MetricConfig(name="a"), MetricConfig(name="a")))
    assert [m.name for m in DEFAULT_LLM.metrics if m.critical] == ["error"]


def test_simulator_truth() -> None:
    rng = np.random.default_rng(0)
    base = requests(200_000, TrafficModel(), Regression(), rng)
    slow = requests(200_000, TrafficModel(), Regression(latency=1.25, error_rate=2.0), rng)
    for name in ("latency_s", "ttft_s", "tpot_s"):
        ratio = np.nanmedian(slow[name]) / np.nanmedian(base[name])
        assert ratio == pytest.approx(1.25, rel=0.02)
    assert np.mean(base["error"]) == pytest.approx(0.01, rel=0.05)
    assert np.mean(slow["error"]) == pytest.approx(0.02, rel=0.05)
    assert np.isnan(base["latency_s"][base["error"] == 1]).all()


def test_sequential_state_round_trip_continues_the_same_test() -> None:
    """A restored analysis gives exactly the results the uninterrupted one gives."""
    sim = TrafficSimulator(TrafficModel(), Regression(latency=1.08, error_rate=1.5), seed=5)
    live = SequentialAnalysis("default-llm")
    for _ in range(8):
        live.update(*sim.advance(30))
    state = json.loads(json.dumps(live.state_dict()))
    restored = SequentialAnalysis.from_state(state)
    assert restored.looks == live.looks
    for _ in range(12):
        batch = sim.advance(30)
        assert restored.update(*batch).to_dict() == live.update(*batch).to_dict()


def test_result_dict_round_trip_and_exit_codes() -> None:
    base, can = _window(1800, Regression(latency=1.4), seed=6)
    res = judge(base, can, "default-llm")
    payload = json.loads(json.dumps(res.to_dict()))
    again = JudgeResult.from_dict(payload)
    assert again == res
    assert res.rule is Rule.SCORE_BELOW_PASS and payload["extra"] == {"rule": "score_below_pass"}
    assert (again.mode, again.metric("ttft_s").kind, again.metric("error").kind) == (
        Mode.FIXED,
        Kind.CONTINUOUS,
        Kind.PROPORTION,
    )
    assert payload["metrics"][0]["kind"] == "continuous" and again.metric("ttft_s").direction is Direction.INCREASE
    assert res.exit_code == 1
    assert dataclasses.replace(res, verdict=Verdict.PASS).exit_code == 0
    assert dataclasses.replace(res, verdict=Verdict.INCONCLUSIVE).exit_code == 2
