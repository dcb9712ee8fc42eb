"""Run promtool from tests: skipped without it, a failure under CI (which installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from alerts.config import AlertsConfig
from alerts.rules import alert_group, dump_yaml, meta_group, period_window, render_rules, sli_group
from slo.evaluator import Evaluation
from slo.model import SLO


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool not found on PATH (apt-get install prometheus)"
        if in_ci():
            pytest.fail(reason + "; CI must install it", pytrace=False)
        pytest.skip(reason)
    return path


def run(promtool: str, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def check_rules(promtool: str, rules: Path) -> None:
    proc = run(promtool, "check", "rules", rules)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules(promtool: str, files: list[Path]) -> None:
    """`promtool test rules` on each file, two at a time; all must pass."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        procs = list(pool.map(lambda f: run(promtool, "test", "rules", f), files))
    failures = [
        f"{f}:\n{p.stdout[-4000:]}{p.stderr[-2000:]}" for f, p in zip(files, procs, strict=True) if p.returncode
    ]
    assert not failures, "\n".join(failures)


test_rules.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def write_test(tmp: Path, name: str, rules_text: str, test: dict[str, Any]) -> Path:
    """Write rules and one promtool test file that uses them; returns the test file."""
    (tmp / f"{name}.rules.yaml").write_text(rules_text, encoding="utf-8")
    path = tmp / f"{name}.test.yaml"
    path.write_text(
        dump_yaml({"rule_files": [f"{name}.rules.yaml"], "evaluation_interval": "1m", **test}), encoding="utf-8"
    )
    return path


def run_agreement(
    promtool: str,
    tmp: Path,
    name: str,
    slos: list[SLO],
    config: AlertsConfig,
    input_series: list[dict[str, Any]],
    expr_tests: list[dict[str, Any]],
    alert_tests: list[dict[str, Any]],
) -> None:
    """One promtool test over the SLOs' rules, their groups evaluated in spec order: the
    evaluator's values (`expr_tests`) and alerts (`alert_tests`) must be what the rules give."""
    order = [g["name"] for s in slos for g in (sli_group(s), meta_group(s), alert_group(s, config))]
    test = {
        "group_eval_order": order,
        "tests": [
            {
                "name": name,
                "interval": "1m",
                "input_series": input_series,
                "promql_expr_test": expr_tests,
                "alert_rule_test": alert_tests,
            }
        ],
    }
    slug = name.replace(" ", "-")
    test_rules(promtool, [write_test(tmp, slug, render_rules(slos, config, operational=False).to_yaml(), test)])


EPS = 1e-9  # promtool compares with this tolerance, so evaluator floats match exactly enough


def value_test(expr: str, t: int, value: float | None) -> dict:
    """A promql_expr_test asserting `expr` equals `value` at minute `t` (no sample for None)."""
    if value is None:  # no traffic in the window: no sample at all (not NaN, not 0)
        return {"expr": expr, "eval_time": f"{t}m", "exp_samples": []}
    return {
        "expr": f"sum(abs({expr} - {value!r}) < bool {EPS})",
        "eval_time": f"{t}m",
        "exp_samples": [{"labels": "{}", "value": 1}],
    }


def evaluation_checks(slo: SLO, ev: Evaluation, t: int) -> list[dict]:
    """Expression tests for every recording rule of `slo`, from the evaluator's numbers."""
    f = f'{{sloth_id="{slo.id}"}}'
    tests = [value_test(f"slo:sli_error:ratio_rate{w}{f}", t, ev.windows[w].error_ratio) for w in ev.windows]
    tests += [
        value_test(f"slo:sli_error:ratio_rate{period_window(slo)}{f}", t, ev.error_ratio),
        value_test(f"slo:current_burn_rate:ratio{f}", t, ev.current_burn_rate),
        value_test(f"slo:period_burn_rate:ratio{f}", t, ev.period_burn_rate),
        value_test(f"slo:period_error_budget_remaining:ratio{f}", t, ev.budget_remaining),
    ]
    return tests
