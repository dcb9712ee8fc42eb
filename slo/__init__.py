"""SLO specs, the normalized model, burn-rate math and pure evaluation.

Public API:
    load_specs(paths) / parse_specs(text, file) / load_default_slos()  -> list[SLO]
    SpecError                                   (message lines are "file:line: problem")
    evaluate(slo, series, now) -> Evaluation    (series: MinuteSeries or (minute, good, total))
    MinuteSeries.from_points / from_arrays / from_bad_total
    alert_windows(period_days, error_budget)    (the burn-rate table)
    latency_thresholds, thresholds_by_prom_metric, thresholds_by_ledger_metric,
    histogram_buckets, format_le, le_matcher    (SLO thresholds as histogram buckets)
    slo.metrics_catalog.CATALOG                 (the exported metrics)

Run time (imported from their modules, so that `import slo` stays free of the database):
    slo.service.SLOService(engine, slos, notifier, registry=...)  evaluate, history, gauges
    slo.source.evaluate_ledger(_many)           evaluation over the ledger's minute and hourly rollups
    slo.prometheus_source.evaluate_prometheus   events/raw SLIs through Prometheus' HTTP API
    slo.conventions                             the public rule, label and alert names
    slo.notify.WebhookNotifier                  Alertmanager-format webhooks on state changes
    slo.jobs.register_slo_job(scheduler, service)
    slo.router.build_slo_router(service, authenticate)   GET /v1/slos, /v1/slos/{name}
    slo.cli.app                                 `inferwatch slo status`
"""

from slo.burn import BurnAlertWindow, alert_windows
from slo.evaluator import Evaluation, MinuteSeries, evaluate, evaluate_range
from slo.model import (
    SLO,
    Alerting,
    AvailabilitySLI,
    CostSLI,
    LatencyMetric,
    LatencySLI,
    SafetySLI,
    Selector,
    SLIKind,
    TimeWindow,
)
from slo.spec import load_default_slos, load_specs, parse_specs
from slo.specfields import SpecError
from slo.thresholds import (
    format_le,
    histogram_buckets,
    latency_thresholds,
    le_matcher,
    le_spellings,
    thresholds_by_ledger_metric,
    thresholds_by_prom_metric,
)

__all__ = [
    "SLO",
    "Alerting",
    "AvailabilitySLI",
    "BurnAlertWindow",
    "CostSLI",
    "Evaluation",
    "LatencyMetric",
    "LatencySLI",
    "MinuteSeries",
    "SLIKind",
    "SafetySLI",
    "Selector",
    "SpecError",
    "TimeWindow",
    "alert_windows",
    "evaluate",
    "evaluate_range",
    "format_le",
    "histogram_buckets",
    "latency_thresholds",
    "le_matcher",
    "le_spellings",
    "load_default_slos",
    "load_specs",
    "parse_specs",
    "thresholds_by_ledger_metric",
    "thresholds_by_prom_metric",
]
