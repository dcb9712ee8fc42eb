"""`inferwatch slo`: mount `app` as a typer sub-app."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from slo.cliopts import MoreSpecsArg, SpecsOpt, spec_paths

app = typer.Typer(help="SLO status from the ledger's minute rollups.", no_args_is_help=True)

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML settings file (also INFERWATCH_CONFIG).")
]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (also INFERWATCH_DATA_DIR).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (the shape of GET /v1/slos).")]

EXIT_PAGE = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class SLOSetup:
    """What `slo status` needs of the platform's settings. The composition root builds it
    (`set_setup_factory`), so this package reads no settings of another's."""

    ledger_url: str
    data_dir: Path
    slo_specs: list[Path]  # empty: slo/defaults.yaml
    prometheus_url: str | None = None  # evaluates events/raw SLIs


SetupFactory = Callable[[Optional[Path], Optional[Path]], SLOSetup]  # (config file, data dir)
_factory: SetupFactory | None = None


def set_setup_factory(factory: SetupFactory) -> None:
    """Called once by the composition root, before a command runs."""
    global _factory
    _factory = factory


def _setup(config: Path | None, data_dir: Path | None) -> SLOSetup:
    if _factory is None:
        raise RuntimeError("slo.cli.set_setup_factory was not called")
    return _factory(config, data_dir)


@app.callback()
def _main() -> None:
    """SLOs evaluated by the built-in evaluator."""


def _pct(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _flag(firing: bool, enabled: bool = True) -> str:
    if not enabled:
        return "off"
    return "[bold red]FIRING[/]" if firing else "ok"


def render_table(rows: Sequence[dict[str, Any]]) -> None:
    """The status table; the reasons of unsupported or failed SLOs follow it."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(
        "SLO", "objective", "SLI", "budget left", "burn 1h", "burn 6h", "page", "ticket", "no data", box=box.SIMPLE_HEAD
    )
    for r in rows:
        objective = (
            _pct(r["objective"], 2) if r["objective"] is not None else f"{r['budget_usd_per_1k_requests']:g} $/1k"
        )
        sli = (
            _pct(r["sli"])
            if r["kind"] != "cost"
            else ("-" if r.get("cost_per_1k_usd") is None else f"{r['cost_per_1k_usd']:.4g} $/1k")
        )
        a = r["alerts"]
        if r["status"] in ("unsupported", "error"):
            t.add_row(r["name"], objective, f"[yellow]{r['status']}[/]", *["-"] * 6)
            continue
        t.add_row(
            r["name"],
            objective,
            sli,
            _pct(r["budget_remaining"], 1),
            _rate(r["burn_rates"]["1h"]),
            _rate(r["burn_rates"]["6h"]),
            _flag(a["page"]["firing"], a["page"]["enabled"]),
            _flag(a["ticket"]["firing"], a["ticket"]["enabled"]),
            _flag(a["no_data"]["firing"]),
        )
    console = Console(width=max(Console().width, 110))
    console.print(t)
    for r in rows:
        if r["status"] in ("unsupported", "error"):
            console.print(f"[yellow]{r['name']}[/]: {r['status']}: {r['reason']}")


@app.command("status")
def status(
    more: MoreSpecsArg = None,
    specs: SpecsOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate every SLO now from the ledger and print a table (or JSON). Specs: --specs, else
    slo_specs of the settings, else slo/defaults.yaml.

    Exit status: 0 normally; 1 when any page alert fires; 2 for bad settings or specs, or an
    unreachable ledger database.
    Reads only: nothing is recorded and no notification is sent.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.db import create_engine_for, migrate
    from slo.service import SLOService
    from slo.spec import DEFAULTS_FILE, load_specs
    from slo.specfields import SpecError

    try:
        setup = _setup(config, data_dir)  # read-only: the database URL and spec files
        slos = load_specs(spec_paths(specs, more) or setup.slo_specs or [DEFAULTS_FILE])
    except (FileNotFoundError, ValueError, SpecError) as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    setup.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine_for(setup.ledger_url)
    try:
        migrate(engine)  # a fresh data directory has no tables yet
        statuses = SLOService(engine, slos, cache=False, prometheus_url=setup.prometheus_url).evaluate_all()
    except SQLAlchemyError as e:
        typer.secho(f"error: cannot read the ledger: {type(e).__name__}: {e}".splitlines()[0], fg="red", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        engine.dispose()
    rows = [s.to_dict() for s in statuses]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        render_table(rows)
    if any(s.page for s in statuses):
        raise typer.Exit(EXIT_PAGE)
