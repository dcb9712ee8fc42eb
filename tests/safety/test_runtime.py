"""The gateway's side of the engine: async scans, classifier batching, excerpts, settings."""

from __future__ import annotations

import asyncio
import socket

import pytest
from pydantic import ValidationError

from safety.config import SafetyConfig
from safety.engine import SafetyEngine
from safety.excerpt import excerpt
from safety.policy import PolicySet
from safety.runtime import AsyncSafety, ClassifierBatcher
from safety.types import Category, Hit

EMAIL = "bob.smith@example.com"


class FakeClassifier:
    """Stands in for MiniLM: flags texts containing 'EVIL' as a jailbreak; records batch sizes."""

    name = "injection_classifier"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def scan_many(self, texts, harm=True):
        import time

        time.sleep(0.02)  # long enough for concurrent requests to queue up behind a batch
        self.batches.append(len(texts))
        return [
            [Hit(Category.JAILBREAK, "classifier", self.name, 0, len(t), 0.95)] if "EVIL" in t else [] for t in texts
        ]

    def scan(self, text):
        return self.scan_many([text])[0]


def test_async_scan_equals_the_engine_inline_and_in_a_thread(rules_engine):
    rt = AsyncSafety(rules_engine, inline_max_chars=100)
    short = f"mail {EMAIL} now"
    long = ("filler words here. " * 20) + short
    for text in (short, long):
        got = asyncio.run(rt.scan(text, None, "input"))
        want = rules_engine.scan_input(text)
        assert (got.action, got.text, [f.to_dict() for f in got.findings]) == (
            want.action,
            want.text,
            [f.to_dict() for f in want.findings],
        )
        assert "[REDACTED:EMAIL_ADDRESS]" in got.text


BLOCK_ON_CLASSIFIER = {"default": {"input": {"jailbreak": [{"action": "block", "threshold": 0.8}, {"action": "flag"}]}}}


def test_classifier_calls_of_concurrent_requests_are_batched():
    fake = FakeClassifier()
    engine = SafetyEngine(PolicySet.from_dict(BLOCK_ON_CLASSIFIER), classifier=fake)
    rt = AsyncSafety(engine)

    async def main():
        texts = [f"request {i}" + (" EVIL" if i % 3 == 0 else "") for i in range(12)]
        return texts, await asyncio.gather(*(rt.scan(t, None, "input") for t in texts))

    texts, verdicts = asyncio.run(main())
    assert sum(fake.batches) == 12 and len(fake.batches) < 12 and max(fake.batches) > 1
    for t, v in zip(texts, verdicts, strict=True):
        assert v.blocked == ("EVIL" in t)
        if v.blocked:
            assert v.blocked_category is Category.JAILBREAK
    # a policy without attack or harm categories does not call the classifier at all
    quiet = AsyncSafety(SafetyEngine(PolicySet.from_dict({"default": {"input": {"pii": "redact"}}}), classifier=fake))
    n = len(fake.batches)
    assert not asyncio.run(quiet.scan("EVIL", None, "input")).findings
    assert len(fake.batches) == n


def test_flag_only_scans_wait_for_later_and_find_what_a_whole_scan_finds():
    fake = FakeClassifier()
    rt = AsyncSafety(SafetyEngine(classifier=fake))  # the default policy: classifier hits only flag
    text = f"EVIL plan: mail {EMAIL}, and how do I make a bomb at home?"

    async def main():
        now, later = await rt.scan_split(text, None, "input")
        calls_before_later = len(fake.batches)
        found_later = await later.findings()
        return now, calls_before_later, found_later, await rt.scan(text, None, "input")

    now, calls, later, whole = asyncio.run(main())
    assert calls == 0  # nothing before the answer waited on the classifier
    assert [f.hit.entity for f in now.findings] == ["EMAIL_ADDRESS"] and now.action == "redact"
    assert {(f.hit.scanner, f.hit.category, f.action) for f in later} == {
        ("injection_classifier", Category.JAILBREAK, "flag"),
        ("harmful", Category.INDISCRIMINATE_WEAPONS, "flag"),
    }
    assert sorted(f.to_dict()["scanner"] for f in whole.findings) == sorted(
        f.hit.scanner for f in [*now.findings, *later]
    )
    # a policy that blocks on the classifier puts it back before the answer, and leaves nothing for later
    rt = AsyncSafety(SafetyEngine(PolicySet.from_dict(BLOCK_ON_CLASSIFIER), classifier=fake))
    v, later = asyncio.run(rt.scan_split("EVIL", None, "input"))
    assert v.blocked and later is None


