"""Review queue on SQLite and PostgreSQL: filled from the ledger's safety rows, claimed,
resolved, turned into precision; and its CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ledger.buckets import normalize
from ledger.db import create_engine_for, migrate
from ledger.queries import purge_raw_rows
from ledger.record import RequestRecord, SafetyHit
from ledger.store import write_records
from safety import review
from inferwatch.cli import app as cli  # the safety commands as the platform mounts them (and wires)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def record(rid: str, tenant: str, hits: list[SafetyHit], started_at: datetime = T0) -> RequestRecord:
    return RequestRecord(
        request_id=rid,
        started_at=started_at,
        tenant=tenant,
        key_id="k",
        operation="chat",
        alias="m",
        model_version="v@1",
        upstream="http://u",
        status_code=200,
        latency_s=0.1,
        safety=hits,
    )


def store(engine: Engine, *records: RequestRecord) -> None:
    with engine.begin() as conn:
        write_records(conn, list(records), normalize(None))


def seed(engine: Engine) -> None:
    store(
        engine,
        record(
            "r1",
            "acme",
            [
                SafetyHit("input", "prompt_injection", "injection", "block", 0.9, "[REDACTED:PROMPT_INJECTION]"),
                SafetyHit("input", "pii", "pii", "redact", 0.9, "[REDACTED:EMAIL_ADDRESS]"),
            ],
        ),
        record(
            "r2",
            "globex",
            [SafetyHit("output", "hate", "harmful", "flag", 0.6, "…a [REDACTED:HATE] b…")],
            T0 + timedelta(minutes=1),
        ),
        record("r3", "acme", [SafetyHit("input", "hate", "harmful", "flag", 0.7, None)], T0 + timedelta(minutes=2)),
    )


def test_sync_queues_flags_and_blocks_once(ledger_engine: Engine):
    seed(ledger_engine)
    assert review.sync(ledger_engine) == 3  # the redaction is not queued
    assert review.sync(ledger_engine) == 0
    items = review.list_items(ledger_engine)
    assert [(i["request_id"], i["category"], i["action"], i["status"]) for i in items] == [
        ("r1", "prompt_injection", "block", "open"),
        ("r2", "hate", "flag", "open"),
        ("r3", "hate", "flag", "open"),
    ]
    assert items[0]["tenant"] == "acme" and items[0]["created_at"] == T0.isoformat()
    assert items[1]["excerpt"] == "…a [REDACTED:HATE] b…" and items[1]["direction"] == "output"
    store(
        ledger_engine, record("r1", "acme", [SafetyHit("input", "hate", "harmful", "flag")])
    )  # a replay: ignored by the ledger
    assert review.sync(ledger_engine) == 0
    assert [i["request_id"] for i in review.list_items(ledger_engine, category="hate", tenant="acme")] == ["r3"]
    # an item outlives the raw request row's retention
    with Session(ledger_engine) as s, s.begin():
        assert purge_raw_rows(s, T0 + timedelta(hours=1)) == 3
    assert len(review.list_items(ledger_engine)) == 3
    # after a purge SQLite may reuse safety_hits ids: new hits are still queued
    store(
        ledger_engine,
        record("r4", "acme", [SafetyHit("input", "jailbreak", "injection", "block", 0.9)], T0 + timedelta(days=1)),
    )
    assert review.sync(ledger_engine) == 1
    assert [i["request_id"] for i in review.list_items(ledger_engine, category="jailbreak")] == ["r4"]


def test_claim_resolve_and_precision(ledger_engine: Engine):
    seed(ledger_engine)
    ids = {i["request_id"]: i["id"] for i in review.list_items(ledger_engine)}
    a = review.claim(ledger_engine, ids["r2"], "alice")
    assert (a["status"], a["claimed_by"]) == ("claimed", "alice") and a["claimed_at"]
    assert review.claim(ledger_engine, ids["r2"], "alice")["status"] == "claimed"  # again by the same reviewer: fine
    with pytest.raises(review.ReviewError) as e:
        review.claim(ledger_engine, ids["r2"], "bob")
    assert e.value.status == 409 and "alice" in e.value.message
    with pytest.raises(review.ReviewError) as e:
        review.resolve(ledger_engine, ids["r2"], "maybe", None, "alice")
    assert e.value.status == 400
    with pytest.raises(review.ReviewError) as e:
        review.claim(ledger_engine, 10_000, "alice")
    assert e.value.status == 404
    with pytest.raises(review.ReviewError) as e:  # another tenant's admin cannot see it
        review.claim(ledger_engine, ids["r1"], "eve", tenant="globex")
    assert e.value.status == 404
    done = review.resolve(ledger_engine, ids["r2"], "fp", "satire", "alice")
    assert (done["status"], done["label"], done["note"], done["resolved_by"]) == (
        "resolved",
        "false_positive",
        "satire",
        "alice",
    )
    with pytest.raises(review.ReviewError) as e:
        review.resolve(ledger_engine, ids["r2"], "tp", None, "alice")
    assert e.value.status == 409
    direct = review.resolve(ledger_engine, ids["r3"], "true_positive", None, "bob")  # straight from open
    assert direct["claimed_by"] == "bob"
    review.resolve(ledger_engine, ids["r1"], "true_positive", None, "bob")
    p = review.precision_by_category(ledger_engine)
    assert (p["hate"].true_positive, p["hate"].false_positive, p["hate"].precision) == (1, 1, 0.5)
    assert p["prompt_injection"].precision == 1.0
    assert review.precision_by_category(ledger_engine, tenant="globex")["hate"].precision == 0.0
    assert set(review.precision_by_category(ledger_engine, start=T0 + timedelta(minutes=2))) == {"hate"}
    assert review.precision_by_category(ledger_engine, end=T0) == {}
    assert review.counts(ledger_engine) == {"open": 0, "claimed": 0, "resolved": 3}
    assert [i["id"] for i in review.list_items(ledger_engine, status="resolved", category="hate")] == [
        ids["r2"],
        ids["r3"],
    ]
    with pytest.raises(review.ReviewError):
        review.list_items(ledger_engine, status="pending")


def test_cli_list_claim_resolve(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'data' / 'ledger.db'}"
    (tmp_path / "data").mkdir()
    migrate(url)
    engine = create_engine_for(url)
    try:
        seed(engine)
    finally:
        engine.dispose()
    cfg = tmp_path / "iw.yaml"
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "data")}))
    run = CliRunner().invoke
    out = run(cli, ["safety", "review", "list", "--status", "open", "--json", "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    items = json.loads(out.output)
    assert [i["request_id"] for i in items] == ["r1", "r2", "r3"]
    first = str(items[0]["id"])
    out = run(cli, ["safety", "review", "claim", first, "--reviewer", "carol", "--config", str(cfg)])
    assert out.exit_code == 0 and "carol" in out.output
    out = run(cli, ["safety", "review", "claim", first, "--reviewer", "dave", "--config", str(cfg)])
    assert out.exit_code == 1 and "already claimed by carol" in out.output
    out = run(
        cli, ["safety", "review", "resolve", first, "--label", "tp", "--note", "real attack", "--config", str(cfg)]
    )
    assert out.exit_code == 0 and "true_positive" in out.output
    out = run(cli, ["safety", "review", "list", "--status", "resolved", "--json", "--config", str(cfg)])
    [resolved] = json.loads(out.output)
    assert (resolved["id"], resolved["note"], resolved["claimed_by"]) == (int(first), "real attack", "carol")
    out = run(cli, ["safety", "review", "precision", "--days", "3650", "--json", "--config", str(cfg)])
    assert json.loads(out.output) == [
        {"category": "prompt_injection", "true_positive": 1, "false_positive": 0, "resolved": 1, "precision": 1.0}
    ]
    out = run(cli, ["safety", "review", "list", "--config", str(cfg)])
    assert out.exit_code == 0 and "globex" in out.output
