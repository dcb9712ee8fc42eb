"""Evaluate SLIs on any metric (events, raw) through Prometheus' HTTP API.

The ledger only knows inferwatch's own requests, so an SLI written as PromQL is evaluated from
the Prometheus that holds its series (`slo.prometheus_url`): one instant query per SLI window
at the evaluation time, of the same expressions the rules record (`EventsSLI.error_ratio`,
`RawSLI.error_ratio`), then the burn-rate table as for every other SLO (`evaluate_windows`).
An events SLI also reads its total, so counts, no data and no traffic are known; a raw SLI
has only ratios. A grouped SLI (`group_by`) gives one evaluation per group.
"""

from __future__ import annotations

from datetime import datetime, timezone

import httpx

from slo.burn import duration_name
from slo.evaluator import Evaluation, evaluate_windows, period_bounds, to_minute
from slo.model import SLO, EventsSLI, RawSLI

Group = tuple[tuple[str, str], ...]  # a sample's labels, sorted (as slo.source.Group)
TIMEOUT_S = 10.0


class PrometheusError(RuntimeError):
    """Prometheus could not answer a query (unreachable, or it refused the PromQL)."""


def query(client: httpx.Client, url: str, expr: str, at: datetime) -> dict[Group, float]:
    """An instant query at `at`: each sample's value by its labels."""
    try:
        resp = client.get(f"{url.rstrip('/')}/api/v1/query", params={"query": expr, "time": f"{at.timestamp():.3f}"})
        body = resp.json()
    except (httpx.HTTPError, ValueError) as e:
        raise PrometheusError(f"{url}: {type(e).__name__}: {e}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"{url}: {body.get('errorType', 'error')}: {body.get('error', body)}")
    return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in body["data"]["result"]}


def evaluate_prometheus(
    slo: SLO, url: str, now: datetime, *, client: httpx.Client | None = None
) -> dict[Group, Evaluation]:
    """Evaluate an events or raw SLO at `now` (windows end at the start of now's minute), one
    evaluation per group ({(): ...} when ungrouped). No group at all: one evaluation with no data."""
    sli = slo.sli
    if not isinstance(sli, (EventsSLI, RawSLI)):
        raise TypeError(f"{slo.id}: {slo.kind.value} SLIs are evaluated from the ledger")
    at = to_minute(now)
    when = datetime.fromtimestamp(at * 60, tz=timezone.utc)
    p_start, _ = period_bounds(slo, at)
    minutes = {**slo.sli_windows(), "period": at - p_start, "no_data": slo.alerting.no_data_after_minutes}
    if slo.alerting.no_traffic_after_minutes is not None:
        minutes["no_traffic"] = slo.alerting.no_traffic_after_minutes
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_S)
    try:
        ratios = {k: query(http, url, sli.error_ratio(duration_name(m)), when) for k, m in minutes.items()}
        totals = (
            {k: query(http, url, sli.rate(sli.total_query, duration_name(m)), when) for k, m in minutes.items()}
            if isinstance(sli, EventsSLI)
            else {}
        )
    finally:
        if own:
            http.close()
    groups = sorted({g for r in (*ratios.values(), *totals.values()) for g in r}) or [()]
    out = {}

    def sums(key: str, g: Group) -> tuple[float, float]:
        # rate() is per second: events = rate x window seconds; good = events x (1 - ratio)
        total = totals.get(key, {}).get(g, 0.0) * minutes[key] * 60
        r = ratios[key].get(g)
        return (total * (1 - r) if r is not None else total), total

    for g in groups:
        seen = {k: ratios[k].get(g) for k in minutes}
        out[g] = evaluate_windows(
            slo,
            at,
            {w: sums(w, g) for w in slo.sli_windows()},
            sums("period", g),
            no_data=seen["no_data"] is None and not totals.get("no_data", {}).get(g),
            no_traffic="no_traffic" in totals and totals["no_traffic"].get(g) == 0.0,
            ratios=seen,
        )
    return out
