"""Issue 21 points 3 and 4: the specs users already have (Sloth prometheus/v1 and its
PrometheusServiceLevel, OpenSLO v1alpha as Sloth writes it, OpenSLO lists, metricSourceRef),
SLIs on any metric, and a compatibility set: Sloth-format specs written for these tests
render the rule names and factors Sloth documents."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from alerts.config import AlertsConfig
from alerts.rules import alert_group, burn_alert, render_rules
from slo.model import EventsSLI, RawSLI
from slo.source import unsupported_reason
from slo.spec import SpecError, load_specs, parse_specs
from tests.alerts._promtool import check_rules, require_promtool, test_rules, write_test

HERE = Path(__file__).parent / "sloth_compat"
SLOTH = load_specs([HERE / "checkout.prometheus-v1.yaml"])
K8S = load_specs([HERE / "checkout.k8s.yaml"])

# Sloth's documented rule names, windows and factors (30 d, its default period)
SLOTH_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
SLOTH_META = [
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "sloth_slo_info",
]
SLOTH_ROWS = [
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
]


def test_sloth_files_render_sloths_names_and_factors() -> None:
    avail, raw = SLOTH
    assert (avail.id, avail.window.days, avail.objective, avail.labels_dict) == (
        "checkout-requests-availability",
        30,
        0.999,
        {"owner": "payments", "category": "availability"},
    )
    assert isinstance(avail.sli, EventsSLI) and isinstance(raw.sli, RawSLI)
    groups = {g["name"]: g["rules"] for g in render_rules(SLOTH, operational=False).groups}
    assert list(groups) == [
        f"sloth-slo-{k}-checkout-{n}"
        for n in ("requests-availability", "latency-raw")
        for k in ("sli-recordings", "meta-recordings", "alerts")
    ]
    sli = groups["sloth-slo-sli-recordings-checkout-requests-availability"]
    assert [r["record"] for r in sli] == [f"slo:sli_error:ratio_rate{w}" for w in SLOTH_WINDOWS]
    assert 'code=~"(5..|429)"}[1h]' in sli[2]["expr"] and "{{" not in sli[2]["expr"]
    assert [r["record"] for r in groups["sloth-slo-meta-recordings-checkout-requests-availability"]] == SLOTH_META
    assert [(r.severity, r.long_window, r.short_window, r.factor) for r in avail.alert_table()] == SLOTH_ROWS
    alerts = groups["sloth-slo-alerts-checkout-requests-availability"]
    assert [(a["alert"], a["labels"]["sloth_severity"], a["labels"]["severity"]) for a in alerts[:2]] == [
        ("CheckoutHighErrorRate", "page", "critical"),
        ("CheckoutHighErrorRate", "ticket", "warning"),
    ]
    assert "(14.4 * 0.001)" in alerts[0]["expr"] and "(1 * 0.001)" in alerts[1]["expr"]
    assert alerts[0]["labels"]["routing_key"] == "payments" and alerts[1]["labels"]["slack_channel"] == "#payments"
    assert alerts[0]["annotations"]["runbook"] == "https://wiki.example/checkout-errors"
    # ticket_alert: {disable: true}
    assert [a["alert"] for a in groups["sloth-slo-alerts-checkout-latency-raw"]] == ["CheckoutSlow", "SLOMetricAbsent"]
    info = groups["sloth-slo-meta-recordings-checkout-requests-availability"][-1]["labels"]
    assert info["sloth_spec"] == "prometheus/v1"


def test_the_kubernetes_resource_reads_as_the_cli_file() -> None:
    assert [(s.id, s.sli, s.objective, s.alerting, s.labels) for s in K8S] == [
        (s.id, s.sli, s.objective, s.alerting, s.labels) for s in SLOTH
    ]
    assert K8S[0].source.format == "sloth.slok.dev/v1"  # type: ignore[union-attr]


def test_openslo_v1alpha_as_sloth_writes_it() -> None:
    (slo,) = load_specs([HERE / "checkout.openslo-v1alpha.yaml"])
    assert (slo.id, slo.objective, slo.window.days) == ("checkout-requests-availability", 0.999, 30)
    assert isinstance(slo.sli, EventsSLI)
    ratio = slo.sli.error_ratio("5m")
    # errors = total - good
    total, good = (
        'sum(rate(http_requests_total{job="checkout"}[5m]))',
        'sum(rate(http_requests_total{job="checkout",code!~"5.."}[5m]))',
    )
    assert f"(({total}) - ({good}))" in ratio


OPENSLO_LIST = """\
- apiVersion: openslo/v1
  kind: DataSource
  metadata: {name: prom}
  spec: {type: Prometheus, connectionDetails: {url: "http://prometheus:9090"}}
