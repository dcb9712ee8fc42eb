"""The metric contract between the gateway, the rules, and the dashboards.

Every metric the gateway exports is listed here once (name, type, labels, help), so that the
metric registry, the Prometheus rules and the Grafana dashboards agree on one spelling.
Histogram bucket defaults are the OpenTelemetry GenAI recommendations; the registry adds every
SLO latency threshold to them (see `slo.thresholds.histogram_buckets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["counter", "histogram", "gauge"]

SCOPE_LABELS: tuple[str, ...] = ("tenant", "model_alias", "model_version", "operation")


@dataclass(frozen=True)
class Metric:
    """One exported metric; `name` is the exposed name (counters keep their `_total`)."""

    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    unit: str = ""
    buckets: tuple[float, ...] = ()

    def series_names(self) -> tuple[str, ...]:
        """Names of the series Prometheus stores for this metric."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


REQUESTS_TOTAL = Metric(
    "inferwatch_requests_total",
    "counter",
    (*SCOPE_LABELS, "status_class", "error_type"),
    "Requests that ended, by outcome. status_class is 2xx/4xx/5xx; error_type is empty or a "
    "bounded name (timeout, upstream_error, rate_limited, client_disconnect, ...).",
)
REQUEST_DURATION = Metric(
    "gen_ai_server_request_duration_seconds",
    "histogram",
    SCOPE_LABELS,
    "End-to-end duration of successful requests, as the client saw it.",
    "s",
    (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92),
)
TIME_TO_FIRST_TOKEN = Metric(
    "gen_ai_server_time_to_first_token_seconds",
    "histogram",
    SCOPE_LABELS,
    "Time to first token of successful requests.",
    "s",
    (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
)
TIME_PER_OUTPUT_TOKEN = Metric(
    "gen_ai_server_time_per_output_token_seconds",
    "histogram",
    SCOPE_LABELS,
    "(duration - TTFT) / (output tokens - 1) of successful requests.",
    "s",
    (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5),
)
SAFETY_HITS_TOTAL = Metric(
    "inferwatch_safety_hits_total",
    "counter",
    ("direction", "category", "action"),
    "Safety scanner hits by direction (input/output), category and action (block/redact/flag).",
)
SAFETY_INCIDENTS_TOTAL = Metric(
    "inferwatch_safety_incidents_total",
    "counter",
    ("tenant", "model_alias", "model_version", "direction"),
    "Requests with a blocked or flagged text in the given direction.",
)
COST_USD_TOTAL = Metric(
    "inferwatch_cost_usd_total",
    "counter",
    ("tenant", "model_alias", "model_version"),
    "Cost of requests in US dollars.",
    "USD",
)
WORKER_UP = Metric(
    "inferwatch_worker_up",
    "gauge",
    ("upstream", "model_version"),
    "1 when the gateway's last health check of the worker succeeded, else 0.",
)
UPSTREAM_HEALTHY = Metric(
    "inferwatch_upstream_healthy",
    "gauge",
    ("model_alias", "model_version", "upstream"),
    "1 when the upstream is healthy and eligible for routing, else 0.",
)
GPU_MEMORY_USED = Metric(
    "inferwatch_worker_gpu_memory_used_bytes",
    "gauge",
    ("gpu",),
    "GPU memory in use on the worker.",
    "bytes",
)
GPU_MEMORY_TOTAL = Metric(
    "inferwatch_worker_gpu_memory_total_bytes",
    "gauge",
    ("gpu",),
    "GPU memory capacity on the worker.",
    "bytes",
)
MODEL_VERSION_MISMATCH = Metric(
    "inferwatch_model_version_mismatch",
    "gauge",
    ("model_alias", "upstream"),
    "1 when a worker serves another model version than the one configured for it.",
)

CATALOG: dict[str, Metric] = {
    m.name: m
    for m in (
        REQUESTS_TOTAL,
        REQUEST_DURATION,
        TIME_TO_FIRST_TOKEN,
        TIME_PER_OUTPUT_TOKEN,
        SAFETY_HITS_TOTAL,
        SAFETY_INCIDENTS_TOTAL,
        COST_USD_TOTAL,
        WORKER_UP,
        UPSTREAM_HEALTHY,
        GPU_MEMORY_USED,
        GPU_MEMORY_TOTAL,
        MODEL_VERSION_MISMATCH,
    )
}


# Metrics the dashboards chart beyond the SLO contract above: the gateway's operational
# series, the worker's (named after vLLM's), and the canary's. Kept apart from CATALOG so
# that the SLO contract stays exactly the set the rules and the evaluator depend on.
_W = "inferwatch_worker_"
TOKENS_TOTAL = Metric(
    "inferwatch_tokens_total",
    "counter",
    ("tenant", "model_alias", "model_version", "token_type"),
    "Tokens billed, by token_type (input/output).",
)
RATE_LIMITED_TOTAL = Metric(
    "inferwatch_rate_limited_total",
    "counter",
    ("tenant", "limit"),
    "Requests refused by a tenant limit (rpm, tpm, budget, ...).",
)
UPSTREAM_RETRIES_TOTAL = Metric(
    "inferwatch_upstream_retries_total",
    "counter",
    ("upstream",),
    "Requests retried on another replica before the first byte.",
)
CIRCUIT_BREAKER_STATE = Metric(
    "inferwatch_circuit_breaker_state",
    "gauge",
    ("upstream",),
    "Circuit breaker of an upstream: 0 closed, 1 half-open, 2 open.",
)
ALIAS_WEIGHT = Metric(
    "inferwatch_alias_weight",
    "gauge",
    ("model_alias", "model_version"),
    "Routing weight of a version behind an alias (a canary rollout moves it).",
)
LEDGER_QUEUE_DEPTH = Metric("inferwatch_ledger_queue_depth", "gauge", (), "Records waiting for the ledger writer.")
LEDGER_SPOOL_FILES = Metric("inferwatch_ledger_spool_files", "gauge", (), "Spooled batches waiting for the database.")
LEDGER_SPOOL_BYTES = Metric("inferwatch_ledger_spool_bytes", "gauge", (), "Bytes of spooled records.", "bytes")
LEDGER_DATABASE_UP = Metric(
    "inferwatch_ledger_database_up", "gauge", (), "1 when the ledger database accepted the last write."
)
LEDGER_DROPPED = Metric(
    "inferwatch_ledger_dropped_records", "gauge", (), "Records the ledger writer lost (spool write failed); stays 0."
)
LEDGER_SPOOL_WRITE_ERRORS = Metric(
    "inferwatch_ledger_spool_write_errors", "gauge", (), "Failed spool writes (full or unwritable disk); stays 0."
)
WORKER_RUNNING = Metric(
    _W + "num_requests_running", "gauge", ("model_version",), "Sequences in the worker's running batch."
)
WORKER_WAITING = Metric(_W + "num_requests_waiting", "gauge", ("model_version",), "Requests waiting for a batch slot.")
WORKER_KV_USAGE = Metric(_W + "kv_cache_usage_perc", "gauge", ("model_version",), "Fraction of KV-cache slots in use.")
WORKER_BATCH_SIZE = Metric(_W + "batch_size", "histogram", ("model_version",), "Sequences per decode step.")
WORKER_E2E = Metric(
    _W + "e2e_request_latency_seconds", "histogram", ("model_version",), "Arrival to last token at the worker.", "s"
)
WORKER_TTFT = Metric(
    _W + "time_to_first_token_seconds", "histogram", ("model_version",), "Arrival to first token at the worker.", "s"
)
WORKER_QUEUE_TIME = Metric(
    _W + "request_queue_time_seconds", "histogram", ("model_version",), "Time a request waited for a batch slot.", "s"
)
WORKER_MODEL_LOAD = Metric(_W + "model_load_seconds", "gauge", ("model_version",), "Model load plus warm-up time.", "s")
WORKER_MODEL_INFO = Metric(
    _W + "model_info", "gauge", ("model_version", "alias", "digest", "device"), "Served model (value 1)."
)
GC_PAUSE = Metric(
    "inferwatch_gc_pause_seconds",
    "histogram",
    ("generation",),
    "Passes of Python's cyclic garbage collector in the gateway process, by generation (0-2); the event "
    "loop stands still for each.",
    "s",
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CANARY_SCORE = Metric(
    "inferwatch_canary_score", "gauge", ("model_alias", "canary_version"), "Latest canary judge score, 0-100."
)
CANARY_VERDICT = Metric(
    "inferwatch_canary_verdict",
    "gauge",
    ("model_alias", "canary_version", "verdict"),
    "1 for the canary's current verdict (pass, marginal, fail, inconclusive).",
)

OPERATIONAL_CATALOG: dict[str, Metric] = {
    m.name: m
    for m in (
        TOKENS_TOTAL,
        RATE_LIMITED_TOTAL,
        UPSTREAM_RETRIES_TOTAL,
        CIRCUIT_BREAKER_STATE,
        ALIAS_WEIGHT,
        LEDGER_QUEUE_DEPTH,
        LEDGER_SPOOL_FILES,
        LEDGER_SPOOL_BYTES,
        LEDGER_DATABASE_UP,
        LEDGER_DROPPED,
        LEDGER_SPOOL_WRITE_ERRORS,
        WORKER_RUNNING,
        WORKER_WAITING,
        WORKER_KV_USAGE,
        WORKER_BATCH_SIZE,
        WORKER_E2E,
        WORKER_TTFT,
        WORKER_QUEUE_TIME,
        WORKER_MODEL_LOAD,
        WORKER_MODEL_INFO,
        GC_PAUSE,
        CANARY_SCORE,
        CANARY_VERDICT,
    )
}


def catalog_series_names() -> frozenset[str]:
    """Every series name Prometheus may store for catalog metrics."""
    return frozenset(s for m in CATALOG.values() for s in m.series_names())


def metric_for_series(series: str) -> Metric | None:
    """The catalog metric a stored series name belongs to (`x_bucket` -> histogram `x`)."""
    if series in CATALOG:
        return CATALOG[series]
    for suffix in ("_bucket", "_count", "_sum"):
        base = series.removesuffix(suffix)
        if base != series and base in CATALOG and CATALOG[base].type == "histogram":
            return CATALOG[base]
    return None
