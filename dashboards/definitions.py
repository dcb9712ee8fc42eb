"""The executive, on-call and debug dashboards, from the SLO models and the metric catalog."""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.config import DashboardsConfig
from dashboards.model import GREEN, ORANGE, RED, YELLOW, Dashboard, Panel, Query, Row, Step
from dashboards.promql import VARIABLES, matchers, quantile, scoped, sum_increase, sum_rate
from dashboards.slo_panels import budget_panel, burn_rate_panel, compliance_panel, latency_thresholds
from slo.metrics_catalog import (
    ALIAS_WEIGHT,
    CANARY_SCORE,
    CANARY_VERDICT,
    CIRCUIT_BREAKER_STATE,
    COST_USD_TOTAL,
    GC_PAUSE,
    GPU_MEMORY_TOTAL,
    GPU_MEMORY_USED,
    LEDGER_DATABASE_UP,
    LEDGER_QUEUE_DEPTH,
    LEDGER_SPOOL_BYTES,
    LEDGER_SPOOL_FILES,
    RATE_LIMITED_TOTAL,
    REQUEST_DURATION,
    REQUESTS_TOTAL,
    SAFETY_HITS_TOTAL,
    SAFETY_INCIDENTS_TOTAL,
    TIME_PER_OUTPUT_TOKEN,
    TIME_TO_FIRST_TOKEN,
    TOKENS_TOTAL,
    UPSTREAM_HEALTHY,
    UPSTREAM_RETRIES_TOTAL,
    WORKER_BATCH_SIZE,
    WORKER_E2E,
    WORKER_MODEL_LOAD,
    WORKER_QUEUE_TIME,
    WORKER_RUNNING,
    WORKER_TTFT,
    WORKER_WAITING,
    Metric,
)
from slo import conventions as c
from slo.model import SLO, AvailabilitySLI, CostSLI, LatencyMetric

EXECUTIVE_UID, ONCALL_UID, DEBUG_UID = "inferwatch-executive", "inferwatch-oncall", "inferwatch-debug"
# External metrics the dashboards read: the NVIDIA DCGM exporter's, beside the worker's own.
DCGM_GPU_UTIL, DCGM_FB_USED, DCGM_FB_FREE = "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"
# The gateway's response-cache, budget and Redis series (gateway.metrics.GatewayMetrics; not in
# slo.metrics_catalog yet, so named here; `--check` finds them in the live registry).
CACHE_REQUESTS_TOTAL = "inferwatch_cache_requests_total"
BUDGET_USED_RATIO = "inferwatch_budget_used_ratio"
REDIS_UP = "inferwatch_redis_up"

REQ = REQUESTS_TOTAL.name
WORKER = matchers("worker", "version")


def _latency_panel(key: str, title: str, metric: Metric, slos: Sequence[SLO], lm: LatencyMetric, what: str) -> Panel:
    thresholds = latency_thresholds(list(slos), lm)
    steps = (Step(GREEN), *(Step(RED, t) for t, _ in thresholds[:1]))
    slo_text = "; ".join(f"SLO: {o * 100:.4g}% within {t:g} s" for t, o in thresholds)
    return Panel(
        key,
        title,
        f"p50, p95 and p99 of {what} at the gateway ({metric.help}) {slo_text + '. ' if slo_text else ''}"
        "The red line is the SLO threshold: a p95/p99 above it spends budget; compare versions in the debug "
        "dashboard and worker queue time before scaling.",
        "timeseries",
        tuple(
            Query(quantile(q, metric.name, matchers("alias", "version", "tenant")), f"p{round(q * 100)}")
            for q in (0.5, 0.95, 0.99)
        ),
        unit="s",
        steps=steps,
        threshold_lines=bool(thresholds),
        min=0,
        core=True,
        exemplars=True,
    )


def _objective(slos: Sequence[SLO], kind: type) -> float | None:
    found = [s.objective for s in slos if isinstance(s.sli, kind)]
    return max(found) if found else None