- apiVersion: openslo/v1
  kind: SLO
  metadata: {name: orders}
  spec:
    service: shop
    budgetingMethod: Occurrences
    timeWindow: [{duration: 28d, isRolling: true}]
    indicator:
      spec:
        ratioMetric:
          counter: true
          bad: {metricSource: {metricSourceRef: prom, spec: {query: 'orders_total{outcome="failed"}'}}}
          total: {metricSource: {metricSourceRef: prom, spec: {query: orders_total}}}
    objectives: [{target: 0.99}]
"""


def test_openslo_lists_and_metric_source_refs() -> None:
    (slo,) = parse_specs(OPENSLO_LIST, "list.yaml")
    assert slo.sli == EventsSLI('orders_total{outcome="failed"}', "orders_total")
    assert "sum(rate(orders_total[1h]))" in slo.sli.error_ratio("1h")
    several = OPENSLO_LIST.replace("- apiVersion", "---\napiVersion").replace("\n  ", "\n")
    assert parse_specs(several, "docs.yaml") == [slo]
    with pytest.raises(SpecError, match="metricSourceRef 'nope'"):
        parse_specs(
            OPENSLO_LIST.replace(
                "metricSourceRef: prom, spec: {query: orders_total}",
                "metricSourceRef: nope, spec: {query: orders_total}",
            ),
            "list.yaml",
        )
    with pytest.raises(SpecError, match=r"spec.budgetingMethod 'Timeslices' is not supported") as e:
        parse_specs(OPENSLO_LIST.replace("Occurrences", "Timeslices"), "list.yaml")
    assert e.value.line == 10  # the line of spec.budgetingMethod


def test_data_sources_are_per_parse_so_files_parse_concurrently(monkeypatch: pytest.MonkeyPatch) -> None:
    """File A pauses after its DataSources are known and before its queries resolve them; file B,
    whose `prom` is of another type, parses meanwhile. A's SLO still resolves A's own `prom`."""
    from slo import openslo

    other = OPENSLO_LIST.replace("type: Prometheus", "type: Datadog")
    inside, resume = threading.Event(), threading.Event()
    window = openslo._window

    def pausing(tw: Any) -> Any:
        if threading.current_thread().name == "a":
            inside.set()
            assert resume.wait(60)
        return window(tw)

    monkeypatch.setattr(openslo, "_window", pausing)
    got: dict[str, Any] = {}

    def parse_a() -> None:
        try:
            got["a"] = parse_specs(OPENSLO_LIST, "a.yaml")
        except SpecError as e:
            got["a"] = e

    a = threading.Thread(target=parse_a, name="a")
    a.start()
    assert inside.wait(60)
    with pytest.raises(SpecError, match="metricSource type 'Datadog' is not supported"):
        parse_specs(other, "b.yaml")
    resume.set()
    a.join(60)
    assert [s.sli for s in got["a"]] == [EventsSLI('orders_total{outcome="failed"}', "orders_total")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\nspec: {}\n", "a Pyrra ServiceLevelObjective"),
        ("groups:\n  - name: x\n    rules: []\n", "a Prometheus rule file"),
        ("version: prometheus/v2\nslos: []\n", "version 'prometheus/v2'"),
        ("apiVersion: openslo/v2\nkind: SLO\n", "OpenSLO openslo/v2"),
    ],
)
def test_a_format_we_do_not_read_says_what_it_looks_like(text: str, says: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_specs(text, "x.yaml")
    assert says in str(e.value) and "should be inferwatch/v1" not in str(e.value)


def test_sloth_plugins_are_refused_by_name() -> None:
    text = (
        (HERE / "checkout.prometheus-v1.yaml")
        .read_text()
        .replace(
            "      events:\n        error_query",
            "      plugin: {id: sloth-common/availability}\n      xevents:\n        error_query",
            1,
        )
    )
    with pytest.raises(SpecError, match=r"slos.0.sli.plugin: Sloth SLI plugins are not supported"):
        parse_specs(text, "p.yaml")


def test_query_slis_are_not_read_from_the_ledger() -> None:
    assert "query Prometheus" in (unsupported_reason(SLOTH[0]) or "")


def _counter(labels: str, per_minute: list[tuple[int, int]]) -> dict[str, str]:
    """A promtool counter series: (minutes, increase per minute) runs."""
    values, total = ["1000000"], 1_000_000
    for minutes, step in per_minute:
        values.append(f"{total + step}+{step}x{minutes - 1}")
        total += step * minutes
    return {"series": f"http_requests_total{{{labels}}}", "values": " ".join(values)}


def test_429s_page_and_groups_alert_apart_in_promtool(tmp_path: Path) -> None:
    promtool = require_promtool()
    grouped = parse_specs(
        """\
