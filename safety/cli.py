"""``inferwatch safety ...`` commands (the lead mounts ``app`` on the main CLI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Safety scanners: evaluation and checks.", no_args_is_help=True)


@app.command("eval")
def eval_command(
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
    pii: Optional[Path] = typer.Option(None, "--pii", help="Presidio-format PII set (default: ../shared/data/pii/synth_dataset_v2.json)"),
    classifier: Optional[bool] = typer.Option(None, "--classifier/--no-classifier", help="include the MiniLM classifier (default: when installed)"),
) -> None:
    """Precision, recall and F1 per scanner and category; false-positive rate on benign sets."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import evaluate

    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:

        def progress(label: str, total: int):
            task = bar.add_task(label, total=total)
            return lambda n=1: bar.advance(task, n)

        try:
            report = evaluate.run(pii_path=pii, use_classifier=classifier, progress=progress)
        except RuntimeError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2)
    if as_json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = Console()
    out.print(evaluate.render(report))
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


if __name__ == "__main__":  # pragma: no cover
    app()
