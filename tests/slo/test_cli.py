from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.db import create_engine_for, migrate
from inferwatch.cli import app as inferwatch_cli  # `slo validate` is mounted by the root
from slo.cli import app

from tests.slo._support import outage, rec, slos, write

SPECS = """\
service: svc
slos:
  - {name: avail, objective: 99, sli: {availability: {}}}
  - {name: safety, objective: 99.9, sli: {safety_incidents: {direction: output}}}
"""


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("INFERWATCH_CONFIG", "INFERWATCH_DATABASE_URL", "INFERWATCH_DATA_DIR", "INFERWATCH_SLO_SPECS"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "specs.yaml").write_text(SPECS)
    return tmp_path


def ledger(data_dir: Path, records: list) -> None:
    url = f"sqlite:///{(data_dir / 'ledger.db').resolve()}"
    migrate(url)
    engine = create_engine_for(url)
    write(engine, records, slos(SPECS))
    engine.dispose()


def run(data_dir: Path, *extra: str):
    return CliRunner().invoke(
        app, ["status", "--data-dir", str(data_dir), "--specs", str(data_dir / "specs.yaml"), *extra]
    )


def last_hour() -> datetime:
    """The start of the minute an hour ago: the CLI evaluates at the real time."""
    return datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=60)


def test_json_status_and_exit_1_while_paging(data_dir: Path) -> None:
    ledger(data_dir, outage(base=last_hour()))  # the last 10 minutes are all 503s
    res = run(data_dir, "--json")
    assert res.exit_code == 1, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["avail"]["status"] == "page" and rows["avail"]["alerts"]["page"]["firing"]
    assert rows["avail"]["total"] >= 590  # an hour of 10 requests a minute (the clock may tick a minute)
    assert rows["safety"]["status"] == "ok" and rows["safety"]["sli"] == 1.0  # 503s are no safety incidents


def test_table_and_exit_0_when_healthy(data_dir: Path) -> None:
    ledger(data_dir, [rec(m, base=last_hour()) for m in range(60)])
    res = run(data_dir)
    assert res.exit_code == 0, res.output
    assert "avail" in res.stdout and "100.000%" in res.stdout and "burn 1h" in res.stdout
    assert "safety" in res.stdout and "unsupported" not in res.stdout


def test_bad_specs_exit_2(data_dir: Path) -> None:
    (data_dir / "bad.yaml").write_text("slos:\n  - {name: x, objective: 150, sli: {availability: {}}}\n")
    res = CliRunner().invoke(app, ["status", "--data-dir", str(data_dir), "--specs", str(data_dir / "bad.yaml")])
    assert res.exit_code == 2 and "bad.yaml" in res.output


def test_help_documents_the_exit_codes() -> None:
    res = CliRunner().invoke(app, ["status", "--help"])
    assert res.exit_code == 0 and "1 when any page alert fires" in res.output


def test_validate_checks_each_file_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.alerts._promtool import require_promtool

    require_promtool()
    good, bad, dup = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "dup.yaml"
    good.write_text(SPECS)
    bad.write_text("service: svc\nslos:\n  - {name: x, objective: 120, sli: {availability: {}}}\n")
    dup.write_text("service: svc\nslos:\n  - {name: avail, objective: 99.9, sli: {availability: {}}}\n")
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    ok = CliRunner().invoke(inferwatch_cli, ["slo", "validate", str(good)])
    assert ok.exit_code == 0, ok.output
    assert f"valid: {good} (2 SLOs)" in ok.output and "1 valid, 0 invalid" in ok.output
    res = CliRunner().invoke(inferwatch_cli, ["slo", "validate", str(good), str(bad)])
    assert res.exit_code == 1 and f"{bad}:3:" in res.output and "1 valid, 1 invalid" in res.output
    res = CliRunner().invoke(inferwatch_cli, ["slo", "validate", str(good), str(dup)])
    assert res.exit_code == 1 and "duplicate SLO id 'svc-avail'" in res.output
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_validate_fails_when_promtool_rejects_the_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts import rules
    from tests.alerts._promtool import require_promtool

    require_promtool()
    (tmp_path / "s.yaml").write_text(SPECS)
    real = rules.render_rules

    def broken(*a, **kw):  # type: ignore[no-untyped-def]
        out = real(*a, **kw)
        out.groups[0]["rules"][0]["expr"] = "sum(rate(x[5m])"  # unbalanced: promtool must say so
        return out

    monkeypatch.setattr(rules, "render_rules", broken)
    res = CliRunner().invoke(inferwatch_cli, ["slo", "validate", str(tmp_path / "s.yaml")])
    assert res.exit_code == 1 and "promtool check rules failed" in res.output
    ok = CliRunner().invoke(inferwatch_cli, ["slo", "validate", "--skip-promtool", str(tmp_path / "s.yaml")])
    assert ok.exit_code == 0, ok.output
