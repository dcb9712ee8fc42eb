"""Run promtool from tests: skipped without it, a failure under CI (which installs it)."""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from alerts.rules import dump_yaml


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool not found on PATH (apt-get install prometheus)"
        if in_ci():
            pytest.fail(reason + "; CI must install it", pytrace=False)
        pytest.skip(reason)
    return path


def run(promtool: str, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def check_rules(promtool: str, rules: Path) -> None:
    proc = run(promtool, "check", "rules", rules)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules(promtool: str, files: list[Path]) -> None:
    """`promtool test rules` on each file, two at a time; all must pass."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        procs = list(pool.map(lambda f: run(promtool, "test", "rules", f), files))
    failures = [f"{f}:\n{p.stdout[-4000:]}{p.stderr[-2000:]}" for f, p in zip(files, procs, strict=True) if p.returncode]
    assert not failures, "\n".join(failures)


test_rules.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def write_test(tmp: Path, name: str, rules_text: str, test: dict[str, Any]) -> Path:
    """Write rules and one promtool test file that uses them; returns the test file."""
    (tmp / f"{name}.rules.yaml").write_text(rules_text, encoding="utf-8")
    path = tmp / f"{name}.test.yaml"
    path.write_text(dump_yaml({"rule_files": [f"{name}.rules.yaml"], "evaluation_interval": "1m", **test}),
                    encoding="utf-8")
    return path
