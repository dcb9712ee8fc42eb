"""Prometheus metrics of the gateway: views of each RequestRecord, plus operational gauges.

Names follow the OpenTelemetry GenAI conventions with underscores, our own under
`inferwatch_`. Labels are bounded sets only (never request ids, users or keys).
Histogram buckets are passed in so that every SLO threshold is a bucket boundary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ledger.buckets import DEFAULT_BUCKETS
from ledger.record import RequestRecord

from .gc_pauses import GCPauses

SCOPE = ["tenant", "model_alias", "model_version", "operation"]
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


class GatewayMetrics:
    def __init__(
        self,
        buckets: Mapping[str, Sequence[float]] | None = None,
        registry: CollectorRegistry | None = None,
        *,
        zero_error_types: Iterable[str] = (),
    ) -> None:
        """`zero_error_types`: 4xx error types an SLO counts as errors; their series start at 0
        with every scope, as the 2xx and 5xx ones do."""
        self._zero_4xx = tuple(dict.fromkeys(zero_error_types))
        b = {**DEFAULT_BUCKETS, **(buckets or {})}
        r = self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "inferwatch_requests", "Requests that ended, by outcome", SCOPE + ["status_class", "error_type"], registry=r
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "End-to-end duration of successful requests",
            SCOPE,
            buckets=b["latency"],
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to first token of streaming requests that sent one, also those that broke later",
            SCOPE,
            buckets=b["ttft"],
            registry=r,
        )
        self.tpot = Histogram(
            "gen_ai_server_time_per_output_token_seconds",
            "(duration - TTFT) / (output tokens - 1)",
            SCOPE,
            buckets=b["tpot"],
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request",
            SCOPE + ["gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "inferwatch_tokens", "Tokens billed", ["tenant", "model_alias", "model_version", "token_type"], registry=r
        )
        self.cost = Counter(
            "inferwatch_cost_usd",
            "Cost of requests in US dollars",
            ["tenant", "model_alias", "model_version"],
            registry=r,
        )
        self.safety_hits = Counter(
            "inferwatch_safety_hits", "Safety scanner hits", ["direction", "category", "action"], registry=r
        )
        self.guard_calls = Histogram(
            "inferwatch_safety_guard_duration_seconds",
            "Guard model calls by outcome (ok, error, timeout, unparsed)",
            ["format", "outcome"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.safety_skipped = Counter(
            "inferwatch_safety_scans_skipped",
            "Requests recorded without the classifier's flag-only scans of a text, by why "
            "(overload: its queue was full; scan_failed: its process died; shutdown)",
            ["reason"],
            registry=r,
        )
        self.safety_incidents = Counter(
            "inferwatch_safety_incidents",
            "Requests with a blocked or flagged text",
            ["tenant", "model_alias", "model_version", "direction"],
            registry=r,
        )
        self.disconnects = Counter(
            "inferwatch_client_disconnects", "Requests the client abandoned", ["tenant", "model_alias"], registry=r
        )
        self.retries = Counter(
            "inferwatch_upstream_retries",
            "Requests retried on another replica before the first byte",
            ["upstream"],
            registry=r,
        )
        self.fallbacks = Counter(
            "inferwatch_fallbacks",
            "Requests that left a version for the next of its chain",
            ["model_alias", "model_version", "fallback_version", "reason"],
            registry=r,
        )
        self.shed = Counter(
            "inferwatch_requests_shed",
            "Requests refused for capacity (tenant cap, slots, worker)",
            ["tenant", "priority", "reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "inferwatch_rate_limited", "Requests refused by a tenant limit", ["tenant", "limit"], registry=r
        )
        self.gc_pauses = GCPauses().register(r)  # counts once started (the app: while it serves)
        self.inflight = Gauge("inferwatch_inflight_requests", "Requests in progress at the gateway", registry=r)
        self.worker_up = Gauge(
            "inferwatch_worker_up",
            "1 when the last health check of the worker succeeded",
            ["upstream", "model_version"],
            registry=r,
        )
        self.upstream_healthy = Gauge(
            "inferwatch_upstream_healthy",
            "1 when the upstream is healthy and eligible for routing",
            ["model_alias", "model_version", "upstream"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "inferwatch_circuit_breaker_state", "0 closed, 1 half-open, 2 open", ["upstream"], registry=r
        )
        self.version_mismatch = Gauge(
            "inferwatch_model_version_mismatch",
            "1 when a worker serves another version than configured",
            ["model_alias", "upstream"],
            registry=r,
        )
        self.alias_weight = Gauge(
            "inferwatch_alias_weight",
            "Routing weight of a version behind an alias",
            ["model_alias", "model_version"],
            registry=r,
        )
        self.ledger_queue = Gauge("inferwatch_ledger_queue_depth", "Records waiting for the ledger writer", registry=r)
        self.ledger_spool_files = Gauge(
            "inferwatch_ledger_spool_files", "Spooled batches waiting for the database", registry=r
        )
        self.ledger_spool_bytes = Gauge("inferwatch_ledger_spool_bytes", "Bytes of spooled records", registry=r)
        self.ledger_dropped = Gauge(
            "inferwatch_ledger_dropped_records", "Records lost (spool write failed); should stay 0", registry=r
        )
        self.ledger_spool_write_errors = Gauge(
            "inferwatch_ledger_spool_write_errors", "Failed spool writes (full or unwritable disk); stays 0", registry=r
        )
        self.ledger_db_up = Gauge(
            "inferwatch_ledger_database_up", "1 when the ledger database accepted the last write", registry=r
        )
        self.cache_requests = Counter(
            "inferwatch_cache_requests",
            "Cacheable requests by cache result (hit or miss)",
            ["tenant", "result"],
            registry=r,
        )
        self.budget_used_ratio = Gauge(
            "inferwatch_budget_used_ratio",
            "Share of a tenant budget used in its current period",
            ["tenant", "budget"],
            registry=r,
        )
        self.redis_up = Gauge(
            "inferwatch_redis_up",
            "1 when the shared Redis answered the last call (limits, budgets, cache); NaN when none is configured",
            registry=r,
        )
        self.redis_up.set(float("nan"))
        self._scopes: set[tuple[str, ...]] = set()
        self._cache_tenants: set[str] = set()

    def forget_replica(self, url: str, version: str, aliases: Iterable[str]) -> None:
        """Drop the series of a replica that discovery removed, so a scaled-in pod does not
        read as a worker that is down (or, worse, as one still up)."""
        series = [
            (self.worker_up, (url, version)),
            (self.breaker_state, (url,)),
            *((self.upstream_healthy, (alias, version, url)) for alias in aliases),
            *((self.version_mismatch, (alias, url)) for alias in aliases),
        ]
        for gauge, labels in series:
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)

    def cache_lookup(self, tenant: str, *, hit: bool) -> None:
        if tenant not in self._cache_tenants:  # both series from 0, or the first hit is invisible to increase()
            self._cache_tenants.add(tenant)
            self.cache_requests.labels(tenant, "hit")
            self.cache_requests.labels(tenant, "miss")
        self.cache_requests.labels(tenant, "hit" if hit else "miss").inc()

    def _first_seen(self, scope: tuple[str, str, str, str]) -> None:
        # Prometheus cannot see the first increment of a series it never saw at 0, so the
        # series SLO rules divide by start at 0 as soon as their scope exists.
        self._scopes.add(scope)
        self.requests.labels(*scope, "2xx", "")
        self.requests.labels(*scope, "5xx", "")
        for error_type in self._zero_4xx:
            self.requests.labels(*scope, "4xx", error_type)
        for direction in ("input", "output"):
            self.safety_incidents.labels(*scope[:3], direction)

    def observe(self, rec: RequestRecord, sampled: bool = False) -> None:
        """The record as metrics; latency observations of a sampled trace carry its id as an
        exemplar (exposed to scrapers that ask for OpenMetrics), so a dashboard links to it."""
        scope = (rec.tenant, rec.alias, rec.model_version or "", rec.operation)
        if scope not in self._scopes:
            self._first_seen(scope)
        self.requests.labels(*scope, rec.status_class, rec.error_type or "").inc()
        exemplar = {"trace_id": rec.trace_id} if sampled and rec.trace_id else None
        if rec.status_code < 400:
            self.duration.labels(*scope).observe(rec.latency_s, exemplar)
        # A first token the client saw counts whatever came after it: a stream that broke later
        # (the record then says `partial`) was as slow to start and to decode as it was.
        if rec.ttft_s is not None:
            self.ttft.labels(*scope).observe(rec.ttft_s, exemplar)
        if rec.tpot_s is not None:
            self.tpot.labels(*scope).observe(rec.tpot_s, exemplar)
        if rec.prompt_tokens or rec.completion_tokens:
            self.token_usage.labels(*scope, "input").observe(rec.prompt_tokens)
            if rec.operation != "embeddings":
                self.token_usage.labels(*scope, "output").observe(rec.completion_tokens)
            self.tokens.labels(*scope[:3], "input").inc(rec.prompt_tokens)
            self.tokens.labels(*scope[:3], "output").inc(rec.completion_tokens)
        if rec.cost_usd:
            self.cost.labels(*scope[:3]).inc(rec.cost_usd)
        for hit in rec.safety:
            self.safety_hits.labels(hit.direction, hit.category, hit.action).inc()
        if rec.safety_unscanned:
            self.safety_skipped.labels(rec.safety_unscanned).inc()
        for direction in {h.direction for h in rec.safety if h.action in ("block", "flag")}:
            self.safety_incidents.labels(*scope[:3], direction).inc()
        if rec.client_disconnected:
            self.disconnects.labels(rec.tenant, rec.alias).inc()