def executive(slos: Sequence[SLO], config: DashboardsConfig) -> Dashboard:
    cost, req = scoped(COST_USD_TOTAL.name), scoped(REQ)
    routed = scoped(REQ, extra='model_version!=""')
    budgets = [s.sli.budget_usd_per_1k_requests for s in slos if isinstance(s.sli, CostSLI)]
    cost_steps = (Step(GREEN), Step(YELLOW, 0.8 * min(budgets)), Step(RED, min(budgets))) if budgets else ()
    spend = Row(
        "Spend",
        (
            Panel(
                "cost_30d",
                "Cost over the last 30 days by tenant and model",
                "US dollars spent in the last 30 days per tenant and model alias (prices x tokens, from each "
                "request's record). A bar out of line with its traffic means a price or prompt-size change.",
                "bargauge",
                (
                    Query(
                        sum_increase(cost, "30d", "tenant, model_alias"), "{{tenant}} / {{model_alias}}", instant=True
                    ),
                ),
                unit="currencyUSD",
                width=10,
                core=True,
            ),
            Panel(
                "cost_per_1k",
                "Cost per 1k requests",
                "Spend per 1000 requests over the selected range"
                + (f"; red above the cost SLO budget of {min(budgets):g} USD." if budgets else ".")
                + " When red, look at tokens per request and the model mix below.",
                "stat",
                (
                    Query(
                        f"1000 * {sum_increase(cost, '$__range')}\n/ ({sum_increase(req, '$__range')} > 0)",
                        "USD per 1k",
                        instant=True,
                    ),
                ),
                unit="currencyUSD",
                steps=cost_steps,
                width=4,
                core=True,
            ),
            Panel(
                "cost_rate",
                "Spend per hour by model",
                "Spend rate in USD per hour per model alias. Steps show price or traffic changes.",
                "timeseries",
                (Query(f"3600 * {sum_rate(cost, 'model_alias')}", "{{model_alias}}"),),
                unit="currencyUSD",
                min=0,
                width=10,
                core=True,
            ),
        ),
    )
    traffic = Row(
        "Traffic",
        (
            Panel(
                "requests",
                "Request volume",
                "Requests per second that ended at the gateway, per model alias (all outcomes).",
                "timeseries",
                (Query(sum_rate(req, "model_alias"), "{{model_alias}}"),),
                unit="reqps",
                min=0,
                core=True,
            ),
            Panel(
                "tokens",
                "Tokens processed",
                "Billed tokens per second, input (prompt) and output (completion).",
                "timeseries",
                (Query(sum_rate(scoped(TOKENS_TOTAL.name), "token_type"), "{{token_type}}"),),
                unit="short",
                min=0,
                core=True,
            ),
            Panel(
                "version_share",
                "Traffic by model version",
                "Share of requests served by each model version over the selected range (requests refused "
                "before routing, by a limit or a budget, reach no version and are left out): a canary's share "
                "should match its rollout weight on the on-call dashboard.",
                "bargauge",
                (
                    Query(
                        f"{sum_increase(routed, '$__range', 'model_alias, model_version')}\n"
                        f"/ on() group_left() ({sum_increase(routed, '$__range')} > 0)\n> 0",
                        "{{model_alias}} {{model_version}}",
                        instant=True,
                    ),
                ),
                unit="percentunit",
                min=0,
                max=1,
                core=True,
            ),
            Panel(
                "safety_week",
                "Safety incidents this week",
                "Requests whose input or output was blocked or flagged in the last 7 days. A jump: open the "
                "review queue (inferwatch safety review list) and the debug dashboard's safety panel.",
                "stat",
                (
                    Query(
                        sum_increase(scoped(SAFETY_INCIDENTS_TOTAL.name), "7d", "direction"),
                        "{{direction}}",
                        instant=True,
                    ),
                ),
                unit="short",
                steps=(Step(GREEN), Step(ORANGE, 1), Step(RED, 100)),
                width=6,
                core=True,
            ),
        ),
    )
    tenant = matchers("tenant")
    hits = CACHE_REQUESTS_TOTAL + matchers("tenant", extra='result="hit"')
    soft = config.budget_soft_ratio
    cache_budgets = Row(
        "Response cache and budgets",
        (
            Panel(
                "cache_hit_rate",
                "Cache hit rate by tenant",
                "Share of each tenant's requests answered from the response cache over the selected range (the "
                "cache_hit_rate of GET /v1/usage and the weekly report). Only deterministic requests (temperature 0 "
                "or a seed) of tenants that opted in can hit; a drop after a release is expected (a new model "
                "version starts with an empty cache).",
                "bargauge",
                (
                    Query(
                        f"{sum_increase(hits, '$__range', 'tenant')}\n"
                        f"/ ({sum_increase(REQ + tenant, '$__range', 'tenant')} > 0)",
                        "{{tenant}}",
                        instant=True,
                    ),
                ),
                unit="percentunit",
                min=0,
                max=1,
                width=12,
                no_value="no cache hits (cache off or no repeated requests)",
                core=True,
            ),
            Panel(
                "budget_used",
                "Budget used by tenant",
                f"Share of each tenant budget used in its current period (a UTC day or calendar month; "
                f"{BUDGET_USED_RATIO}). Orange from {soft:.0%} (the gateway's default soft limit, when the budget "
                "webhooks are told), red at 100%: a hard budget then refuses the tenant's requests with 429 "
                "budget_exceeded until it resets (inferwatch budgets list shows when).",
                "bargauge",
                (
                    Query(
                        f"max by (tenant, budget) ({BUDGET_USED_RATIO}{tenant})", "{{tenant}} {{budget}}", instant=True
                    ),
                ),
                unit="percentunit",
                min=0,
                max=1,
                steps=(Step(GREEN), Step(ORANGE, soft), Step(RED, 1.0)),
                width=12,
                no_value="no budgets configured",
                core=True,
            ),
        ),
    )
    slo_row = Row(
        "SLO compliance and error budget", tuple(p for s in slos for p in (compliance_panel(s), budget_panel(s)))
    )
    return Dashboard(
        EXECUTIVE_UID,
        "inferwatch / Executive",
        "Spend, traffic, cache and budgets, and SLO compliance for the platform's owners.",
        (spend, traffic, cache_budgets, slo_row),
        (VARIABLES["alias"], VARIABLES["version"], VARIABLES["tenant"]),
        time_from="now-30d",
        refresh=config.refresh,
    )


