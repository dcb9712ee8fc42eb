"""`inferwatch serve` as a real process, for fault and scale-out tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.servers import ROOT, Proc, free_port, spawn_logged, wait_ready

IW = [sys.executable, "-m", "inferwatch.cli"]


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def create_key(config: Path, tenant: str) -> str:
    """`inferwatch keys create` against the config's ledger; returns the secret."""
    out = subprocess.run(
        [*IW, "keys", "create", "--tenant", tenant, "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)["key"]


def start_gateway(tmp: Path, settings: dict[str, Any], name: str = "gateway") -> tuple[Proc, Path]:
    """Start `inferwatch serve --config` with `settings` (port chosen here); returns the
    process and its config file."""
    port = free_port()
    config = write_config(
        tmp / f"{name}.yaml", {"port": port, "safety": {"enabled": False}, "ledger_max_delay_s": 0.05, **settings}
    )
    log = tmp / f"{name}.log"
    proc = spawn_logged(
        [*IW, "serve", "--config", str(config)], log, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, log)
    return Proc(url, proc, log), config
