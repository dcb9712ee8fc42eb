"""Writing and listing reports, the API, the CLI and the scheduled job with a real webhook receiver."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from ledger.db import create_engine_for
from inferwatch.cli import app as cli  # the report command as the platform mounts it
from reports.config import ReportsConfig
from reports.jobs import register_report_job
from reports.model import BudgetLine
from reports.router import build_reports_router
from reports.service import ReportService
from reports.weeks import Week
from tests.reports import _week as W
from tests.servers import free_port
from tests.slo._support import Receiver

KEYS = {
    "Bearer admin": SimpleNamespace(tenant=None, key_id="admin", is_admin=True),
    "Bearer acme": SimpleNamespace(tenant="acme", key_id="k_acme", is_admin=False),
}
ADMIN = {"authorization": "Bearer admin"}


async def authenticate(authorization: str | None) -> SimpleNamespace:
    if authorization not in KEYS:
        raise HTTPException(401, "bad key")
    return KEYS[authorization]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory whose SQLite ledger holds the synthetic weeks."""
    engine = W.data_dir_ledger(tmp_path, monkeypatch)
    W.fill(engine)
    engine.dispose()
    return tmp_path


@pytest.fixture
def engine(data_dir: Path) -> Iterator[Engine]:
    e = create_engine_for(f"sqlite:///{(data_dir / 'ledger.db').resolve()}")
    yield e
    e.dispose()


def service(engine: Engine, directory: Path, **config: object) -> ReportService:
    return ReportService(engine, ReportsConfig(**config), directory, W.SLOS, clock=lambda: W.AFTER)


