"""One Markdown runbook per alert; every runbook_url anchor points at a section here.

SLO alerts get one section per SLO, anchored by its sloth_id; operational alerts get a
`triage` section (and the cost alert `all-tenants` / `per-tenant`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alerts import ops
from alerts.promql import error_ratio_expr, prom_duration
from alerts.rules import period_window, sli_metric
from slo import conventions as c
from slo.burn import rows_for
from slo.model import SLO, AlertKey, LatencySLI
from slo.thresholds import format_le, le_spellings


def _anchor(anchor: str) -> str:
    return f'<a id="{anchor}"></a>\n'


def _spec_file(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _slo_facts(slo: SLO) -> str:
    target = (
        f"objective {slo.objective_percent:g}%, error budget {slo.error_budget:g}"
        if slo.bounded
        else "burn rate 1 = spending exactly the budget"
    )
    sel = ", ".join(f"{k} in {list(v)}" for k, v in slo.selector.items()) or "all traffic"
    lines = [f"- SLI: {slo.sli.describe()}", f"- Target: {target}, {slo.window.describe()}", f"- Scope: {sel}"]
    if slo.source:
        lines.append(f"- Spec: {_spec_file(slo.source.file)}:{slo.source.line}")
    return "\n".join(lines) + "\n"


def _burn_section(slo: SLO, severity: str) -> str:
    rows = rows_for(slo.alert_table(), severity)  # type: ignore[arg-type]
    table = "\n".join(
        f"| {r.long_window} and {r.short_window} | {r.factor:g}x{' (capped)' if r.capped else ''} "
        f"| {r.threshold(slo.error_budget):.4g} | {r.budget_consumed:.0%} |"
        for r in rows
    )
    f = f'{{{c.LABEL_ID}="{slo.id}"}}'
    latency = ""
    if isinstance(slo.sli, LatencySLI):
        latency = (
            f'\nThe bucket `le="{format_le(slo.sli.threshold_s)}"` (any of '
            f"{', '.join(repr(s) for s in le_spellings(slo.sli.threshold_s))}) must exist on "
            f"`{slo.sli.metric.prom_metric}_bucket`.\n"
        )
    return f"""{_anchor(slo.id)}## {slo.id}

{_slo_facts(slo)}
| windows (long and short) | burn factor | error ratio above | budget consumed |
|---|---|---|---|
{table}

1. How fast and since when: `{c.CURRENT_BURN_RATE_RATIO}{f}`, `{sli_metric("1h")}{f}`,
   `{c.PERIOD_ERROR_BUDGET_REMAINING_RATIO}{f}`.
2. Which slice burns: break the SLI down, for example
   ```promql
   {error_ratio_expr(slo, "1h").replace(chr(10), chr(10) + "   ")}
   ```
   with `sum by (model_version, tenant)` in place of `sum` on both sides.
3. Did something change? Recent rollouts (canary verdicts), model version mismatch and
   upstream health alerts for the same model alias and version.
4. Mitigate: roll back the version (canary controller), shift alias weights, or shed load;
   then watch the 5m burn rate fall below {rows[0].factor:g}x.
{latency}"""


def _absent_section(slo: SLO) -> str:
    n = prom_duration(slo.alerting.no_data_after_minutes)
    bucket = ""
    if isinstance(slo.sli, LatencySLI):
        bucket = (
            f"3. The threshold must be a histogram bucket: `{slo.sli.metric.prom_metric}_bucket` needs "
            f'`le="{format_le(slo.sli.threshold_s)}"` (or `"{le_spellings(slo.sli.threshold_s)[-1]}"`); '
            "the metric registry adds SLO thresholds to its buckets at start-up.\n"
        )
    return f"""{_anchor(slo.id)}## {slo.id}

{_slo_facts(slo)}
The series this SLI reads has been missing for {n}: its SLI is not computed, so its burn-rate
alerts cannot fire. (An SLO that merely has no traffic does not fire this; see {c.NO_TRAFFIC_ALERT}.)

1. Is the gateway scraped? `up{{job=~".*gateway.*"}}`; is the metric exported at all?
2. Was it renamed or relabelled? The SLI's query must match the series as scraped.
{bucket}{4 if bucket else 3}. The period SLI is over {period_window(slo)}; gaps lower confidence but do not \
count as errors.
"""


def _no_traffic_section(slo: SLO) -> str:
    n = prom_duration(slo.alerting.no_traffic_after_minutes or 0)
    return f"""{_anchor(slo.id)}## {slo.id}

{_slo_facts(slo)}
The series exist but counted no events for {n} (this SLO opted in to the no-traffic alert).

