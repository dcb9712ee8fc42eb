"""`inferwatch slo validate FILE...`: parse, render and promtool-check SLO specs, writing
nothing. It renders rules, so it lives here (alerts may import slo, not the reverse); the
composition root mounts it on the `slo` sub-app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alerts import rules

EXIT_INVALID = 1  # as `sloth validate`: 0 when every file is valid, 1 when any is not

FilesArg = Annotated[list[Path], typer.Argument(help="SLO spec files to validate.", metavar="FILE")]
SkipPromtoolOpt = Annotated[bool, typer.Option("--skip-promtool", help="Parse and render only.")]


def validate(files: FilesArg, skip_promtool: SkipPromtoolOpt = False) -> None:
    """Parse each spec file, render its rules and `promtool check rules` them; writes nothing.

    Exit status: 0 when every file is valid; 1 when any file is invalid (or promtool is missing).
    """
    import shutil
    import subprocess
    import tempfile

    from slo.spec import check_unique, load_specs, shared_traffic
    from slo.specfields import SpecError

    promtool = None if skip_promtool else shutil.which("promtool")
    if not skip_promtool and promtool is None:
        typer.secho(
            "error: promtool not found on PATH (install prometheus, or pass --skip-promtool)", fg="red", err=True
        )
        raise typer.Exit(EXIT_INVALID)
    invalid, every = 0, []
    for f in files:
        try:
            slos = load_specs([f])
            rendered = rules.render_rules(slos, operational=False).to_yaml()
        except SpecError as e:
            invalid += 1
            typer.secho(f"invalid: {e}", fg="red", err=True)
            continue
        if promtool is not None:
            with tempfile.TemporaryDirectory(prefix="inferwatch-validate-") as tmp:
                path = Path(tmp) / "rules.yaml"
                path.write_text(rendered, encoding="utf-8")
                proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
            if proc.returncode != 0:
                invalid += 1
                typer.secho(
                    f"invalid: {f}: promtool check rules failed:\n{proc.stdout}{proc.stderr}", fg="red", err=True
                )
                continue
        every += slos
        typer.echo(f"valid: {f} ({len(slos)} SLOs)")
    for note in shared_traffic(every):
        typer.secho(f"warning: {note}", fg="yellow", err=True)
    duplicates = False
    try:
        check_unique(every)
    except SpecError as e:
        duplicates = True
        typer.secho(f"invalid: {e}", fg="red", err=True)
    typer.echo(
        f"validated {len(files)} files: {len(files) - invalid} valid, {invalid} invalid"
        + (", duplicate SLO ids across files" if duplicates else "")
    )
    if invalid or duplicates:
        raise typer.Exit(EXIT_INVALID)
