"""Generated dashboards: Grafana JSON structure, provisioning, --check, and SLO-driven panels."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from dashboards.build import build
from dashboards.check import EXTERNAL_METRICS, check, check_metrics, check_promql, defined_metrics, metric_names
from dashboards.cli import app
from dashboards.config import DashboardsConfig
from dashboards.definitions import DEBUG_UID, EXECUTIVE_UID, ONCALL_UID, all_dashboards
from dashboards.grafana import SCHEMA_VERSION
from dashboards.model import Dashboard, Panel, Query, Row
from slo.spec import DEFAULTS_FILE, load_default_slos, load_specs
from tests.dashboards._schema import schema_problems

NEW_SLO = """
service: checkout
slos:
  - name: fast-first-token
    description: Checkout's requests get a first token within 1 s.
    objective: 97.5
    sli: {latency: {metric: ttft, threshold: 1}}
    selector: {tenant: acme}
"""


def _by_key(dashboards: list[Dashboard]) -> dict[str, dict[str, Panel]]:
    return {d.uid: {p.key: p for p in d.panels()} for d in dashboards}


def test_json_is_valid_for_its_schema_version_and_provisioned(tmp_path: Path) -> None:
    result = build(load_default_slos(), tmp_path, DashboardsConfig(prometheus_url="http://prom:9090"))
    want = sorted(f"{u}.json" for u in (EXECUTIVE_UID, ONCALL_UID, DEBUG_UID))
    assert sorted(p.name for p in result.dashboard_files) == want
    for path in result.dashboard_files:
        data = json.loads(path.read_text())
        assert schema_problems(data, SCHEMA_VERSION) == [], path.name
        assert data["schemaVersion"] == SCHEMA_VERSION
        assert {v["name"] for v in data["templating"]["list"]} >= {"datasource", "alias", "version", "tenant"}
    ds = yaml.safe_load(result.datasource_file.read_text())["datasources"][0]
    assert (ds["type"], ds["url"], ds["uid"]) == ("prometheus", "http://prom:9090", DashboardsConfig().datasource_uid)
    provider = yaml.safe_load(result.provider_file.read_text())["providers"][0]
    assert Path(provider["options"]["path"]) == (tmp_path / "dashboards").resolve()
    assert provider["allowUiUpdates"] is False  # generated, never hand-edited


def test_schema_checks_catch_broken_json(tmp_path: Path) -> None:
    data = json.loads(build(load_default_slos(), tmp_path).dashboard_files[0].read_text())
    data["panels"][1]["gridPos"] = dict(data["panels"][2]["gridPos"])  # overlap
    data["panels"][3]["id"] = data["panels"][4]["id"]
    data["panels"][5]["targets"][0]["expr"] += ' + on() up{job=~"$nope"}'
    problems = "\n".join(schema_problems(data, SCHEMA_VERSION))
    assert "overlaps" in problems and "ids are not unique" in problems and "$nope" in problems


def test_a_new_slo_gets_its_panels_without_code_changes(tmp_path: Path) -> None:
    spec = tmp_path / "checkout.yaml"
    spec.write_text(NEW_SLO)
    before = _by_key(all_dashboards(load_default_slos()))
    slos = load_specs([DEFAULTS_FILE, spec])
    after = _by_key(all_dashboards(slos))
    added = {uid: set(after[uid]) - set(before[uid]) for uid in after}
    assert added == {
        EXECUTIVE_UID: {"checkout_fast_first_token_compliance", "checkout_fast_first_token_budget"},
        ONCALL_UID: {"checkout_fast_first_token_burn"},
        DEBUG_UID: set(),
    }
    compliance = after[EXECUTIVE_UID]["checkout_fast_first_token_compliance"]
    assert [s.value for s in compliance.steps] == [None, 0.975]  # colours switch at the objective
    assert 'sloth_id="checkout-fast-first-token"' in compliance.queries[0].expr
    burn = after[ONCALL_UID]["checkout_fast_first_token_burn"]
    assert [s.value for s in burn.steps] == [None, 0.9333333333333333, 5.6]  # 28d: lowest ticket and page factors
    assert [s.value for s in after[ONCALL_UID]["latency_ttft"].steps] == [None, 1.0]  # the tighter TTFT threshold
    report = check(all_dashboards(slos), slos)  # its recording rules exist, so its panels pass --check
    assert report.ok, [str(p) for p in report.problems]


def test_check_accepts_the_generated_dashboards(promtool: str) -> None:
    slos = load_default_slos()
    report = check(all_dashboards(slos), slos, promtool)
    assert report.ok, [str(p) for p in report.problems]
    assert "SUCCESS" in report.promtool_output
    assert report.warnings == []


def test_check_names_the_panels_with_undefined_metrics_or_bad_promql(promtool: str) -> None:
    bad = Dashboard(
        "bad",
        "Bad",
        "broken on purpose",
        (
            Row(
                "r",
                (
                    Panel(
                        "typo",
                        "Typo panel",
                        "d",
                        "timeseries",
                        (Query("rate(inferwatch_request_total[$__rate_interval])"),),
                    ),
                    Panel(
                        "parse",
                        "Unclosed panel",
                        "d",
                        "timeseries",
                        (Query("sum(rate(inferwatch_requests_total[5m])"),),
                    ),
                    Panel("types", "Wrong type panel", "d", "timeseries", (Query("rate(inferwatch_requests_total)"),)),
                    Panel("gpu", "GPU panel", "d", "timeseries", (Query("DCGM_FI_DEV_GPU_UTIL"),)),
                ),
            ),
        ),
    )
    metrics = check_metrics([bad], defined_metrics(load_default_slos()))
    assert [(p.panel, p.message) for p in metrics.problems if "no code defines" in p.message] == [
        ("Typo panel", "queries inferwatch_request_total, which no code defines")
    ]
    assert any(p.panel == "Unclosed panel" for p in metrics.problems)  # does not parse
    promql = check_promql([bad], promtool)
    assert {p.panel for p in promql.problems} == {"Unclosed panel", "Wrong type panel"}
    assert any("expected type range vector" in p.message for p in promql.problems)


def test_defined_metrics_come_from_the_real_registries_and_rules() -> None:
    names = defined_metrics(load_default_slos())
    assert {
        "inferwatch_requests_total",
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "inferwatch_worker_num_requests_waiting",
        "inferwatch_worker_batch_size_count",
        "slo_burn_rate",
        "slo:sli_error:ratio_rate5m",
        "slo:period_error_budget_remaining:ratio",
    } <= names
    assert not names & EXTERNAL_METRICS and {"inferwatch_canary_score", "inferwatch_canary_verdict"} <= names
    expr = 'a_total{x=~"$alias"} / on() group_left {__name__="b"} + rate(c[$__rate_interval])'
    assert metric_names(expr) == {"a_total", "b", "c"}


def test_cli_build_check_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["build", "--out", str(tmp_path), "--check", "--json", "--prometheus-url", "http://p:9090"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["check"]["ok"] is True and out["slos"] == 6
    assert set(out["dashboards"]) == {EXECUTIVE_UID, ONCALL_UID, DEBUG_UID}
    assert all(Path(f).exists() for f in out["files"])


def test_cli_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos: [{name: x, sli: {availability: {}}}]\n")  # no objective
    res = CliRunner().invoke(app, ["build", "--out", str(tmp_path / "o"), "--slo-spec", str(bad)])
    assert res.exit_code == 2 and "objective" in res.output
    res = CliRunner().invoke(
        app, ["preview", "--prometheus", "http://127.0.0.1:9", "--out", str(tmp_path), "--range", "1y"]
    )
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["preview", "--prometheus", "http://127.0.0.1:9", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "cannot reach Prometheus" in res.output


def test_cache_budget_and_redis_panels() -> None:
    panels = _by_key(all_dashboards(load_default_slos(), DashboardsConfig(budget_soft_ratio=0.9)))
    executive, debug = panels[EXECUTIVE_UID], panels[DEBUG_UID]
    budget = executive["budget_used"]
    assert [(s.color, s.value) for s in budget.steps] == [("green", None), ("orange", 0.9), ("red", 1.0)]
    assert metric_names(budget.queries[0].expr) == {"inferwatch_budget_used_ratio"}
    hit_rate = executive["cache_hit_rate"].queries[0].expr
    assert metric_names(hit_rate) == {"inferwatch_cache_requests_total", "inferwatch_requests_total"}
    assert 'result="hit"' in hit_rate and hit_rate.count('tenant=~"$tenant"') == 2  # the same tenants on both sides
    assert 'limit="budget"' in debug["budget_refusals"].queries[0].expr
    assert metric_names(debug["cache_lookups"].queries[0].expr) == {"inferwatch_cache_requests_total"}
    assert metric_names(debug["redis_up"].queries[0].expr) == {"inferwatch_redis_up"}
    # --check knows them from the gateway's registry
    gateway_only = {"inferwatch_cache_requests_total", "inferwatch_budget_used_ratio", "inferwatch_redis_up"}
    assert gateway_only <= defined_metrics(load_default_slos())