def oncall(slos: Sequence[SLO], config: DashboardsConfig) -> Dashboard:
    valid, bad = scoped(REQ, 'status_class!="4xx"'), scoped(REQ, 'status_class="5xx"')
    availability = _objective(slos, AvailabilitySLI)
    health = Row(
        "Requests and latency",
        (
            Panel(
                "success_rate",
                "Request success rate",
                "Valid requests (all but 4xx, the client's fault) answered without a 5xx"
                + (f"; red below the availability objective of {availability * 100:g}%." if availability else ".")
                + " When it drops: check errors by type, upstream health and the worker panels below.",
                "timeseries",
                (Query(f"1 - (\n  {sum_rate(bad)}\n  or vector(0)\n)\n/ ({sum_rate(valid)} > 0)", "success"),),
                unit="percentunit",
                max=1,
                steps=(Step(RED), Step(GREEN, availability)) if availability else (),
                threshold_lines=bool(availability),
                core=True,
            ),
            _latency_panel(
                "latency_e2e", "End-to-end latency", REQUEST_DURATION, slos, LatencyMetric.E2E, "request duration"
            ),
            Panel(
                "errors_by_type",
                "Errors by type",
                "Failed requests per second by status class and error type. 5xx are ours (upstream_error, "
                "timeout, ...); 4xx are the client's (rate_limited, invalid requests) and do not spend budget.",
                "timeseries",
                (
                    Query(
                        sum_rate(scoped(REQ, 'status_class!="2xx"'), "status_class, error_type"),
                        "{{status_class}} {{error_type}}",
                    ),
                ),
                unit="reqps",
                min=0,
                core=True,
            ),
            _latency_panel(
                "latency_ttft",
                "Time to first token",
                TIME_TO_FIRST_TOKEN,
                slos,
                LatencyMetric.TTFT,
                "time to first token",
            ),
            _latency_panel(
                "latency_tpot",
                "Time per output token",
                TIME_PER_OUTPUT_TOKEN,
                slos,
                LatencyMetric.TPOT,
                "time per output token",
            ),
            Panel(
                "active_alerts",
                "Active alerts",
                "Alerts firing now: Prometheus' burn-rate and operational alerts (ALERTS) and the built-in "
                "evaluator's SLO alerts (slo_alert_firing). Each alert's runbook link is in its annotations.",
                "table",
                (
                    Query(
                        f'sum by (alertname, {c.SEVERITY_LABEL}, {c.LABEL_ID}) (ALERTS{{alertstate="firing"}})',
                        instant=True,
                    ),
                    Query("max by (slo, severity) (slo_alert_firing) > 0", instant=True),
                ),
                no_value="no alerts firing",
            ),
        ),
    )
    burn = Row("SLO burn rates", tuple(burn_rate_panel(s) for s in slos))
    workers = Row(
        "Workers",
        (
            Panel(
                "queue_depth",
                "Queue depth per worker",
                f"Requests waiting for a batch slot on each worker ({WORKER_WAITING.help}). Growing while the "
                "running batch is at its maximum: the worker is saturated, add capacity or shed load.",
                "timeseries",
                (Query(f"sum by (instance) ({WORKER_WAITING.name}{WORKER})", "{{instance}}"),),
                min=0,
                core=True,
            ),
            Panel(
                "running_batch",
                "Running batch size per worker",
                "Sequences decoding together on each worker, and the mean batch per decode step.",
                "timeseries",
                (
                    Query(f"sum by (instance) ({WORKER_RUNNING.name}{WORKER})", "{{instance}} running"),
                    Query(
                        f"{sum_rate(WORKER_BATCH_SIZE.name + '_sum' + WORKER, 'instance')}\n"
                        f"/ ({sum_rate(WORKER_BATCH_SIZE.name + '_count' + WORKER, 'instance')} > 0)",
                        "{{instance}} mean per step",
                    ),
                ),
                min=0,
                core=True,
            ),
            Panel(
                "gpu_util",
                "GPU utilization",
                "GPU busy time from the DCGM exporter (DCGM_FI_DEV_GPU_UTIL). Empty without a DCGM exporter "
                "(CPU workers). Low utilization with a queue means the batch size limit is too small.",
                "timeseries",
                (Query(f"{DCGM_GPU_UTIL} / 100", "{{Hostname}} GPU {{gpu}}"),),
                unit="percentunit",
                min=0,
                max=1,
                no_value="no DCGM exporter",
            ),
            Panel(
                "gpu_memory",
                "GPU memory used",
                "Framebuffer memory in use, from DCGM (FB_USED / (FB_USED + FB_FREE)) and from the worker's own "
                f"torch accounting. Above {config.gpu_memory_warn_ratio:.0%} expect OOMs or shrinking batches.",
                "timeseries",
                (
                    Query(f"{DCGM_FB_USED} / (({DCGM_FB_USED} + {DCGM_FB_FREE}) > 0)", "DCGM {{Hostname}} GPU {{gpu}}"),
                    Query(
                        f"{GPU_MEMORY_USED.name}{matchers('worker')}\n"
                        f"/ ({GPU_MEMORY_TOTAL.name}{matchers('worker')} > 0)",
                        "worker {{instance}} GPU {{gpu}}",
                    ),
                ),
                unit="percentunit",
                min=0,
                max=1,
                steps=(Step(GREEN), Step(RED, config.gpu_memory_warn_ratio)),
                threshold_lines=True,
                no_value="no GPU",
            ),
        ),
    )
    routing = Row(
        "Upstreams and canary",
        (
            Panel(
                "upstream_health",
                "Upstream health",
                f"{UPSTREAM_HEALTHY.help} Red: the gateway routes around it; if every upstream of an alias is red "
                "requests fail (InferwatchNoHealthyUpstream).",
                "timeseries",
                (
                    Query(
                        f"min by (model_alias, upstream) ({UPSTREAM_HEALTHY.name}{matchers('alias', 'version')})",
                        "{{model_alias}} {{upstream}}",
                    ),
                ),
                min=0,
                max=1,
                steps=(Step(RED), Step(GREEN, 1)),
                core=True,
            ),
            Panel(
                "canary_weights",
                "Canary weights",
                f"{ALIAS_WEIGHT.help} A rollout raises the canary's weight step by step; a drop to 0 is a rollback.",
                "timeseries",
                (Query(f"{ALIAS_WEIGHT.name}{matchers('alias')}", "{{model_alias}} {{model_version}}"),),
                min=0,
                core=True,
            ),
            Panel(
                "canary_verdict",
                "Canary verdict",
                "The current canary judge score (0-100) and verdict per alias. Empty while no canary runs. A fail "
                "verdict rolls the canary back automatically; see inferwatch canary rollout status.",
                "table",
                (
                    Query(f"{CANARY_SCORE.name}{matchers('alias')}", instant=True),
                    Query(
                        "max by (model_alias, canary_version, verdict) "
                        f"({CANARY_VERDICT.name}{matchers('alias')}) == 1",
                        instant=True,
                    ),
                ),
                no_value="no canary running",
            ),
        ),
    )
    return Dashboard(
        ONCALL_UID,
        "inferwatch / On-call",
        "Is the service healthy now, which SLO is burning, and where: requests, workers, upstreams.",
        (health, burn, workers, routing),
        tuple(VARIABLES.values()),
        time_from="now-3h",
        refresh=config.refresh,
    )


