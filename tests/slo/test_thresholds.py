from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ledger.buckets import METRICS as LEDGER_METRICS
from slo.metrics_catalog import CATALOG, TIME_TO_FIRST_TOKEN
from slo.model import LatencyMetric
from slo.spec import load_default_slos, parse_specs
from slo.thresholds import (
    format_le,
    histogram_buckets,
    latency_thresholds,
    le_matcher,
    le_spellings,
    thresholds_by_ledger_metric,
    thresholds_by_prom_metric,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (1.0, "1"),
        (2.5, "2.5"),
        (0.25, "0.25"),
        (10, "10"),
        (0.1, "0.1"),
        (20.48, "20.48"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456, "123456"),
        (1e6, "1e+06"),
        (float("inf"), "+Inf"),
    ],
)
def test_format_le_matches_prometheus_go_spelling(value: float, text: str) -> None:
    assert format_le(value) == text


def test_spellings_cover_go_python_client_and_prometheus_3() -> None:
    assert le_spellings(2) == ("2", "2.0")
    assert le_spellings(2.5) == ("2.5",)
    assert le_matcher(2.5) == 'le="2.5"'
    assert le_matcher(10) == 'le=~"10|10[.]0"'


def test_matcher_selects_the_bucket_the_python_client_exports() -> None:
    slos = load_default_slos()
    buckets = histogram_buckets(LatencyMetric.TTFT, slos)
    reg = CollectorRegistry()
    h = Histogram("ttft_seconds", "t", buckets=buckets, registry=reg)
    h.observe(1.5)
    exported = re.findall(r'ttft_seconds_bucket\{le="([^"]+)"\} (\S+)', generate_latest(reg).decode())
    for slo in slos:
        if slo.sli.__class__.__name__ == "LatencySLI" and slo.sli.metric is LatencyMetric.TTFT:
            pattern = re.search(r'le=~?"([^"]+)"', le_matcher(slo.sli.threshold_s)).group(1)
            hits = [(le, n) for le, n in exported if re.fullmatch(pattern, le)]
            assert hits == [("2.0", "1.0")]  # exactly one bucket, holding the 1.5 s observation


def test_thresholds_become_buckets_for_registry_and_ledger() -> None:
    slos = load_default_slos()
    assert latency_thresholds(slos) == {
        LatencyMetric.E2E: (10.0,),
        LatencyMetric.TTFT: (2.0,),
        LatencyMetric.TPOT: (0.25,),
    }
    by_prom = thresholds_by_prom_metric(slos)
    assert set(by_prom) <= set(CATALOG) and by_prom[TIME_TO_FIRST_TOKEN.name] == (2.0,)
    assert set(thresholds_by_ledger_metric(slos)) == set(LEDGER_METRICS)
    ttft = histogram_buckets("ttft", slos)
    assert 2.0 in ttft and set(TIME_TO_FIRST_TOKEN.buckets) <= set(ttft) and list(ttft) == sorted(ttft)
    assert histogram_buckets(TIME_TO_FIRST_TOKEN.name, slos) == ttft
    assert 10.0 in histogram_buckets("e2e", slos) and 0.25 in histogram_buckets("tpot", slos)


def test_two_slos_on_one_metric_add_both_thresholds() -> None:
    slos = parse_specs(
        "slos:\n"
        "  - {name: a, objective: 95, sli: {latency: {metric: ttft, threshold: 0.3}}}\n"
        "  - {name: b, objective: 99, sli: {latency: {metric: ttft, threshold: 3}}}\n"
    )
    assert latency_thresholds(slos)[LatencyMetric.TTFT] == (0.3, 3.0)
    assert latency_thresholds(slos)[LatencyMetric.E2E] == ()
