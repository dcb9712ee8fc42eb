"""`inferwatch report`: mount `app` as a typer sub-app.

    inferwatch report weekly [--week 2026-W47] [--out DIR] [--format html,md,json] [--json]

Exit status: 0 written; 2 for a bad week, format or settings, or an unreachable ledger.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="The weekly cost and safety review.", no_args_is_help=True)

EXIT_USAGE = 2

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML settings file (also INFERWATCH_CONFIG).")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (also INFERWATCH_DATA_DIR).")]


@app.callback()
def _main() -> None:
    """Reports built from the ledger, the SLO history, the review queue and canary history."""


def _usage_error(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(EXIT_USAGE)


@app.command("weekly")
def weekly(
    week: Annotated[Optional[str], typer.Option("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write to (default: the reports folder of the data directory).")] = None,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated formats: html, md, json (default: the settings').")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report's JSON instead of the written paths.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write the weekly report of one ISO week (a week in progress gives a partial report)."""
    from sqlalchemy.exc import SQLAlchemyError

    from inferwatch.report_inputs import report_inputs
    from inferwatch.settings import load_settings
    from ledger.db import create_engine_for, migrate
    from reports.config import FORMATS, ReportsConfig
    from reports.data import WeekNotStarted
    from reports.service import ReportService
    from reports.weeks import Week
    from slo.spec import DEFAULTS_FILE, SpecError, load_specs

    try:
        target = Week.parse(week) if week else None
        chosen = [f.strip() for f in formats.split(",") if f.strip()]
        unknown = [f for f in chosen if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format {', '.join(unknown)}; expected {', '.join(FORMATS)}")
        settings = load_settings(config, {"data_dir": data_dir} if data_dir is not None else {})
        slos = load_specs(settings.slo_specs or [DEFAULTS_FILE])
    except (FileNotFoundError, ValueError, SpecError) as e:
        raise _usage_error(str(e)) from None
    cfg: ReportsConfig = settings.reports
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine_for(settings.ledger_url)
    try:
        migrate(engine)  # a fresh data directory has no tables yet
        service = ReportService(engine, cfg, cfg.directory(settings.data_dir), slos,
                                **report_inputs(engine, settings.gateway))
        report = service.build(target)
        paths = service.write(report, chosen or None, out)
    except WeekNotStarted as e:
        raise _usage_error(str(e)) from None
    except SQLAlchemyError as e:
        raise _usage_error(f"cannot read the ledger: {type(e).__name__}: {e}".splitlines()[0]) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for p in paths:
            typer.echo(str(p))
        if report.partial:
            typer.echo(f"note: {report.week} is in progress; the report covers data until {report.data_until:%Y-%m-%d %H:%M} UTC",
                       err=True)
