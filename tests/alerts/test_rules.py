from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from alerts.config import AlertsConfig, OperationalConfig
from alerts.rules import render_rules
from alerts.synthetic import Traffic, add_sli_traffic
from slo.metrics_catalog import OPERATIONAL_CATALOG, catalog_series_names
from slo.spec import load_default_slos, parse_specs
from tests.alerts._promtool import check_rules, test_rules, write_test

EXTRA = parse_specs(
    """\
service: chat
slos:
  - name: avail-acme
    objective: 90
    window: calendar-month
    sli: {availability: {}}
    selector: {model_alias: mistral-7b-instruct, model_version: ["mistral-7b-instruct@v3", "v4.1"], tenant: acme}
    labels: {team: platform}
  - name: ttft-7d
    objective: 99
    window: 7d
    sli: {latency: {metric: ttft, threshold: 2}}
""",
    "extra.yaml",
)

SLI_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
META = [
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "sloth_slo_info",
]


def rules_of(slos, **kw) -> list[dict]:  # type: ignore[no-untyped-def]
    return render_rules(slos, AlertsConfig(**kw)).groups


def test_rendered_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    cfg = AlertsConfig(operational=OperationalConfig(tenant_daily_cost_budget_usd={"acme": 25.0}))
    path = tmp_path / "rules.yaml"
    path.write_text(render_rules([*load_default_slos(), *EXTRA], cfg).to_yaml())
    check_rules(promtool, path)


def test_sloth_rule_names_and_labels() -> None:
    groups = {g["name"]: g["rules"] for g in rules_of(load_default_slos())}
    for slo in load_default_slos():
        sli = groups[f"sloth-slo-sli-recordings-{slo.id}"]
        assert [r["record"] for r in sli] == [f"slo:sli_error:ratio_rate{w}" for w in [*SLI_WINDOWS, "4w"]]
        assert [r["labels"]["sloth_window"] for r in sli] == [*SLI_WINDOWS, "4w"]
        assert all(
            r["labels"]["sloth_id"] == slo.id
            and r["labels"]["sloth_slo"] == slo.name
            and r["labels"]["sloth_service"] == "inferwatch"
            for r in sli
        )
        meta = groups[f"sloth-slo-meta-recordings-{slo.id}"]
        assert [r["record"] for r in meta] == META
        assert meta[1]["expr"] == f"vector({slo.error_budget:g})" and meta[2]["expr"] == "vector(28)"
        alerts = groups[f"sloth-slo-alerts-{slo.id}"]
        names = [r["alert"] for r in alerts]
        assert names == (["SLOErrorBudgetBurnPage"] if slo.alerting.page else []) + [
            "SLOErrorBudgetBurnTicket",
            "SLOMetricAbsent",
        ]
        for r in alerts:
            assert set(r["annotations"]) >= {"summary", "description", "slo", "runbook_url"}
            assert r["annotations"]["runbook_url"] == f"runbooks/{r['alert']}.md#{slo.id}"
            if r["alert"] != "SLOMetricAbsent":
                assert r["labels"]["severity"] == r["labels"]["sloth_severity"] in ("page", "ticket")


def test_every_sli_ratio_is_guarded_against_zero_traffic() -> None:
    for g in rules_of([*load_default_slos(), *EXTRA]):
        for r in g["rules"]:
            if r.get("record", "").startswith("slo:sli_error"):
                assert re.search(r"\n/\n\(.*> 0\)", r["expr"], re.S), r["expr"]


def test_burn_factors_and_windows_follow_the_period() -> None:
    groups = {g["name"]: g["rules"] for g in rules_of([*load_default_slos(), *EXTRA])}
    page = groups["sloth-slo-alerts-inferwatch-availability"][0]["expr"]
    assert "(13.44 * 0.005)" in page and "(5.6 * 0.005)" in page
    ticket = groups["sloth-slo-alerts-inferwatch-availability"][1]["expr"]
    assert "(2.8 * 0.005)" in ticket and "(0.9333333333333333 * 0.005)" in ticket  # full precision
    # 90 % objective: 14.4 x 0.1 is capped to an error ratio of 0.9; calendar month renders as 30d
    capped = groups["sloth-slo-alerts-chat-avail-acme"][0]["expr"]
    assert "(9 * 0.1)" in capped and "(6 * 0.1)" in capped
    assert groups["sloth-slo-sli-recordings-chat-avail-acme"][-1]["record"] == "slo:sli_error:ratio_rate30d"
    assert groups["sloth-slo-sli-recordings-chat-ttft-7d"][-1]["record"] == "slo:sli_error:ratio_rate1w"
    # 7 d: the 30-day windows scaled by 7/30 (short windows at least 5m), the 30-day factors
    page7 = groups["sloth-slo-alerts-chat-ttft-7d"][0]["expr"]
    assert "ratio_rate14m" in page7 and "(14.4 * 0.01)" in page7 and "(6 * 0.01)" in page7
    ticket7 = groups["sloth-slo-alerts-chat-ttft-7d"][1]["expr"]
    assert "ratio_rate16h48m" in ticket7 and "ratio_rate5h36m" in ticket7 and "(1 * 0.01)" in ticket7


def test_selectors_become_matchers_and_pinned_labels() -> None:
    groups = {g["name"]: g["rules"] for g in rules_of(EXTRA)}
    rule = groups["sloth-slo-sli-recordings-chat-avail-acme"][0]
    assert 'model_version=~"mistral-7b-instruct@v3|v4\\\\.1"' in rule["expr"]
    assert 'model_alias="mistral-7b-instruct"' in rule["expr"] and 'tenant="acme"' in rule["expr"]
    # single-valued selectors and extra labels label the rules (Alertmanager groups by alias and version)
    assert rule["labels"]["model_alias"] == "mistral-7b-instruct" and rule["labels"]["tenant"] == "acme"
    assert "model_version" not in rule["labels"] and rule["labels"]["team"] == "platform"
    ttft = groups["sloth-slo-sli-recordings-chat-ttft-7d"][0]["expr"]
    assert 'le=~"2|2[.]0"' in ttft


