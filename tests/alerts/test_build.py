from __future__ import annotations

import math
import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from alerts.build import build, check
from alerts.cli import app
from alerts.promtool_tests import crossing_minutes, page_within
from slo.spec import load_default_slos
from tests.alerts._promtool import check_rules, test_rules


def test_build_writes_every_artifact(tmp_path: Path) -> None:
    slos = load_default_slos()
    result = build(slos, tmp_path)
    assert result.rules == tmp_path / "rules.yaml" and result.alertmanager == tmp_path / "alertmanager.yaml"
    assert sorted(p.name for p in result.tests) == sorted([f"{s.id}.yaml" for s in slos] + ["operational.yaml"])
    assert all(p.exists() for p in result.files())
    names = {p.name for p in result.runbooks}
    rules = yaml.safe_load(result.rules.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert {f"{r['alert']}.md" for r in alerts} == names  # one runbook per alert, none extra
    for r in alerts:  # every runbook_url points at an existing anchor
        file, anchor = r["annotations"]["runbook_url"].removeprefix("runbooks/").split("#")
        assert f'<a id="{anchor}"></a>' in (tmp_path / "runbooks" / file).read_text(), r["annotations"]["runbook_url"]
    # a rebuild with fewer SLOs drops the tests of removed SLOs
    again = build(slos[:1], tmp_path)
    assert sorted(p.name for p in (tmp_path / "tests").glob("*.yaml")) == sorted(p.name for p in again.tests)


def test_generated_promtool_tests_pass(promtool: str, tmp_path: Path) -> None:
    result = build(load_default_slos(), tmp_path)
    check_rules(promtool, result.rules)
    test_rules(promtool, result.tests)
    text = (tmp_path / "tests" / "inferwatch-availability.yaml").read_text()
    # the scenarios the files are meant to hold
    assert re.search(r"outage from 60m pages within \d+m", text)
    assert "opens a ticket within" in text and "never pages" in text
    assert "healthy traffic fires nothing" in text and "SLOMetricAbsent fires at" in text
    assert "traffic stops: series stay, fires nothing" in text


def test_outage_detection_bound_follows_the_burn_table() -> None:
    avail = next(s for s in load_default_slos() if s.name == "availability")
    # 28 d, 99.5 %: a full outage after clean traffic crosses 13.44 x 0.005 = 0.0672 on the 1h
    # window after 60 x 0.0672 = 4.03 minutes
    assert 4.03 < crossing_minutes(60, 5, 60, 0.0, 1.0, 13.44 * 0.005) <= 4.04
    assert 4.0 < page_within(avail, 0.0005, 1.0, math.inf) < 4.1  # full windows: the 1h/5m row
    assert page_within(avail, 0.0005, 1.0, 60) < 2  # 1h of history: the 6h window is short and fills fast


def test_check_reports_a_failing_promtool_test(promtool: str, tmp_path: Path) -> None:
    slos = [s for s in load_default_slos() if s.name == "availability"]
    result = build(slos, tmp_path)  # the unmodified build passes: see test_cli_build_with_check
    broken = (
        result.tests[0]
        .read_text()
        .replace(
            "alertname: SLOErrorBudgetBurnPage\n    exp_alerts: []",
            "alertname: SLOErrorBudgetBurnPage\n    exp_alerts: [{}]",
            1,
        )
    )
    assert broken != result.tests[0].read_text()
    result.tests[0].write_text(broken)
    res = check(result, promtool)
    assert not res.ok and "FAILED" in res.output


def test_cli_build_with_check(promtool: str, tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "service: chat\nslos:\n  - name: ttft\n    objective: 95\n    sli: {latency: {metric: ttft, threshold: 2}}\n"
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["build", "--specs", str(spec), "--out", str(out), "--check"])
    assert res.exit_code == 0, res.output
    assert "SUCCESS" in res.output and (out / "tests" / "chat-ttft.yaml").exists()


def test_cli_reports_spec_errors_with_file_and_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("slos:\n  - name: a\n    objective: 99\n    sli: {latency: {metric: ttft}}\n")
    res = CliRunner().invoke(app, ["build", "--specs", str(spec), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert f"{spec}:4:" in res.output and "threshold" in res.output
    assert not (tmp_path / "out").exists()


def test_cli_check_fails_without_promtool(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATH", str(tmp_path))  # no promtool here
    res = CliRunner().invoke(app, ["build", "--out", str(tmp_path / "out"), "--check"])
    assert res.exit_code == 1 and "promtool not found" in res.output


def test_cli_mounts_as_a_sub_app(tmp_path: Path) -> None:
    import typer

    root = typer.Typer()
    root.add_typer(app, name="alerts")

    @root.command()
    def serve() -> None:  # a second command, as the real root has
        pass

    res = CliRunner().invoke(root, ["alerts", "build", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "rules.yaml").exists() and "for 6 SLOs" in res.output


def test_operational_tests_follow_the_config(promtool: str, tmp_path: Path) -> None:
    from alerts.config import AlertsConfig, OperationalConfig

    cfg = AlertsConfig(
        runbook_base_url="https://runbooks.example/inferwatch/",
        operational=OperationalConfig(
            worker_down_for="3m",
            gpu_memory_ratio=0.8,
            daily_cost_budget_usd=40.0,
            tenant_daily_cost_budget_usd={"acme": 5.0},
            safety_spike_ratio=0.1,
        ),
    )
    slos = [s for s in load_default_slos() if s.name == "availability"]
    result = build(slos, tmp_path, cfg)
    rules = result.rules.read_text()
    assert "inferwatch_worker_gpu_memory_total_bytes > 0)\n      > 0.8" in rules and 'tenant="acme"' in rules
    assert "https://runbooks.example/inferwatch/InferwatchWorkerDown.md#triage" in rules
    ops_test = next(p for p in result.tests if p.name == "operational.yaml")
    test_rules(promtool, [ops_test])


def test_cli_takes_several_spec_files_after_one_specs_or_one_specs_each(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("service: one\nslos:\n  - name: x\n    objective: 99\n    sli: {availability: {}}\n")
    b.write_text("service: two\nslos:\n  - name: y\n    objective: 99\n    sli: {availability: {}}\n")
    for args in (["--specs", str(a), str(b)], ["--specs", str(a), "--specs", str(b)]):
        out = tmp_path / str(len(args))
        res = CliRunner().invoke(app, ["build", *args, "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert "for 2 SLOs" in res.output
        assert sorted(p.name for p in (out / "tests").glob("*.yaml")) == [
            "one-x.yaml",
            "operational.yaml",
            "two-y.yaml",
        ]
