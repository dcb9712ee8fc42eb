"""``inferwatch safety ...`` commands (the lead mounts ``app`` on the main CLI)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Safety scanners: evaluation, checks and the review queue.", no_args_is_help=True)


@dataclass(frozen=True)
class ReviewSetup:
    """What the review commands need of the platform's settings. The composition root builds it
    (`set_setup_factory`), so this package reads no settings of another's."""

    ledger_url: str


SetupFactory = Callable[[Optional[Path], Optional[Path]], ReviewSetup]  # (config file, data dir)
_factory: SetupFactory | None = None


def set_setup_factory(factory: SetupFactory) -> None:
    """Called once by the composition root, before a review command runs."""
    global _factory
    _factory = factory


@app.command("eval")
def eval_command(
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
    pii: Optional[Path] = typer.Option(
        None, "--pii", help="Presidio-format PII set (default: $INFERWATCH_PII_EVAL; none)"
    ),
    classifier: Optional[bool] = typer.Option(
        None, "--classifier/--no-classifier", help="include the MiniLM classifier (default: when installed)"
    ),
    corpus: Optional[Path] = typer.Option(
        None,
        "--corpus",
        help="folder with the shared dev_eval.jsonl (default: $INFERWATCH_SAFETY_DATA; none: the shipped sets only)",
    ),
) -> None:
    """Every evaluation set: PII and secrets per scanner; refusals, flags, recall and category
    accuracy per labelled set under the default configuration, with 95 % intervals."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import evaluate

    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:

        def progress(label: str, total: int):
            task = bar.add_task(label, total=total)
            return lambda n=1: bar.advance(task, n)

        try:
            report = evaluate.run(pii_path=pii, use_classifier=classifier, progress=progress, corpus=corpus)
        except RuntimeError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    if as_json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = Console()
    out.print(evaluate.render(report))
    out.print(evaluate.render_sets(report))
    for note in report.notes:
        out.print(f"note: {note}")


@app.command("scan")
def scan_command(
    text: str = typer.Argument(..., help="text to scan ('-' reads stdin)"),
    direction: str = typer.Option("input", help="input or output"),
    tenant: Optional[str] = typer.Option(None, help="tenant whose policy applies"),
    classifier: Optional[bool] = typer.Option(None, "--classifier/--no-classifier"),
) -> None:
    """Scan one text with the default policy and print the verdict as JSON."""
    from .engine import SafetyEngine

    if text == "-":
        text = sys.stdin.read()
    engine = SafetyEngine(use_classifier=classifier)
    verdict = engine.scan(text, tenant, "input" if direction == "input" else "output")
    json.dump({**verdict.to_dict(), "text": verdict.text}, sys.stdout, indent=2)
    sys.stdout.write("\n")


review_app = typer.Typer(help="Review queue of flagged and blocked hits: list, claim, resolve.", no_args_is_help=True)
app.add_typer(review_app, name="review")

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML settings file (also INFERWATCH_CONFIG)")
DataDirOpt = typer.Option(None, "--data-dir", help="data directory (also INFERWATCH_DATA_DIR)")


def _engine(config: Optional[Path], data_dir: Optional[Path]):
    """The ledger database of the settings."""
    from ledger.db import create_engine_for, migrate

    if _factory is None:
        raise RuntimeError("safety.cli.set_setup_factory was not called")
    engine = create_engine_for(_factory(config, data_dir).ledger_url)
    migrate(engine)
    return engine


def _reviewer(reviewer: Optional[str]) -> str:
    import getpass

    if reviewer:
        return reviewer
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        return "cli"


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(1)


@review_app.command("list")
def review_list(
    status: Optional[str] = typer.Option(None, help="open, claimed or resolved"),
    category: Optional[str] = typer.Option(None, help="one category, e.g. prompt_injection"),
    tenant: Optional[str] = typer.Option(None, help="one tenant"),
    limit: int = typer.Option(50, min=1, help="items shown"),
    as_json: bool = typer.Option(False, "--json", help="print the items as JSON"),
    config: Optional[Path] = ConfigOpt,
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Items of the queue, oldest first (hits recorded since the last look are queued first)."""
    from . import review

    try:
        items = review.list_items(
            _engine(config, data_dir), status=status, category=category, tenant=tenant, limit=limit
        )
    except review.ReviewError as exc:
        _fail(exc)
    if as_json:
        json.dump(items, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for i in items:
        who = f" by {i['claimed_by']}" if i["claimed_by"] else ""
        label = f" {i['label']}" if i["label"] else ""
        typer.echo(
            f"#{i['id']}  {(i['created_at'] or '')[:19]}  {i['tenant']}  {i['direction']}  {i['category']}  "
            f"{i['scanner']}  {i['action']} {i['score']:.2f}  {i['status']}{who}{label}  {i['excerpt'] or ''}"
        )
    if not items:
        typer.echo("no items")


@review_app.command("claim")
def review_claim(
    item_id: int = typer.Argument(..., help="item id from `review list`"),
    reviewer: Optional[str] = typer.Option(None, help="who claims it (default: your user name)"),
    config: Optional[Path] = ConfigOpt,
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Claim an open item, so nobody else works on it."""
    from . import review

    try:
        item = review.claim(_engine(config, data_dir), item_id, _reviewer(reviewer))
    except review.ReviewError as exc:
        _fail(exc)
    typer.echo(f"claimed {item['id']} ({item['category']}, {item['tenant']}) as {item['claimed_by']}")


@review_app.command("resolve")
def review_resolve(
    item_id: int = typer.Argument(..., help="item id from `review list`"),
    label: str = typer.Option(..., help="true_positive or false_positive (tp / fp)"),
    note: Optional[str] = typer.Option(None, help="why"),
    reviewer: Optional[str] = typer.Option(None, help="who resolves it (default: your user name)"),
    config: Optional[Path] = ConfigOpt,
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Resolve an item as a true or false positive."""
    from . import review

    try:
        item = review.resolve(_engine(config, data_dir), item_id, label, note, _reviewer(reviewer))
    except review.ReviewError as exc:
        _fail(exc)
    typer.echo(f"resolved {item['id']} as {item['label']}")


@review_app.command("precision")
def review_precision(
    days: int = typer.Option(7, min=1, help="items whose request started in the last DAYS days"),
    as_json: bool = typer.Option(False, "--json"),
    config: Optional[Path] = ConfigOpt,
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Measured precision per category from resolved labels."""
    from datetime import datetime, timedelta, timezone

    from . import review

    found = review.precision_by_category(
        _engine(config, data_dir), start=datetime.now(timezone.utc) - timedelta(days=days)
    )
    rows = [p.to_dict() for p in found.values()]
    if as_json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for r in rows:
        prec = "-" if r["precision"] is None else f"{r['precision']:.3f}"
        typer.echo(f"{r['category']:<24} precision {prec}  ({r['true_positive']} TP / {r['false_positive']} FP)")


if __name__ == "__main__":  # pragma: no cover
    app()
