"""`python -m inference`: the worker alone, for GPU nodes with nothing else of ours installed.

Flags mirror WorkerConfig's fields (`--max-batch-size 32`, `--fault.error-rate 0.1`).
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel

from .config import WorkerConfig
from .serve import run


def _flags(model: type[BaseModel], parser: argparse.ArgumentParser, prefix: str = "") -> None:
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            _flags(ann, parser, f"{prefix}{name}.")
            continue
        parser.add_argument(
            "--" + (prefix + name).replace("_", "-"), dest=prefix + name, default=None, help=field.description
        )


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m inference", description="inferwatch inference worker")
    _flags(WorkerConfig, parser)
    run(WorkerConfig.model_validate(_nest(vars(parser.parse_args()))))


if __name__ == "__main__":
    main()
