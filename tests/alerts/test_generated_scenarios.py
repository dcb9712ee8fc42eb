"""`alerts build` writes promtool scenarios for SLOs beyond the defaults, and they pass: own kinds
that select, exclude, group and count 4xx error types (issue 21 point 3 for our own kinds)."""

from __future__ import annotations

from pathlib import Path

from alerts.build import build
from slo.spec import parse_specs
from tests.alerts._promtool import check_rules, test_rules

OWN = parse_specs(
    """\
service: own
defaults: {window: 28d}
slos:
  - name: chat-429
    objective: 99.9
    sli: {availability: {bad_error_types: [rate_limited, budget_exceeded]}}
    selector: {tenant: acme, operation: chat}
    alerting: {no_traffic_after: 30m}
  - name: by-tenant
    objective: 99.5
    sli: {availability: {}}
    selector: {exclude: {tenant: [demo, internal]}, group_by: [tenant, operation]}
  - name: ttft-by-version
    objective: 95
    window: 7d
    sli: {latency: {metric: ttft, threshold: 0.5}}
    selector: {group_by: [model_version]}
    alerting: {no_traffic_after: 20m}
""",
    "own.yaml",
)


def test_generated_tests_of_own_kinds_pass(promtool: str, tmp_path: Path) -> None:
    result = build(OWN, tmp_path)
    assert sorted(p.name for p in result.tests) == sorted([f"{s.id}.yaml" for s in OWN] + ["operational.yaml"])
    assert not any("left out" in w for w in result.warnings), result.warnings
    check_rules(promtool, result.rules)
    test_rules(promtool, result.tests)
    grouped = (tmp_path / "tests" / "own-by-tenant.yaml").read_text()
    assert "tenant: demo-2" in grouped and "tenant: demo\n" not in grouped  # the synthetic tenant is not excluded
    assert 'error_type="budget_exceeded"' in (tmp_path / "tests" / "own-chat-429.yaml").read_text()


QUERIES = parse_specs(
    """\
version: prometheus/v1
service: shop
slos:
  - name: checkout-sloth
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="checkout",code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="checkout"}[{{.window}}]))
    alerting:
      name: CheckoutErrors
      page_alert: {labels: {severity: critical}}
      ticket_alert: {labels: {severity: warning}}
  - name: search-raw
    objective: 99
    sli:
      raw:
        error_ratio_query: |
          sum(rate(search_errors_total{cluster="eu"}[{{.window}}]))
          /
          sum(rate(search_requests_total{cluster="eu"}[{{.window}}]))
  - name: opaque
    objective: 99
    sli:
      raw:
        error_ratio_query: 1 - avg_over_time(probe_success{job="x"}[{{.window}}])
""",
    "shop.yaml",
) + parse_specs(
    """\
service: api
slos:
  - name: by-handler
    objective: 99.5
    window: 7d
    sli:
      events:
        error_query: 'http_requests_total{job="api", code=~"5..|429"}'
        total_query: 'http_requests_total{job="api"}'
        group_by: [handler]
    alerting: {no_traffic_after: 30m}
""",
    "api.yaml",
)


def test_query_slos_get_generated_tests_that_pass(promtool: str, tmp_path: Path) -> None:
    result = build([*OWN[:1], *QUERIES], tmp_path)
    names = sorted(p.name for p in result.tests)
    assert names == sorted(
        ["own-chat-429.yaml", "shop-checkout-sloth.yaml", "shop-search-raw.yaml", "api-by-handler.yaml"]
        + ["operational.yaml"]
    )
    assert [w for w in result.warnings if "no generated promtool tests" in w] == [
        "shop-opaque: no generated promtool tests: its raw queries are not sums of counter rates "
        "(sum(rate(x[{{.window}}])), a raw ratio of two, or counter selectors); test them with your own series"
    ]
    assert not any("left out" in w for w in result.warnings), result.warnings
    check_rules(promtool, result.rules)
    test_rules(promtool, result.tests)
    checkout = (tmp_path / "tests" / "shop-checkout-sloth.yaml").read_text()
    assert 'http_requests_total{code="500", job="checkout"}' in checkout  # errors the query counts
    assert 'http_requests_total{code="synthetic", job="checkout"}' in checkout  # events it does not
    assert "alertname: CheckoutErrors" in checkout and "severity: critical" in checkout
    grouped = (tmp_path / "tests" / "api-by-handler.yaml").read_text()
    assert "handler: g1" in grouped and "SLONoTraffic" in grouped


def test_a_generated_query_test_fails_when_the_rules_count_otherwise(promtool: str, tmp_path: Path) -> None:
    """The expectations come from the evaluator on the same series: rules that ignore the 429s
    of the error query disagree with them."""
    from tests.alerts._promtool import run

    result = build(QUERIES[:1], tmp_path)
    rules = result.rules.read_text().replace('code=~\\"(5..|429)\\"', 'code=~\\"(4..)\\"')
    rules = rules.replace('code=~"(5..|429)"', 'code=~"(4..)"')
    assert rules != result.rules.read_text()
    result.rules.write_text(rules)
    proc = run(promtool, "test", "rules", tmp_path / "tests" / "shop-checkout-sloth.yaml")
    assert proc.returncode != 0