def test_api_lists_and_serves_reports_to_admins_only(engine: Engine, tmp_path: Path) -> None:
    svc = service(engine, tmp_path / "reports")
    svc.write(svc.build())
    (tmp_path / "reports" / "secret.txt").write_text("TOP-SECRET")
    (tmp_path / "outside.json").write_text('{"TOP-SECRET": 1}')
    app = FastAPI()
    app.include_router(build_reports_router(svc, authenticate))
    with TestClient(app) as c:
        listed = c.get("/v1/reports", headers=ADMIN).json()["data"]
        assert [(f["name"], f["week"], f["format"]) for f in listed] == [
            ("weekly-2026-W47.md", "2026-W47", "md"),
            ("weekly-2026-W47.json", "2026-W47", "json"),
            ("weekly-2026-W47.html", "2026-W47", "html"),
        ]
        for name, media in (
            ("weekly-2026-W47.html", "text/html"),
            ("weekly-2026-W47.md", "text/markdown"),
            ("weekly-2026-W47.json", "application/json"),
        ):
            r = c.get(f"/v1/reports/{name}", headers=ADMIN)
            assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert c.get("/v1/reports/weekly-2026-W47.json", headers=ADMIN).json()["week"] == "2026-W47"

        assert c.get("/v1/reports", headers={"authorization": "Bearer acme"}).status_code == 403
        denied = c.get("/v1/reports/weekly-2026-W47.html", headers={"authorization": "Bearer acme"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_required"
        assert c.get("/v1/reports").status_code == 401
        missing = c.get("/v1/reports/weekly-2026-W46.html", headers=ADMIN)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "report_not_found"
        for name in (
            "secret.txt",
            "weekly-2026-W46.html",
            "..%2Foutside.json",
            "..%2F..%2Fetc%2Fpasswd",
            "%2Fetc%2Fpasswd",
        ):
            r = c.get(f"/v1/reports/{name}", headers=ADMIN)
            assert r.status_code == 404 and "TOP-SECRET" not in r.text, name


def test_cli_writes_the_chosen_week_and_formats(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli,
        [
            "report",
            "weekly",
            "--week",
            "2026-W47",
            "--out",
            str(out),
            "--format",
            "md,json",
            "--data-dir",
            str(data_dir),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["week"] == "2026-W47" and body["totals"]["cost_usd"] == pytest.approx(W.THIS_TOTAL)
    assert sorted(p.name for p in out.iterdir()) == ["weekly-2026-W47.json", "weekly-2026-W47.md"]

    # default: last complete week, default folder
    r = CliRunner().invoke(cli, ["report", "weekly", "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    week = Week.last_complete(datetime.now(timezone.utc))
    assert r.stdout.split() == [str(data_dir / "reports" / f"weekly-{week}.{f}") for f in ("html", "md", "json")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-W99"], "has no ISO week 99"),
        (["--week", "yesterday"], "expected an ISO week"),
        (["--week", "2099-W01"], "has not started"),
        (["--format", "pdf"], "unknown format pdf"),
    ],
)
def test_cli_usage_errors_exit_2(data_dir: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(cli, ["report", "weekly", "--data-dir", str(data_dir), *args])
    assert r.exit_code == 2 and message in r.stderr


def test_scheduled_job_writes_the_report_and_posts_a_summary(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver()
    receiver.failures = [500]  # the first post to it fails
    dead = f"http://127.0.0.1:{free_port()}/hook"
    svc = service(engine, tmp_path / "reports", webhooks=[receiver.url, dead, receiver.url], webhook_timeout_s=5)
    scheduler = BackgroundScheduler(timezone="UTC")
    try:
        job = register_report_job(scheduler, svc, svc.config)
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "9", "0")
        wed = datetime(2026, 11, 18, 15, tzinfo=timezone.utc)
        assert job.trigger.get_next_fire_time(None, wed) == datetime(2026, 11, 23, 9, tzinfo=timezone.utc)

        with caplog.at_level(logging.WARNING, logger="reports.service"):
            job.func()  # what the scheduler runs: must not raise on the failing webhooks
    finally:
        receiver.close()
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "weekly-2026-W47.html",
        "weekly-2026-W47.json",
        "weekly-2026-W47.md",
    ]
    assert receiver.attempts == 2 and len(receiver.payloads) == 1
    sent = receiver.payloads[0]
    assert sent["week"] == "2026-W47" and "$119.20" in sent["text"] and sent["slos_missed"] == ["gw-avail"]
    assert "/v1/reports/weekly-2026-W47.html" in sent["files"]
    assert sum("webhook" in m for m in caplog.messages) == 2  # the 500 and the refused connection


def test_job_follows_the_configured_day_and_hour_and_can_be_off(engine: Engine, tmp_path: Path) -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    cfg = ReportsConfig(weekday="fri", hour=17, minute=30)
    job = register_report_job(scheduler, service(engine, tmp_path), cfg)
    assert job.trigger.get_next_fire_time(None, datetime(2026, 11, 18, tzinfo=timezone.utc)) == datetime(
        2026, 11, 20, 17, 30, tzinfo=timezone.utc
    )
    assert register_report_job(scheduler, service(engine, tmp_path), ReportsConfig(enabled=False)) is None


def test_budgets_and_cache_come_from_their_providers(engine: Engine, tmp_path: Path) -> None:
    asked: list[tuple[datetime, datetime]] = []

    def budgets(start: datetime, until: datetime) -> list[BudgetLine]:
        asked.append((start, until))
        return [
            BudgetLine(
                tenant="acme",
                budget="month-spend",
                period="month",
                period_start=start,
                period_end=until,
                counted_until=until,
                limit=500,
                used=380,
            )
        ]

    svc = ReportService(
        engine,
        ReportsConfig(),
        tmp_path,
        budgets=budgets,
        cache_enabled=True,
        miss_cost=lambda alias, version, prompt, completion: 1.0,
        clock=lambda: W.AFTER,
    )
    r = svc.build()
    assert asked == [(W.WEEK.start, W.WEEK.end)] and r.cost.budgets[0].remaining == 120  # type: ignore[index]
    # the week's requests were not cacheable (no lookups): no hit rate rather than 0 %
    assert r.cache is not None
    assert (r.cache.totals.hits, r.cache.totals.hit_rate, r.cache.totals.saved_usd) == (0, None, 0)
