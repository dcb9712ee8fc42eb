from __future__ import annotations

import json

from typer.testing import CliRunner

from safety import evaluate
from safety.cli import app


def test_row_metrics():
    r = evaluate.Row("d", "s", "c", tp=8, fp=2, fn=2, tn=88)
    assert r.precision == 0.8 and r.recall == 0.8 and abs(r.f1 - 0.8) < 1e-9 and abs(r.fpr - 2 / 90) < 1e-9
    assert evaluate.Row("d", "s", "c").precision is None


def test_pii_eval_counts_spans(tmp_path):
    items = [
        {"full_text": "mail bob@example.com now", "spans": [{"entity_type": "EMAIL_ADDRESS", "start_position": 5, "end_position": 20}]},
        {"full_text": "card 4111 1111 1111 1112 is fake", "spans": [{"entity_type": "CREDIT_CARD", "start_position": 5, "end_position": 24}]},
        {"full_text": "IBAN GB82WEST12345698765432", "spans": []},
    ]
    path = tmp_path / "pii.json"
    path.write_text(json.dumps(items))
    rows = {r.category: r for r in evaluate.eval_pii(path)}
    assert (rows["EMAIL_ADDRESS"].tp, rows["EMAIL_ADDRESS"].fp, rows["EMAIL_ADDRESS"].fn) == (1, 0, 0)
    assert rows["CREDIT_CARD"].fn == 1 and rows["CREDIT_CARD"].tp == 0
    assert rows["IBAN_CODE"].fp == 1
    assert rows["structured (micro)"].tp == 1


def test_secret_set_scores_well():
    (row,) = evaluate.eval_secrets()
    assert row.recall >= 0.9 and row.fpr <= 0.1


def test_cli_eval_json(tmp_path):
    path = tmp_path / "pii.json"
    path.write_text(json.dumps([{"full_text": "mail bob@example.com", "spans": [{"entity_type": "EMAIL_ADDRESS", "start_position": 5, "end_position": 20}]}]))
    result = CliRunner().invoke(app, ["eval", "--json", "--no-classifier", "--pii", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    scanners = {r["scanner"] for r in report["rows"]}
    assert {"pii", "secrets", "injection heuristics", "harmful lexicon"} <= scanners
    heldout = [r for r in report["rows"] if r["dataset"] == "held-out split" and r["category"] == "injection+jailbreak @0.8"]
    assert heldout and heldout[0]["tp"] + heldout[0]["fn"] > 50