def test_excerpts_never_hold_a_raw_span(rules_engine):
    policy = {"default": {"input": {"harmful": "flag"}}}  # PII is not even scanned for by this policy
    engine = SafetyEngine(PolicySet.from_dict(policy), use_classifier=False)
    text = f"My address is {EMAIL}. How do I make a bomb at home? Also my card is 4111 1111 1111 1111 ok"
    v = engine.scan_input(text)
    [f] = v.findings
    assert f.hit.category is Category.INDISCRIMINATE_WEAPONS
    with_ctx = excerpt(engine, text, f.hit, v.findings, with_context=True)
    assert "bomb" in with_ctx and "[REDACTED:EMAIL_ADDRESS]" in with_ctx and "[REDACTED:CREDIT_CARD]" in with_ctx
    assert EMAIL not in with_ctx and "1111 1111" not in with_ctx and "example.com" not in with_ctx
    assert excerpt(engine, text, f.hit, v.findings, with_context=False) == "[REDACTED:INDISCRIMINATE_WEAPONS]"
    # a hit's own PII span is always replaced, whatever its action
    v = rules_engine.scan_input(f"write to {EMAIL} please")
    assert (
        excerpt(rules_engine, f"write to {EMAIL} please", v.findings[0].hit, v.findings, with_context=True)
        == "write to [REDACTED:EMAIL_ADDRESS] please"
    )


def test_settings_section():
    assert SafetyConfig(enabled=False).build_runtime() is None
    rt = SafetyConfig(classifier=False, tenants={"acme": {"input": {"pii": "block"}}}).build_runtime()
    assert rt is not None and not rt.engine.use_classifier
    assert (
        rt.engine.scan_input(f"mail {EMAIL}", "acme").blocked
        and not rt.engine.scan_input(f"mail {EMAIL}", "other").blocked
    )
    with pytest.raises(ValidationError):
        SafetyConfig(tenants={"acme": {"inptu": {"pii": "block"}}})
    with pytest.raises(ValidationError):
        SafetyConfig(default={"input": {"pii": "obliterate"}})


def test_the_classifier_after_the_response_runs_at_the_lowest_priority():
    import os
    import threading

    class Nice(FakeClassifier):
        def scan_many(self, texts, harm=True):
            self.batches.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return [[] for _ in texts]

    fake = Nice()
    rt = AsyncSafety(SafetyEngine(classifier=fake))  # the default policy: the classifier waits for later
    blocking = AsyncSafety(SafetyEngine(PolicySet.from_dict(BLOCK_ON_CLASSIFIER), classifier=fake))

    async def main() -> None:
        _, later = await rt.scan_split("some text", None, "input")
        await later.findings()
        await blocking.scan_split("some text", None, "input")
        await rt.aclose()

    asyncio.run(main())
    assert fake.batches == [19, os.getpriority(os.PRIO_PROCESS, 0)]


def test_a_classifier_too_far_behind_makes_the_request_wait_for_its_own_scans_when_set_to_wait():
    fake = FakeClassifier()
    rt = AsyncSafety(SafetyEngine(classifier=fake), max_backlog=0, overload="wait")  # any backlog is too much
    v, later = asyncio.run(rt.scan_split("EVIL", None, "input"))
    assert later is None and fake.batches == [1]
    assert [(f.hit.scanner, f.action) for f in v.findings] == [("injection_classifier", "flag")] and v.action == "flag"


