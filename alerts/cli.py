"""`inferwatch alerts build`: mount `app` as a typer sub-app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from alerts.build import build, check
from alerts.config import AlertsConfig
from slo.cliopts import MoreSpecsArg, SpecsOpt, spec_paths
from slo.spec import DEFAULTS_FILE, load_specs
from slo.specfields import SpecError

app = typer.Typer(
    help="Prometheus rules, Alertmanager routing, promtool tests and runbooks from SLO specs.", no_args_is_help=True
)

OutOpt = Annotated[Path, typer.Option("--out", help="Directory for rules.yaml, alertmanager.yaml, tests/, runbooks/.")]
ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", help="Alerts config YAML (webhooks, runbooks, thresholds).")
]
CheckOpt = Annotated[bool, typer.Option("--check", help="Run promtool check rules and promtool test rules.")]


@app.callback()
def _main() -> None:
    """Alerting artifacts from SLO specs."""


@app.command("build")
def build_cmd(
    out: OutOpt,
    more: MoreSpecsArg = None,
    specs: SpecsOpt = None,
    config: ConfigOpt = None,
    run_check: CheckOpt = False,
) -> None:
    """Write the alerting artifacts for SLO specs (default: slo/defaults.yaml) into OUT; with
    --check, verify them with promtool."""
    try:
        slos = load_specs(spec_paths(specs, more) or [DEFAULTS_FILE])
    except SpecError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    result = build(slos, out, AlertsConfig.load(config))
    typer.echo(f"wrote {len(result.files())} files for {len(slos)} SLOs to {out}")
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    if run_check:
        res = check(result)
        typer.echo(res.output, err=not res.ok)
        if not res.ok:
            raise typer.Exit(1)
