from __future__ import annotations

import random

import pytest

from safety.engine import SafetyEngine
from safety.policy import PolicySet
from safety.stream import BATCH, StreamRedactor

SECRETS = [
    "bob.smith@example.com",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "4111 1111 1111 1111",
    "GB82 WEST 1234 5698 7654 32",
    "+44 20 7946 0958",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]
TEXT = (
    "Sure! Contact bob.smith@example.com or call +44 20 7946 0958. "
    "The deploy key is AKIAIOSFODNN7EXAMPLE and the token ghp_1234567890abcdefghijABCDEFGHIJ123456. "
    "Pay with card 4111 1111 1111 1111 or IBAN GB82 WEST 1234 5698 7654 32.\n"
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAx7rLm0KZ\nq9Zr2fRbT0m1\n-----END RSA PRIVATE KEY-----\n"
    "Session: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U done."
)


def run(engine: SafetyEngine, chunks: list[str], tenant: str = "t") -> tuple[str, list[str]]:
    r = engine.stream_redactor(tenant)
    outs = [r.feed(c) for c in chunks]
    outs.append(r.finish())
    return "".join(outs), outs


def assert_clean(out: str) -> None:
    for s in SECRETS:
        assert s not in out
        for k in range(0, len(s) - 7):
            assert s[k : k + 8] not in out, s[k : k + 8]
    assert "MIIEpAIBAAKCAQEA" not in out


@pytest.fixture(scope="module")
def expected(rules_engine_module) -> str:
    return rules_engine_module.scan_output(TEXT, "t").text


@pytest.fixture(scope="module")
def rules_engine_module() -> SafetyEngine:
    return SafetyEngine(use_classifier=False)


def test_one_shot_reference_is_clean(expected):
    assert expected.count("[REDACTED:") == 8
    assert_clean(expected)


def test_every_two_chunk_split(rules_engine_module, expected):
    for k in range(len(TEXT) + 1):
        out, _ = run(rules_engine_module, [TEXT[:k], TEXT[k:]])
        assert out == expected, k


def test_random_chunkings(rules_engine_module, expected):
    rng = random.Random(1234)
    for _ in range(60):
        chunks, i = [], 0
        while i < len(TEXT):
            n = rng.choice([1, 1, 2, 3, 5, 8, 13, 40])
            chunks.append(TEXT[i : i + n])
            i += n
        out, parts = run(rules_engine_module, chunks)
        assert out == expected
        assert_clean(out)


def test_character_by_character_never_leaks_prefix(rules_engine_module):
    r = rules_engine_module.stream_redactor("t")
    emitted = ""
    for ch in TEXT:
        emitted += r.feed(ch)
        assert_clean(emitted)
    emitted += r.finish()
    assert_clean(emitted)


@pytest.mark.parametrize("batch", [1, BATCH])
def test_holds_back_only_a_tail(rules_engine_module, batch):
    r = StreamRedactor(rules_engine_module, rules_engine_module.policies.for_tenant("t"), batch=batch)
    prose = "The quick brown fox jumps over the lazy dog and keeps running far away. " * 30
    out = ""
    for i in range(0, len(prose), 7):
        out += r.feed(prose[i : i + 7])
        assert r.pending <= r.hold + batch + 16  # a scan waits for `batch` releasable characters
    assert out + r.finish() == prose


def test_first_text_goes_out_as_soon_as_it_can(rules_engine_module):
    r = rules_engine_module.stream_redactor("t")
    prose = "The quick brown fox jumps over the lazy dog and keeps running far away. " * 10
    fed = 0
    while not r.feed(prose[fed]):
        fed += 1
    assert fed < r.hold + 8  # "The " released once the hold-back is full, not after a batch


def test_long_unbroken_token_is_not_rescanned_per_chunk(rules_engine_module, monkeypatch):
    r = rules_engine_module.stream_redactor("t")
    scans = 0
    scan = r._scan

    def counted(final: bool):
        nonlocal scans
        scans += 1
        return scan(final)

    monkeypatch.setattr(r, "_scan", counted)
    blob = "data:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY" * 300  # ~10 KB without whitespace
    out = "".join(r.feed(blob[i : i + 4]) for i in range(0, len(blob), 4))
    assert out == "" and scans < 20  # scans back off while nothing can be released
    assert r.finish() == rules_engine_module.scan_output(blob, "t").text


def test_unterminated_private_key_is_never_released(rules_engine_module):
    r = rules_engine_module.stream_redactor("t")
    out = r.feed("key:\n-----BEGIN PRIVATE KEY-----\n")
    for _ in range(50):
        out += r.feed("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY\n")
    assert "QUJDREVG" not in out
    out += r.finish()
    assert "QUJDREVG" not in out and out.endswith("[REDACTED:PRIVATE_KEY]")


def test_stream_blocks_and_stops():
    engine = SafetyEngine(
        PolicySet.from_dict({"tenants": {"t": {"output": {"secret": "block"}}}}), use_classifier=False
    )
    r = engine.stream_redactor("t")
    out = r.feed("Hello there, here is the key AKIAIOSFODNN7EXAMPLE and more text after it. ")
    out += r.feed("x " * 100)
    out += r.finish()
    assert "AKIA" not in out and out.startswith("Hello there")
    assert r.blocked is not None and r.verdict().blocked_category.value == "secret"


def test_stream_records_findings(rules_engine_module):
    r = rules_engine_module.stream_redactor("t")
    for i in range(0, len(TEXT), 10):
        r.feed(TEXT[i : i + 10])
    r.finish()
    entities = sorted(f.hit.entity for f in r.verdict().findings if f.action == "redact")
    one_shot = sorted(f.hit.entity for f in rules_engine_module.scan_output(TEXT, "t").findings if f.action == "redact")
    assert entities == one_shot
