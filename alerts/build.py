"""`build(specs, out_dir)`: every alerting artifact for a set of SLOs, and their checks.

out_dir/rules.yaml, out_dir/alertmanager.yaml, out_dir/tests/*.yaml (promtool unit tests),
out_dir/runbooks/*.md.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from alerts.alertmanager import alertmanager_yaml
from alerts.config import AlertsConfig
from alerts.promtool_tests import write_tests
from alerts.rules import render_rules
from alerts.runbooks import write_runbooks
from slo.model import SLO
from slo.spec import check_unique, load_specs, shared_traffic


@dataclass
class BuildResult:
    rules: Path
    alertmanager: Path
    tests: list[Path]
    runbooks: list[Path]
    warnings: list[str] = field(default_factory=list)  # tests left out, SLOs of two services on the same traffic

    def files(self) -> list[Path]:
        return [self.rules, self.alertmanager, *self.tests, *self.runbooks]


@dataclass
class CheckResult:
    ok: bool
    output: str
    commands: list[list[str]] = field(default_factory=list)


def build(
    specs: Sequence[SLO] | Iterable[str | Path], out_dir: str | Path, config: AlertsConfig | None = None
) -> BuildResult:
    """Write rules, Alertmanager config, promtool tests and runbooks for `specs` (SLO models
    or spec file paths) into `out_dir`."""
    items = list(specs)
    slos = items if all(isinstance(s, SLO) for s in items) else load_specs(items)  # type: ignore[arg-type]
    check_unique(slos)  # type: ignore[arg-type]
    cfg = config or AlertsConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rules = out / "rules.yaml"
    rules.write_text(render_rules(slos, cfg).to_yaml(), encoding="utf-8")  # type: ignore[arg-type]
    am = out / "alertmanager.yaml"
    am.write_text(alertmanager_yaml(cfg, slos), encoding="utf-8")  # type: ignore[arg-type]
    tests_dir = out / "tests"
    for old in tests_dir.glob("*.yaml") if tests_dir.is_dir() else ():  # synthetic-rules.yaml too
        old.unlink()  # tests of SLOs that no longer exist would point at missing rules
    warnings: list[str] = shared_traffic(slos)  # type: ignore[arg-type]
    tests = write_tests(slos, tests_dir, cfg, warnings=warnings)  # type: ignore[arg-type]
    runbooks = write_runbooks(slos, out / "runbooks")  # type: ignore[arg-type]
    return BuildResult(rules, am, tests, runbooks, warnings)


def promtool_path() -> str | None:
    return shutil.which("promtool")


def check(result: BuildResult, promtool: str | None = None, timeout_s: float = 600) -> CheckResult:
    """`promtool check rules` and `promtool test rules` on a build's output."""
    tool = promtool or promtool_path()
    if tool is None:
        return CheckResult(False, "promtool not found on PATH (install the 'prometheus' package)")
    cmds = [[tool, "check", "rules", str(result.rules)], [tool, "test", "rules", *(str(p) for p in result.tests)]]
    outputs, ok = [], True
    for cmd in cmds:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        outputs.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        ok = ok and proc.returncode == 0
    return CheckResult(ok, "\n".join(outputs), cmds)
