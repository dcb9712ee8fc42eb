from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from canary.cli import app as canary_app
from canary.router import build_canary_router
from canary.service import CanaryService
from ledger.db import create_engine_for, migrate
from tests.canary._ledger import T0, FakeClock, traffic
from tests.canary.test_router import authenticate
from tests.servers import ThreadedServer

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("canary-cli")
    url = f"sqlite:///{tmp / 'l.db'}"
    migrate(url)
    engine = create_engine_for(url)
    traffic(engine, tmp / "s1", T0, 600, 600, 300, slow=1.6, seed=21, alias="worse")
    traffic(engine, tmp / "s2", T0, 600, 1200, 600, seed=22, alias="same")
    traffic(engine, tmp / "s3", T0, 600, 5, 5, seed=23, alias="sparse")
    svc = CanaryService(engine, clock=FakeClock(T0 + timedelta(minutes=10)), ingest_lag_s=0, notify=lambda u, p: None)
    app = FastAPI()
    app.include_router(build_canary_router(svc, authenticate))
    with ThreadedServer(app) as s:
        yield s.url
    engine.dispose()


def gate(url: str, alias: str, *extra: str, key: str = "admin"):
    return runner.invoke(
        canary_app,
        [
            "gate",
            "--url",
            url,
            "--key",
            key,
            "--alias",
            alias,
            "--baseline",
            "v1",
            "--canary",
            "v2",
            "--profile",
            "latency-only",
            *extra,
        ],
    )


@pytest.mark.parametrize(
    ("alias", "code", "verdict"), [("worse", 1, "fail"), ("same", 0, "pass"), ("sparse", 2, "inconclusive")]
)
def test_gate_exit_codes(server: str, alias: str, code: int, verdict: str) -> None:
    r = gate(server, alias, "--window-minutes", "10", "--json")
    assert r.exit_code == code, r.output
    body = json.loads(r.output)
    assert body["verdict"] == verdict and body["decided"]
    assert body["result"]["metrics"][0]["baseline"]["n"] > 0


def test_gate_prints_the_per_metric_table(server: str) -> None:
    r = gate(server, "worse", "--window-minutes", "10")
    assert r.exit_code == 1
    assert "e2e latency" in r.output and "FAIL" in r.output and "High" in r.output


def test_gate_errors_exit_3(server: str) -> None:
    assert gate(server, "worse", "--window-minutes", "10", key="nope").exit_code == 3
    assert gate(server, "worse").exit_code == 3  # neither a window nor live
    assert gate("http://127.0.0.1:9", "worse", "--window-minutes", "10").exit_code == 3


def test_rollout_commands(server: str) -> None:
    base = ["--url", server, "--key", "admin"]
    r = runner.invoke(
        canary_app,
        [
            "rollout",
            "start",
            *base,
            "--alias",
            "ro",
            "--baseline",
            "v1",
            "--canary",
            "v2",
            "--steps",
            "10,50",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    rid = json.loads(r.output)["id"]
    r = runner.invoke(canary_app, ["rollout", "status", *base, rid])
    assert r.exit_code == 0 and "running" in r.output and "[10%]" in r.output
    for cmd, state in (("pause", "paused"), ("resume", "running"), ("abort", "aborted")):
        r = runner.invoke(canary_app, ["rollout", cmd, *base, rid, "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["state"] == state
    assert runner.invoke(canary_app, ["rollout", "abort", *base, rid]).exit_code == 3
    r = runner.invoke(canary_app, ["rollout", "status", *base])
    assert r.exit_code == 0 and rid in r.output and "aborted" in r.output
