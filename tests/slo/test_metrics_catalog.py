from __future__ import annotations

from slo.metrics_catalog import CATALOG, catalog_series_names, metric_for_series

CONTRACT = {
    "inferwatch_requests_total": (
        "counter",
        {"tenant", "model_alias", "model_version", "operation", "status_class", "error_type"},
    ),
    "gen_ai_server_request_duration_seconds": ("histogram", {"tenant", "model_alias", "model_version", "operation"}),
    "gen_ai_server_time_to_first_token_seconds": ("histogram", {"tenant", "model_alias", "model_version", "operation"}),
    "gen_ai_server_time_per_output_token_seconds": (
        "histogram",
        {"tenant", "model_alias", "model_version", "operation"},
    ),
    "inferwatch_safety_hits_total": ("counter", {"direction", "category", "action"}),
    "inferwatch_safety_incidents_total": ("counter", {"tenant", "model_alias", "model_version", "direction"}),
    "inferwatch_cost_usd_total": ("counter", {"tenant", "model_alias", "model_version"}),
    "inferwatch_worker_up": ("gauge", {"upstream", "model_version"}),
    "inferwatch_upstream_healthy": ("gauge", {"model_alias", "model_version", "upstream"}),
    "inferwatch_worker_gpu_memory_used_bytes": ("gauge", {"gpu"}),
    "inferwatch_worker_gpu_memory_total_bytes": ("gauge", {"gpu"}),
    "inferwatch_model_version_mismatch": ("gauge", {"model_alias", "upstream"}),
}


def test_catalog_is_the_metric_contract() -> None:
    assert {n: (m.type, set(m.labels)) for n, m in CATALOG.items()} == CONTRACT
    assert all(m.help for m in CATALOG.values())
    assert all(m.buckets == tuple(sorted(m.buckets)) and m.buckets for m in CATALOG.values() if m.type == "histogram")


def test_series_names_include_histogram_parts() -> None:
    names = catalog_series_names()
    assert "gen_ai_server_time_to_first_token_seconds_bucket" in names and "inferwatch_cost_usd_total" in names
    assert (
        metric_for_series("gen_ai_server_request_duration_seconds_count")
        is CATALOG["gen_ai_server_request_duration_seconds"]
    )
    assert metric_for_series("inferwatch_requests_total_bucket") is None and metric_for_series("nope") is None
