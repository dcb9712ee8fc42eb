"""The seed of the schema fuzz: INFERWATCH_FUZZ_SEED if set (to replay a failure), else one
derived from the git commit (each commit fuzzes another slice, every run of it the same one),
else a fixed seed outside a git checkout."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

ENV = "INFERWATCH_FUZZ_SEED"
FIXED = 0
ROOT = Path(__file__).resolve().parents[2]


def fuzz_seed(cwd: Path = ROOT, environ: Mapping[str, str] = os.environ) -> tuple[int, str]:
    """The seed and where it came from."""
    given = environ.get(ENV, "").strip()
    if given:
        try:
            return int(given), ENV
        except ValueError:
            raise ValueError(f"{ENV} must be an integer, not {given!r}") from None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout
        return int(head.strip()[:8], 16), f"commit {head.strip()[:12]}"
    except (OSError, subprocess.SubprocessError, ValueError):
        return FIXED, "fixed: not a git checkout"


def replay_hint(seed: int) -> str:
    return f"replay: {ENV}={seed} ./dev test tests/fuzz"