1. Is traffic expected? A quiet tenant or alias is fine; a drop to zero is not.
2. Do clients reach the gateway? Check the load balancer and the clients' own errors.
"""


_OPS: dict[str, tuple[str, str]] = {
    ops.WORKER_DOWN: (
        "The gateway's health checks of one worker fail; traffic shifts to the others.",
        "1. `inferwatch_worker_up == 0`: which upstream and model version.\n"
        "2. Check the worker process and its GPU (`nvidia-smi`, worker logs, OOM kills).\n"
        "3. If it was the only upstream of an alias, InferwatchNoHealthyUpstream pages too.\n"
        "4. Restart the worker; if it keeps failing, remove it from the alias until fixed.\n",
    ),
    ops.NO_HEALTHY_UPSTREAM: (
        "No upstream of a model alias is healthy: every request for it fails with 503.",
        '1. `inferwatch_upstream_healthy{model_alias="..."}` by upstream.\n'
        "2. Worker processes, GPUs, network between gateway and workers.\n"
        "3. Route the alias to a previous version or another model while workers recover.\n",
    ),
    ops.SAFETY_SPIKE: (
        "A sudden rise in requests with a blocked or flagged output for one model version.",
        "1. `inferwatch_safety_hits_total` by category and action: which scanner fires.\n"
        "2. Was a new model version or a new tenant introduced? Compare with the previous version.\n"
        "3. Review the safety queue; if the model misbehaves, roll back the version.\n"
        "4. If a scanner misfires (false positives), adjust the policy, not the model.\n",
    ),
    ops.GPU_MEMORY_PRESSURE: (
        "A worker GPU is nearly full; expect out-of-memory errors and smaller batches.",
        "1. `inferwatch_worker_gpu_memory_used_bytes / inferwatch_worker_gpu_memory_total_bytes` by gpu.\n"
        "2. Long prompts or a large batch size? Lower max batch tokens or max context.\n"
        "3. Move a model to another GPU or add a worker.\n",
    ),
    ops.VERSION_MISMATCH: (
        "A worker serves another model version than configured: requests are answered by a "
        "version nobody reviewed, and metrics are attributed to the wrong version.",
        "1. `inferwatch_model_version_mismatch == 1`: which alias and upstream.\n"
        "2. Compare the worker's loaded version with the alias configuration.\n"
        "3. Redeploy the worker with the configured version, or update the configuration "
        "through a canary rollout.\n",
    ),
    ops.LEDGER_RECORDS_DROPPED: (
        "The gateway serves requests whose records it cannot keep: they are missing from bills, "
        "SLOs and canary samples.",
        "1. `inferwatch_ledger_database_up` and `inferwatch_ledger_spool_bytes`: is the database down "
        "and the spool growing?\n"
        "2. The gateway log says why (`spool write failed ... No space left on device`, or `record "
        "cannot be stored`). Free or grow the spool volume (`<data_dir>/spool`).\n"
        "3. Bring the database back: the spool replays by itself, idempotently.\n"
        "4. Dropped records are gone; reconcile usage from upstream logs if billing needs them.\n",
    ),
}


def _cost_runbook() -> str:
    return f"""# {ops.COST_OVER_BUDGET}

Spend over the last 24 hours is above the daily budget. Severity: ticket.

{_anchor("all-tenants")}## all-tenants

1. `sum by (tenant, model_alias) (increase(inferwatch_cost_usd_total[1d]))`: who spends.
2. A traffic increase or a price change? Compare requests and tokens with the previous day.
3. Raise the budget in the alerts configuration if the spend is expected; otherwise tighten
   tenant rate limits or quotas.

{_anchor("per-tenant")}## per-tenant

1. `increase(inferwatch_cost_usd_total{{tenant="..."}}[1d])` by model alias.
2. Contact the tenant's owner; lower its quota if the usage is unplanned.
"""


_TITLES: dict[AlertKey, str] = {
    "page": "An SLO's error budget burns too fast (multiwindow, multi-burn-rate; severity page). "
    "Both windows of a row must exceed the error ratio.",
    "ticket": "An SLO's error budget burns too fast (multiwindow, multi-burn-rate; severity ticket). "
    "Both windows of a row must exceed the error ratio.",
    "absent": "An SLO's series is missing (no data). Severity: ticket.",
    "no_traffic": "An SLO counted no events (opt-in). Severity: ticket.",
}


def _section(slo: SLO, key: AlertKey) -> str | None:
    """The SLO's section of the runbook of alert `key`, or None when the SLO has no such alert."""
    a = slo.alerting
    if key in ("page", "ticket"):
        return _burn_section(slo, key) if getattr(a, key) else None
    if key == "absent":
        return _absent_section(slo)
    return _no_traffic_section(slo) if a.no_traffic_after_minutes is not None else None


def render_runbooks(slos: Sequence[SLO]) -> dict[str, str]:
    """file name -> Markdown, one per alert name (an SLO may rename its alerts)."""
    sections: dict[str, dict[AlertKey, list[str]]] = {
        c.PAGE_ALERT: {"page": []},
        c.TICKET_ALERT: {"ticket": []},
        c.ABSENT_ALERT: {"absent": []},
    }
    for key in _TITLES:
        for s in slos:
            text = _section(s, key)
            if text is not None:
                sections.setdefault(s.alerting.alert(key).name, {}).setdefault(key, []).append(text)
    out: dict[str, str] = {}
    for name, by_key in sections.items():
        parts = [f"{_TITLES[k]}\n\n" + "\n".join(texts) for k, texts in by_key.items()]
        out[f"{name}.md"] = f"# {name}\n\n" + "\n".join(parts)
    for name, (what, steps) in _OPS.items():
        out[f"{name}.md"] = f"# {name}\n\n{what}\n\n{_anchor('triage')}## triage\n\n{steps}"
    out[f"{ops.COST_OVER_BUDGET}.md"] = _cost_runbook()
    return out


def write_runbooks(slos: Sequence[SLO], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render_runbooks(slos).items():
        p = directory / name
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