_PROMQL_WORDS = {
    "sum",
    "rate",
    "increase",
    "vector",
    "max",
    "abs",
    "absent_over_time",
    "absent",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "or",
    "and",
    "bool",
}


def _referenced_metrics(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r'"[^"]*"', "", expr)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {n for n in names if n not in _PROMQL_WORDS and not re.fullmatch(r"e\d*", n)}


def test_rules_only_reference_catalog_metrics_or_recorded_rules() -> None:
    cfg = AlertsConfig(operational=OperationalConfig(tenant_daily_cost_budget_usd={"acme": 25.0}))
    groups = render_rules([*load_default_slos(), *EXTRA], cfg).groups
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    known = catalog_series_names() | recorded | {s for m in OPERATIONAL_CATALOG.values() for s in m.series_names()}
    seen: set[str] = set()
    for g in groups:
        for r in g["rules"]:
            refs = _referenced_metrics(r["expr"])
            assert refs <= known, (r.get("record") or r.get("alert"), refs - known)
            seen |= refs
    # the check would catch a typo: every kind of SLI and alert put its metrics in `seen`
    assert {
        "inferwatch_requests_total",
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "inferwatch_safety_incidents_total",
        "inferwatch_cost_usd_total",
        "inferwatch_worker_up",
        "inferwatch_upstream_healthy",
        "inferwatch_model_version_mismatch",
        "inferwatch_worker_gpu_memory_used_bytes",
    } <= seen
    assert _referenced_metrics('sum(rate(inferwatch_requets_total{a="b"}[5m]))') == {"inferwatch_requets_total"}


RECORDED = [f"slo:sli_error:ratio_rate{w}" for w in [*SLI_WINDOWS, "4w"]] + META[:-1]


def _flat_then_gap_traffic(slo) -> Traffic:  # type: ignore[no-untyped-def]
    # 30 min of traffic at 1 % errors, then 30 min without any request (counters stay flat).
    tr = Traffic(60)
    add_sli_traffic(tr, slo, np.where(np.arange(60) < 30, 100, 0), 0.01)
    return tr


def test_zero_traffic_gives_no_sample_not_nan(promtool: str, tmp_path: Path) -> None:
    slos = load_default_slos()
    by_name = {s.name: s for s in slos}
    rules_text = render_rules(slos).to_yaml()
    files = []
    for name in ("availability", "latency-ttft", "safety-output", "cost"):
        slo = by_name[name]
        f = f'{{sloth_id="{slo.id}"}}'
        exprs = []
        for t in (40, 59):  # the 5m window is empty; the 1h window still holds the first 30 minutes
            exprs += [
                {"expr": f"slo:sli_error:ratio_rate5m{f}", "eval_time": f"{t}m", "exp_samples": []},
                {"expr": f"slo:current_burn_rate:ratio{f}", "eval_time": f"{t}m", "exp_samples": []},
                {
                    "expr": f"count(slo:sli_error:ratio_rate1h{f})",
                    "eval_time": f"{t}m",
                    "exp_samples": [{"labels": "{}", "value": 1}],
                },
            ]
        # no NaN (NaN != NaN) at any time in any recorded SLO series
        for t in (1, 10, 35, 45, 59):
            for metric in RECORDED:
                exprs.append({"expr": f"{metric} != {metric}", "eval_time": f"{t}m", "exp_samples": []})
        test = {
            "tests": [
                {
                    "interval": "1m",
                    "input_series": _flat_then_gap_traffic(slo).input_series(),
                    "promql_expr_test": exprs,
                }
            ]
        }
        files.append(write_test(tmp_path, name, rules_text, test))
    test_rules(promtool, files)


def test_latency_sli_accepts_go_and_python_le_spellings(promtool: str, tmp_path: Path) -> None:
    slo = next(s for s in load_default_slos() if s.name == "latency-ttft")
    rules_text = render_rules([slo], operational=False).to_yaml()
    files = []
    for spelling in ("2", "2.0"):
        tr = Traffic(30)
        add_sli_traffic(tr, slo, np.full(30, 100), 0.25, le_spelling=spelling)
        assert any(s.labels.get("le") == spelling for s in tr.series)
        test = {
            "tests": [
                {
                    "interval": "1m",
                    "input_series": tr.input_series(),
                    "promql_expr_test": [
                        {
                            "expr": f'abs(slo:sli_error:ratio_rate30m{{sloth_id="{slo.id}"}} - 0.25) < bool 1e-9',
                            "eval_time": "30m",
                            "exp_samples": [
                                {
                                    "labels": '{sloth_id="inferwatch-latency-ttft", sloth_service="inferwatch", '
                                    'sloth_slo="latency-ttft", sloth_window="30m"}',
                                    "value": 1,
                                }
                            ],
                        }
                    ],
                }
            ]
        }
        files.append(write_test(tmp_path, f"le-{spelling}", rules_text, test))
    test_rules(promtool, files)


def test_rule_file_yaml_round_trips() -> None:
    text = render_rules(load_default_slos()).to_yaml()
    data = yaml.safe_load(text)
    assert [g["name"] for g in data["groups"]][-1] == "inferwatch-operational"
    assert "&id" not in text and "*id" not in text  # no YAML aliases
