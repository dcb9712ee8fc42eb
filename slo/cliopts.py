"""Spec-file arguments shared by `inferwatch slo ...` and `inferwatch alerts build`.

Both `--specs a.yaml --specs b.yaml` and `--specs a.yaml b.yaml` work: click gives an option
one value, so the files after the first land in a trailing FILES argument, joined here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

SpecsOpt = Annotated[
    Optional[list[Path]], typer.Option("--specs", help="SLO spec files: --specs F... or --specs once per file.")
]
MoreSpecsArg = Annotated[
    Optional[list[Path]],
    typer.Argument(help="More spec files (what follows --specs F).", show_default=False, metavar="SPEC"),
]


def spec_paths(specs: list[Path] | None, more: list[Path] | None) -> list[Path]:
    """Every spec file given, in order (empty when none was)."""
    return [*(specs or []), *(more or [])]
