"""Redaction inside JSON text keeps it valid JSON."""

from __future__ import annotations

import json

from safety.jsontext import redact_json, redact_json_text


def redact_all(engine, text: str) -> str:
    return redact_json_text(text, [f.hit for f in engine.scan_output(text, "t").findings if f.action == "redact"])


def test_values_are_redacted_and_the_json_still_parses(rules_engine):
    args = {
        "to": "bob.smith@example.com",
        "note": "call\n+44 20 7946 0958",
        "card": 4111111111111111,
        "n": 3,
        "pw": "password=hunter2hunter2",
        "nested": [{"ip": "203.0.113.42"}],
    }
    for text in (json.dumps(args), json.dumps(args, ensure_ascii=True, indent=2)):
        out = json.loads(redact_all(rules_engine, text))
        assert out["to"] == "[REDACTED:EMAIL_ADDRESS]" and out["card"] == "[REDACTED:CREDIT_CARD]"
        assert out["note"].startswith("call\n") and "[REDACTED:PHONE_NUMBER]" in out["note"] and out["n"] == 3
        assert out["nested"][0]["ip"] == "[REDACTED:IP_ADDRESS]" and "hunter2" not in json.dumps(out)


def test_a_span_never_splits_an_escape_sequence(rules_engine):
    text = json.dumps({"a": "x\nbob@example.com", "b": "\u00e9bob@example.com"}, ensure_ascii=True)
    # the address regex starts inside "\\nbob" and "\\u00e9bob": the span widens to the backslash
    assert json.loads(redact_all(rules_engine, text)) == {
        "a": "x[REDACTED:EMAIL_ADDRESS]",
        "b": "[REDACTED:EMAIL_ADDRESS]",
    }


def test_a_prefix_of_the_text_is_redacted_the_same_way(rules_engine):
    text = json.dumps({"to": "bob.smith@example.com", "card": "4111 1111 1111 1111"})
    hits = [f.hit for f in rules_engine.scan_output(text, "t").findings if f.action == "redact"]
    whole = redact_json(text, hits)
    cut = text.index(', "card"')
    assert redact_json(text, hits, 0, cut) + redact_json(text, hits, cut) == whole


def test_text_that_is_not_json_is_redacted_as_text(rules_engine):
    assert redact_all(rules_engine, "mail bob.smith@example.com {") == "mail [REDACTED:EMAIL_ADDRESS] {"


def test_a_json_stream_redactor_releases_what_the_one_shot_redaction_gives(rules_engine):
    text = json.dumps({"a": "x\nbob@example.com", "card": 4111111111111111, "note": "call +44 20 7946 0958 now"})
    r = rules_engine.stream_redactor("t", json=True)
    out = "".join(r.feed(ch) for ch in text) + r.finish()
    assert out == redact_all(rules_engine, text)
    assert json.loads(out)["card"] == "[REDACTED:CREDIT_CARD]"