def _heatmap(key: str, title: str, metric: Metric, what: str) -> Panel:
    return Panel(
        key,
        f"{title} ($worker)",
        f"Distribution of {what} on one worker ({metric.help}), one heatmap per worker. A band moving up "
        "on one worker only points at that node (GPU, neighbours); on all workers at load or the model.",
        "heatmap",
        (Query(f"sum by (le) (increase({metric.name}_bucket{WORKER}[$__rate_interval]))", "{{le}}"),),
        unit="s",
        width=12,
        repeat="worker",
        core=True,
    )


def debug(slos: Sequence[SLO], config: DashboardsConfig) -> Dashboard:
    by_version = matchers("alias", "version", "tenant")
    valid, bad = scoped(REQ, 'status_class!="4xx"'), scoped(REQ, 'status_class="5xx"')
    workers = Row(
        "Per-worker latency",
        (
            _heatmap("worker_e2e_heatmap", "Worker end-to-end latency", WORKER_E2E, "request latency"),
            _heatmap("worker_ttft_heatmap", "Worker time to first token", WORKER_TTFT, "time to first token"),
            _heatmap("worker_queue_heatmap", "Worker queue time", WORKER_QUEUE_TIME, "time waiting for a batch slot"),
        ),
    )
    versions = Row(
        "Versions",
        (
            Panel(
                "version_p95",
                "p95 latency by version",
                "p95 end-to-end latency per model version: a canary slower than its baseline shows here first.",
                "timeseries",
                (Query(quantile(0.95, REQUEST_DURATION.name, by_version, "model_version"), "{{model_version}}"),),
                unit="s",
                min=0,
                core=True,
                exemplars=True,
            ),
            Panel(
                "version_ttft_p95",
                "p95 time to first token by version",
                "p95 time to first token per model version.",
                "timeseries",
                (Query(quantile(0.95, TIME_TO_FIRST_TOKEN.name, by_version, "model_version"), "{{model_version}}"),),
                unit="s",
                min=0,
                core=True,
                exemplars=True,
            ),
            Panel(
                "version_errors",
                "Error ratio by version",
                "Share of valid requests answered with a 5xx, per model version.",
                "timeseries",
                (
                    Query(
                        f"{sum_rate(bad, 'model_version')}\n/ ({sum_rate(valid, 'model_version')} > 0)",
                        "{{model_version}}",
                    ),
                ),
                unit="percentunit",
                min=0,
                core=True,
            ),
            Panel(
                "model_load",
                "Model load time",
                f"{WORKER_MODEL_LOAD.help} per worker and version, at its last start. A slow load delays "
                "scale-up and recovery; check the model store and disk.",
                "bargauge",
                (
                    Query(
                        f"max by (instance, model_version) ({WORKER_MODEL_LOAD.name}{WORKER})",
                        "{{instance}} {{model_version}}",
                        instant=True,
                    ),
                ),
                unit="s",
                core=True,
            ),
        ),
    )
    safety = Row(
        "Safety",
        (
            Panel(
                "safety_hits",
                "Safety hits by scanner and action",
                f"{SAFETY_HITS_TOTAL.help} Per second. Many blocks from one category after a release: a scanner "
                "false-positive or a model regression; check the review queue.",
                "timeseries",
                (
                    Query(
                        sum_rate(SAFETY_HITS_TOTAL.name, "direction, category, action"),
                        "{{direction}} {{category}} {{action}}",
                    ),
                ),
                min=0,
                width=24,
            ),
        ),
    )
    resilience = Row(
        "Retries, breakers and limits",
        (
            Panel(
                "retries",
                "Upstream retries",
                f"{UPSTREAM_RETRIES_TOTAL.help} Per second, by the replica that failed first.",
                "timeseries",
                (Query(sum_rate(UPSTREAM_RETRIES_TOTAL.name, "upstream"), "{{upstream}}"),),
                min=0,
                width=6,
                core=True,
            ),
            Panel(
                "breakers",
                "Circuit-breaker state",
                f"{CIRCUIT_BREAKER_STATE.help} Open (red) stops routing to the upstream until a probe succeeds.",
                "timeseries",
                (Query(f"max by (upstream) ({CIRCUIT_BREAKER_STATE.name})", "{{upstream}}"),),
                min=0,
                max=2,
                steps=(Step(GREEN), Step(YELLOW, 1), Step(RED, 2)),
                width=6,
                core=True,
            ),
            Panel(
                "rate_limited",
                "Rate-limit rejections",
                f"{RATE_LIMITED_TOTAL.help} Per second, by tenant and limit. Sustained: raise the tenant's limit "
                "or talk to the tenant.",
                "timeseries",
                (
                    Query(
                        sum_rate(RATE_LIMITED_TOTAL.name + matchers("tenant"), "tenant, limit"), "{{tenant}} {{limit}}"
                    ),
                ),
                min=0,
                width=6,
                core=True,
            ),
            Panel(
                "budget_refusals",
                "Budget refusals",
                "Requests refused per second because a hard tenant budget is used up (429 budget_exceeded), by "
                "tenant. They stop when the period resets or the budget is raised (PUT "
                "/v1/admin/tenants/{tenant}/budgets); the executive dashboard shows each budget's use.",
                "timeseries",
                (
                    Query(
                        sum_rate(RATE_LIMITED_TOTAL.name + matchers("tenant", extra='limit="budget"'), "tenant"),
                        "{{tenant}}",
                    ),
                ),
                min=0,
                width=6,
                no_value="no budget refusals",
                core=True,
            ),
        ),
    )
    shared = Row(
        "Response cache and Redis",
        (
            Panel(
                "cache_lookups",
                "Cache lookups by result",
                f"Cacheable requests per second by tenant and cache result ({CACHE_REQUESTS_TOTAL}). Only "
                "deterministic requests of opted-in tenants are looked up; many misses for repeated prompts: "
                "entries expire (cache.ttl_s) or are evicted (cache.max_entries / max_bytes, Redis maxmemory).",
                "timeseries",
                (
                    Query(
                        sum_rate(CACHE_REQUESTS_TOTAL + matchers("tenant"), "tenant, result"), "{{tenant}} {{result}}"
                    ),
                ),
                unit="reqps",
                min=0,
                width=12,
                no_value="no cacheable requests",
                core=True,
            ),
            Panel(
                "redis_up",
                "Redis up",
                f"1 while the shared Redis answers each gateway replica ({REDIS_UP}). At 0 the replica falls back to "
                "in-process rate limits, budget counters and cache, so limits are per replica until Redis is back. "
                "Also 0 on replicas configured without redis_url.",
                "timeseries",
                (Query(f"min by (instance) ({REDIS_UP})", "{{instance}}"),),
                min=0,
                max=1,
                steps=(Step(RED), Step(GREEN, 1)),
                width=12,
            ),
        ),
    )
    ledger = Row(
        "Ledger writer",
        (
            Panel(
                "ledger_queue",
                "Ledger writer queue",
                f"{LEDGER_QUEUE_DEPTH.help} Growing: the database is slow or down (see database up).",
                "timeseries",
                (
                    Query(f"sum({LEDGER_QUEUE_DEPTH.name})", "queue"),
                    Query(f"min({LEDGER_DATABASE_UP.name})", "database up"),
                ),
                min=0,
                core=True,
            ),
            Panel(
                "ledger_spool",
                "Ledger spool size",
                f"{LEDGER_SPOOL_BYTES.help} Records spill to the on-disk spool while the database is down and "
                "are replayed on recovery; it should return to 0. Watch the disk if it keeps growing.",
                "timeseries",
                (Query(f"sum({LEDGER_SPOOL_BYTES.name})", "bytes"),),
                unit="bytes",
                min=0,
                core=True,
            ),
            Panel(
                "ledger_spool_files",
                "Spooled batches",
                f"{LEDGER_SPOOL_FILES.help}",
                "stat",
                (Query(f"sum({LEDGER_SPOOL_FILES.name})", "files", instant=True),),
                steps=(Step(GREEN), Step(ORANGE, 1)),
                core=True,
            ),
        ),
    )
    process = Row(
        "Gateway process",
        (
            Panel(
                "gc_pauses",
                "Garbage-collector pauses",
                f"{GC_PAUSE.help} p99 by generation, and full (generation 2) passes per second. A latency tail "
                "at the gateway that this follows is the collector, not the upstream: full passes should stay "
                "in the tens of milliseconds (startup objects are frozen).",
                "timeseries",
                (
                    Query(quantile(0.99, GC_PAUSE.name, "", "generation"), "p99 generation {{generation}}"),
                    Query(f'sum(rate({GC_PAUSE.name}_count{{generation="2"}}[$__rate_interval]))', "full passes/s"),
                ),
                unit="s",
                min=0,
                width=12,
                no_value="no collections",
            ),
        ),
    )
    return Dashboard(
        DEBUG_UID,
        "inferwatch / Debug",
        "Why is it slow or failing: per-worker and per-version latency, safety, resilience, cache and Redis, ledger.",
        (workers, versions, safety, resilience, shared, ledger, process),
        tuple(VARIABLES.values()),
        time_from="now-1h",
        refresh=config.refresh,
    )


def all_dashboards(slos: Sequence[SLO], config: DashboardsConfig | None = None) -> list[Dashboard]:
    cfg = config or DashboardsConfig()
    return [executive(slos, cfg), oncall(slos, cfg), debug(slos, cfg)]
