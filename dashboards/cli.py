"""`inferwatch dashboards build|preview`: mount `app` as a typer sub-app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from dashboards.build import build
from dashboards.config import DashboardsConfig
from dashboards.definitions import all_dashboards
from slo.model import SLO
from slo.specfields import FieldError, parse_minutes
from slo.spec import DEFAULTS_FILE, load_specs
from slo.specfields import SpecError

app = typer.Typer(
    help="Grafana dashboards (executive, on-call, debug) generated from the SLO specs and the metric catalog.",
    no_args_is_help=True,
)

SpecsOpt = Annotated[
    Optional[list[Path]], typer.Option("--slo-spec", help="SLO spec files (default: slo/defaults.yaml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.callback()
def _main() -> None:
    """Dashboards as code."""


def _slos(specs: list[Path] | None) -> list[SLO]:
    try:
        return load_specs(specs or [DEFAULTS_FILE])
    except SpecError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None


@app.command("build")
def build_cmd(
    out: Annotated[Path, typer.Option("--out", help="Directory for dashboards/*.json and provisioning/.")],
    run_check: Annotated[
        bool,
        typer.Option(
            "--check", help="Fail if a panel queries a metric no code defines or PromQL that promtool rejects."
        ),
    ] = False,
    specs: SpecsOpt = None,
    prometheus_url: Annotated[
        Optional[str], typer.Option("--prometheus-url", help="URL of the provisioned Prometheus data source.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the Grafana JSON of every dashboard and the provisioning files into OUT."""
    slos = _slos(specs)
    cfg = DashboardsConfig(**({"prometheus_url": prometheus_url} if prometheus_url else {}))
    result = build(slos, out, cfg)
    summary: dict = {
        "files": [str(p) for p in result.files()],
        "dashboards": {d.uid: sum(1 for _ in d.panels()) for d in result.dashboards},
        "slos": len(slos),
    }
    ok = True
    if run_check:
        from dashboards.check import check  # imports the gateway, worker and alerts registries

        report = check(result.dashboards, slos)
        ok = report.ok
        summary["check"] = {
            "ok": ok,
            "problems": [str(p) for p in report.problems],
            "warnings": [str(p) for p in report.warnings],
        }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(
            f"wrote {len(result.files())} files ({len(result.dashboards)} dashboards, {len(slos)} SLOs) to {out}"
        )
        for line in summary.get("check", {}).get("warnings", []):
            typer.echo(f"warning: {line}", err=True)
        for line in summary.get("check", {}).get("problems", []):
            typer.echo(f"error: {line}", err=True)
        if run_check and ok:
            typer.echo("check passed: every metric is defined and promtool accepts every query")
    if not ok:
        raise typer.Exit(1)


@app.command("preview")
def preview_cmd(
    prometheus: Annotated[str, typer.Option("--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for one PNG per dashboard.")],
    range_: Annotated[str, typer.Option("--range", help="Time range to draw, like 15m, 1h or 1d.")] = "1h",
    rate_interval: Annotated[str, typer.Option("--rate-interval", help="What $__rate_interval becomes.")] = "1m",
    specs: SpecsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw every dashboard's panels as PNG images from a Prometheus (for reviewers without Grafana)."""
    import httpx

    from dashboards.preview import preview
    from dashboards.query import Window

    try:
        minutes = parse_minutes(range_, "--range")
    except FieldError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    dashboards = all_dashboards(_slos(specs))
    try:
        paths = preview(dashboards, prometheus, out, Window(minutes * 60, rate_interval=rate_interval))
    except httpx.HTTPError as e:
        typer.echo(f"cannot reach Prometheus at {prometheus}: {e}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"files": [str(p) for p in paths]}, indent=2))
    else:
        for p in paths:
            typer.echo(f"wrote {p}")