def test_by_default_a_classifier_too_far_behind_is_skipped_for_that_text_and_the_rules_still_run():
    fake = FakeClassifier()
    rt = AsyncSafety(SafetyEngine(classifier=fake), max_backlog=0)
    text = "EVIL: how do I make a bomb at home?"

    async def main():
        v, later = await rt.scan_split(text, None, "input")
        return v, later, await later.run()

    v, later, (findings, unscanned) = asyncio.run(main())
    assert not v.findings and later.unscanned == "overload"  # nothing waited, on the request path or after it
    assert fake.batches == [] and unscanned == "overload"
    assert [(f.hit.scanner, f.action) for f in findings] == [("harmful", "flag")]
    # with room in the queue the same text is classified after the response
    _, later = asyncio.run(AsyncSafety(SafetyEngine(classifier=fake)).scan_split(text, None, "input"))
    findings, unscanned = asyncio.run(later.run())
    assert unscanned is None and "injection_classifier" in {f.hit.scanner for f in findings}


def test_a_failed_deferred_scan_keeps_the_rule_findings_and_says_the_classifier_did_not_read_it():
    class Broken(FakeClassifier):
        def scan_many(self, texts, harm=True):
            raise RuntimeError("out of memory")

    rt = AsyncSafety(SafetyEngine(classifier=Broken()))
    _, later = asyncio.run(rt.scan_split("EVIL: how do I make a bomb at home?", None, "input"))
    findings, unscanned = asyncio.run(later.run())
    assert unscanned == "scan_failed" and [f.hit.scanner for f in findings] == ["harmful"]


def test_identical_texts_are_classified_once_and_varied_ones_each_time():
    fake = FakeClassifier()
    rt = AsyncSafety(SafetyEngine(classifier=fake), cache_size=2)

    async def main(texts):
        out = []
        for t in texts:
            _, later = await rt.scan_split(t, None, "input")
            out.append(await later.findings())
        return out

    same = asyncio.run(main(["EVIL system prompt"] * 3))
    assert fake.batches == [1] and rt.later_batcher.cached == 2
    assert all([f.hit.scanner for f in fs] == ["injection_classifier"] for fs in same)
    asyncio.run(main(["a", "b", "c", "a"]))  # "a" fell out of a cache of two
    assert fake.batches == [1, 1, 1, 1, 1]
    uncached = AsyncSafety(SafetyEngine(classifier=fake))
    asyncio.run(uncached.scan("EVIL", None, "input"))
    asyncio.run(uncached.scan("EVIL", None, "input"))
    assert fake.batches[-2:] == [1, 1]


def test_the_answers_of_one_batch_are_handed_out_with_the_loops_io_polled_between_them():
    """A batch of deferred scans lands at once; its waiters' record work must not hold the
    loop's sockets until all of them are done."""
    n = 8
    events: list[str] = []
    ours, theirs = socket.socketpair()

    async def run(texts: list[str], harm: bool) -> list[list[Hit]]:
        theirs.send(b"a request arrives as the batch lands")
        return [[] for _ in texts]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        batcher = ClassifierBatcher(SafetyEngine(use_classifier=False), run=run)
        ours.setblocking(False)
        loop.add_reader(ours, lambda: (ours.recv(64), events.append("io"), loop.remove_reader(ours)))

        async def waiter(i: int) -> None:
            await batcher.scan(f"text {i}", True)
            events.append(f"answer {i}")

        await asyncio.gather(*(waiter(i) for i in range(n)))

    try:
        asyncio.run(main())
    finally:
        ours.close()
        theirs.close()
    assert [e for e in events if e != "io"] == [f"answer {i}" for i in range(n)]  # in the order they were asked
    assert 0 < events.index("io") < n  # the socket was read before the last waiter ran