service: api
slos:
  - name: handlers
    objective: 99.9
    window: 30d
    sli: {events: {error_query: 'http_requests_total{job="api",code=~"5..|429"}',
                   total_query: 'http_requests_total{job="api"}', group_by: [handler]}}
""",
        "g.yaml",
    )
    slos = [SLOTH[0], *grouped]
    rules = render_rules(slos, operational=False).to_yaml()
    (tmp_path / "r.yaml").write_text(rules)
    check_rules(promtool, tmp_path / "r.yaml")
    cfg = AlertsConfig()
    series = [
        # checkout: healthy 200s, then from minute 60 one request in two is a 429
        _counter('job="checkout", code="200"', [(60, 100), (30, 50)]),
        _counter('job="checkout", code="429"', [(60, 0), (30, 50)]),
        # api: /a fails with 503 from minute 60, /b stays healthy
        _counter('job="api", handler="/a", code="200"', [(60, 100), (30, 0)]),
        _counter('job="api", handler="/a", code="503"', [(60, 0), (30, 100)]),
        _counter('job="api", handler="/b", code="200"', [(90, 100)]),
    ]
    page = burn_alert(SLOTH[0], "page", cfg)
    api_page = burn_alert(grouped[0], "page", cfg)
    test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "59m", "alertname": "CheckoutHighErrorRate", "exp_alerts": []},
                    {"eval_time": "59m", "alertname": "SLOErrorBudgetBurnPage", "exp_alerts": []},
                    {
                        "eval_time": "70m",
                        "alertname": "SLOErrorBudgetBurnPage",
                        "exp_alerts": [
                            {
                                "exp_labels": {**api_page["labels"], "handler": "/a"},
                                "exp_annotations": api_page["annotations"],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    # the page of checkout fires (the ticket too, by then): both carry the one Sloth name
    ticket = burn_alert(SLOTH[0], "ticket", cfg)
    test["tests"][0]["alert_rule_test"].append(
        {
            "eval_time": "70m",
            "alertname": "CheckoutHighErrorRate",
            "exp_alerts": [
                {"exp_labels": page["labels"], "exp_annotations": page["annotations"]},
                {"exp_labels": ticket["labels"], "exp_annotations": ticket["annotations"]},
            ],
        }
    )
    assert [r["alert"] for r in alert_group(grouped[0], cfg)["rules"]][:2] == [
        "SLOErrorBudgetBurnPage",
        "SLOErrorBudgetBurnTicket",
    ]
    test_rules(promtool, [write_test(tmp_path, "sloth", rules, test)])


def test_services_that_do_not_select_their_own_traffic_are_warned_of(tmp_path: Path) -> None:
    from alerts.build import build
    from slo.spec import shared_traffic

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("service: billing\nslos:\n  - {name: avail, objective: 99, sli: {availability: {}}}\n")
    b.write_text("service: search\nslos:\n  - {name: avail, objective: 99.5, sli: {availability: {}}}\n")
    (note,) = shared_traffic(load_specs([a, b]))
    assert "search-avail selects the same traffic as billing-avail" in note and note.startswith(f"{b}:3:")
    assert note in build([a, b], tmp_path / "out").warnings
    b.write_text(
        "service: search\nslos:\n  - {name: avail, objective: 99.5, sli: {availability: {}},"
        " selector: {model_alias: search}}\n"
    )
    assert shared_traffic(load_specs([a, b])) == []
