from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from alerts.alertmanager import alertmanager_yaml, render_alertmanager
from alerts.config import AlertsConfig

CFG = AlertsConfig(page_webhook_url="https://pager.example/hook", ticket_webhook_url="https://tickets.example/hook")


def test_receivers_routes_and_grouping() -> None:
    am = render_alertmanager(CFG)
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in am["receivers"]}
    assert urls == {"page": "https://pager.example/hook", "ticket": "https://tickets.example/hook"}
    assert am["route"]["group_by"] == ["model_alias", "model_version"]
    routes = {r["receiver"]: r["matchers"] for r in am["route"]["routes"]}
    assert routes == {"page": ['severity="page"'], "ticket": ['severity="ticket"']}


def test_pages_inhibit_tickets_of_the_same_slo_only() -> None:
    (rule,) = render_alertmanager(CFG)["inhibit_rules"]
    assert rule["equal"] == ["sloth_id"]
    assert 'severity="page"' in rule["source_matchers"] and 'severity="ticket"' in rule["target_matchers"]
    # without a sloth_id requirement, an operational page would inhibit every operational ticket
    assert 'sloth_id=~".+"' in rule["source_matchers"] and 'sloth_id=~".+"' in rule["target_matchers"]


def test_file_documents_maintenance_silences() -> None:
    text = alertmanager_yaml(CFG)
    assert "Maintenance silences" in text and "amtool silence add" in text and "mute_time_intervals" in text
    assert yaml.safe_load(text) == render_alertmanager(CFG)


def test_amtool_accepts_config_and_routes(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed (Debian package prometheus-alertmanager)")
    path = tmp_path / "alertmanager.yaml"
    path.write_text(alertmanager_yaml(CFG))
    proc = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for severity in ("page", "ticket"):
        proc = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={path}", f"severity={severity}", "model_alias=chat"],
            capture_output=True,
            text=True,
        )
        assert proc.stdout.strip() == severity, proc.stdout + proc.stderr
