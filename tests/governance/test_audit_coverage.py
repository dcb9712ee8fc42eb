"""Governance actions outside the admin API land in the audit chain too: rollout steps,
pauses, rollbacks, and review-queue decisions, each with who and what."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from ledger import audit
from safety import review
from tests.canary.test_rollout import World
from tests.safety.test_review import seed


def test_rollout_lifecycle_is_audited_in_order(ledger_engine: Engine, tmp_path: Path) -> None:
    w = World(ledger_engine, tmp_path)
    r = w.start()
    w.ctl.pause(r.id, by="key-oncall")
    w.ctl.resume(r.id, by="key-oncall")
    for _ in range(20):  # a canary 80% slower: the controller rolls it back by itself
        w.step(slow=1.8)
        if w.ctl.get(r.id).state != "running":
            break
    assert w.ctl.get(r.id).state == "rolled_back"

    rows = audit.entries(ledger_engine, action="rollout.", target=r.id)
    assert [e["action"] for e in rows] == [
        "rollout.started",
        "rollout.paused",
        "rollout.resumed",
        "rollout.rolled_back",
    ]
    assert [e["actor"] for e in rows][1:3] == ["key-oncall", "key-oncall"]
    assert rows[-1]["actor"] == "system" and rows[-1]["after"]["state"] == "rolled_back"
    assert rows[-1]["after"]["why"]["verdict"] == "fail" and "latency" in rows[-1]["after"]["why"]["reason"]
    assert audit.verify(ledger_engine).ok


def test_review_decisions_are_audited(ledger_engine: Engine) -> None:
    seed(ledger_engine)
    review.sync(ledger_engine)
    item = review.list_items(ledger_engine, status="open")[0]
    review.claim(ledger_engine, item["id"], "alice")
    review.resolve(ledger_engine, item["id"], "false_positive", "satire", "alice")

    rows = audit.entries(ledger_engine, action="review.", target=str(item["id"]))
    assert [(e["action"], e["actor"]) for e in rows] == [("review.claim", "alice"), ("review.resolve", "alice")]
    assert rows[-1]["after"] == {"label": "false_positive", "note": "satire"}
    assert audit.verify(ledger_engine).ok
