"""`inferwatch report`: mount `app` as a typer sub-app.

    inferwatch report weekly [--week 2026-W47] [--out DIR] [--format html,md,json] [--json]

Exit status: 0 written; 2 for a bad week, format or settings, or an unreachable ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from sqlalchemy import Engine

from reports.config import ReportsConfig

app = typer.Typer(help="The weekly cost and safety review.", no_args_is_help=True)


@dataclass(frozen=True)
class ReportSetup:
    """What `report weekly` needs of the platform's settings. The composition root builds it
    (`set_setup_factory`), so this package reads no settings of another's."""

    ledger_url: str
    data_dir: Path
    config: ReportsConfig
    slo_specs: list[Path]
    inputs: Callable[[Engine], dict[str, Any]]  # the gateway's side: ReportService's keyword inputs


SetupFactory = Callable[[Optional[Path], Optional[Path]], ReportSetup]  # (config file, data dir)
_factory: SetupFactory | None = None


def set_setup_factory(factory: SetupFactory) -> None:
    """Called once by the composition root, before the command runs."""
    global _factory
    _factory = factory


def _setup(config: Path | None, data_dir: Path | None) -> ReportSetup:
    if _factory is None:
        raise RuntimeError("reports.cli.set_setup_factory was not called")
    return _factory(config, data_dir)


EXIT_USAGE = 2

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML settings file (also INFERWATCH_CONFIG).")
]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (also INFERWATCH_DATA_DIR).")]


@app.callback()
def _main() -> None:
    """Reports built from the ledger, the SLO history, the review queue and canary history."""


def _usage_error(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(EXIT_USAGE)


@app.command("weekly")
def weekly(
    week: Annotated[
        Optional[str], typer.Option("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week).")
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", help="Folder to write to (default: the reports folder of the data directory)."),
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated formats: html, md, json (default: the settings').")
    ] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report's JSON instead of the written paths.")
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write the weekly report of one ISO week (a week in progress gives a partial report)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.db import create_engine_for, migrate
    from reports.config import FORMATS
    from reports.data import WeekNotStarted
    from reports.service import ReportService
    from reports.weeks import Week
    from slo.spec import SpecError, load_specs

    try:
        target = Week.parse(week) if week else None
        chosen = [f.strip() for f in formats.split(",") if f.strip()]
        unknown = [f for f in chosen if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format {', '.join(unknown)}; expected {', '.join(FORMATS)}")
        setup = _setup(config, data_dir)
        slos = load_specs(setup.slo_specs)
    except (FileNotFoundError, ValueError, SpecError) as e:
        raise _usage_error(str(e)) from None
    cfg = setup.config
    setup.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine_for(setup.ledger_url)
    try:
        migrate(engine)  # a fresh data directory has no tables yet
        service = ReportService(engine, cfg, cfg.directory(setup.data_dir), slos, **setup.inputs(engine))
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
            typer.echo(
                f"note: {report.week} is in progress; "
                f"the report covers data until {report.data_until:%Y-%m-%d %H:%M} UTC",
                err=True,
            )
