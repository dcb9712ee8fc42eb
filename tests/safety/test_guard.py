"""The guard model: its prompt formats and answers, a stub upstream answering in Llama Guard 3's
format (a stub, not a model), our own worker serving a random-weight Llama model, and the
runtime's fallback to the local heads on error or timeout."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from safety.engine import SafetyEngine
from safety.guard import (
    GuardClient,
    GuardConfig,
    GuardUnavailable,
    llama_guard_3_prompt,
    parse_llama_guard,
    parse_yes_no,
    prompts,
)
from safety.policy import PolicySet
from safety.runtime import AsyncSafety
from safety.scanproc import ScanProcess
from safety.types import Category, Hit
from tests.guard_stub import GuardStub, guard_stub_app
from tests.servers import ThreadedServer, start_worker


@pytest.fixture(scope="module")
def guard_stub() -> Iterator[tuple[GuardStub, str]]:
    stub = GuardStub()
    with ThreadedServer(guard_stub_app(stub)) as server:
        yield stub, server.url


@pytest.fixture
def stub(guard_stub: tuple[GuardStub, str]) -> Iterator[tuple[GuardStub, str]]:
    s, url = guard_stub
    yield s, url
    s.delay_s, s.fail_status, s.hold = 0.0, None, None
    s.prompts.clear()


class Calls(list):
    def __call__(self, outcome: str, seconds: float) -> None:
        self.append((outcome, seconds))


def client(url: str, **kw) -> tuple[GuardClient, Calls]:
    calls = Calls()
    return GuardClient(GuardConfig(url=url, model="llama-guard-3-1b", **kw), on_call=calls), calls


def scan(c: GuardClient, text: str, direction: str = "input") -> list[Hit]:
    async def main() -> list[Hit]:
        try:
            return await c.scan(text, direction)  # type: ignore[arg-type]
        finally:
            await c.close()

    return asyncio.run(main())


def test_llama_guard_answers_are_read_as_categories():
    assert parse_llama_guard("safe") == []
    assert parse_llama_guard("\n\nunsafe\nS1,S10") == [Category.VIOLENT_CRIMES, Category.HATE]
    assert parse_llama_guard("unsafe\nS14") == [Category.CODE_INTERPRETER_ABUSE]
    for unreadable in ("", "unsafe", "maybe\nS1", "unsafe\nS15", "I cannot help with that"):
        assert parse_llama_guard(unreadable) is None, unreadable
    assert (
        parse_yes_no("Yes. The prompt asks for...") is True
        and parse_yes_no("No") is False
        and parse_yes_no("Perhaps") is None
    )


def test_each_format_builds_its_own_prompt():
    p = llama_guard_3_prompt("how are you?", "input")
    assert (
        "'User' messages" in p
        and "User: how are you?" in p
        and p.count("\nS") == 14
        and p.endswith("<|end_header_id|>\n\n")
    )
    assert "Agent: fine" in llama_guard_3_prompt("fine", "output")
    sg = prompts(GuardConfig(url="x", model="m", format="shieldgemma"), "hello", "input")
    assert len(sg) == 4 and all("Human Question: hello" in x.text for x in sg)
    assert {x.category for x in sg} == {Category.VIOLENT_CRIMES, Category.HATE, Category.SEXUAL_CONTENT}
    gg = prompts(
        GuardConfig(url="x", model="m", format="granite_guardian", granite_risks=("social_bias",)), "hello", "input"
    )
    assert [x.category for x in gg] == [Category.HATE] and "User Message: hello" in gg[0].text


def test_verdicts_of_a_stub_in_llama_guards_format(stub):
    s, url = stub
    c, calls = client(url)
    [hit] = scan(c, "How do I make a bomb?")
    assert (hit.category, hit.scanner, hit.score, hit.start, hit.end) == (
        Category.INDISCRIMINATE_WEAPONS,
        "guard",
        1.0,
        0,
        21,
    )
    c, calls2 = client(url)
    assert scan(c, "What is the capital of France?") == []
    assert "User: What is the capital of France?" in s.prompts[-1]
    assert [o for o, _ in calls + calls2] == ["ok", "ok"] and all(t >= 0 for _, t in calls + calls2)


@pytest.mark.parametrize("case", ["timeout", "error", "unparsed"])
def test_a_guard_without_a_verdict_raises_and_says_why(stub, case):
    s, url = stub
    text = "tell me about garble"  # the stub answers "maybe?" to this one
    if case == "timeout":
        s.delay_s, text = 2.0, "hello"
    elif case == "error":
        s.fail_status, text = 503, "hello"
    c, calls = client(url, timeout_s=0.3 if case == "timeout" else 10)
    with pytest.raises(GuardUnavailable) as e:
        scan(c, text)
    assert e.value.outcome == case and [o for o, _ in calls] == [case]


class FakeHeads:
    """Stands in for MiniLM's heads: a harm hit on texts containing 'bomb' (scanner injection_classifier)."""

    name = "injection_classifier"

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def scan_many(self, texts, harm=True):
        self.calls.append(harm)
        return [
            [Hit(Category.INDISCRIMINATE_WEAPONS, "x", self.name, 0, len(t), 0.9)] if harm and "bomb" in t else []
            for t in texts
        ]


def runtime(url: str, heads: FakeHeads, policy: dict | None = None, **kw) -> AsyncSafety:
    engine = SafetyEngine(PolicySet.from_dict(policy) if policy else PolicySet(), classifier=heads)
    return AsyncSafety(engine, guard=GuardClient(GuardConfig(url=url, model="m", **kw)))


def full_scan(rt: AsyncSafety, text: str):
    async def main():
        try:
            return await rt.scan(text, None, "input")
        finally:
            await rt.aclose()

    return asyncio.run(main())


def test_the_guard_answers_for_harm_and_the_local_heads_when_it_cannot(stub):
    s, url = stub
    text = "Explain how to build a bomb"
    heads = FakeHeads()
    v = full_scan(runtime(url, heads), text)
    assert ("guard", Category.INDISCRIMINATE_WEAPONS, "flag") in [
        (f.hit.scanner, f.hit.category, f.action) for f in v.findings
    ]
    assert heads.calls == [False]  # the classifier was asked for attacks only: the guard answered for harm
    s.fail_status = 500
    heads = FakeHeads()
    v = full_scan(runtime(url, heads), text)
    scanners = {f.hit.scanner for f in v.findings if f.hit.category is Category.INDISCRIMINATE_WEAPONS}
    assert "guard" not in scanners and "injection_classifier" in scanners and True in heads.calls


def test_nothing_before_the_answer_waits_on_the_guard_unless_the_policy_blocks_on_it(stub):
    s, url = stub
    s.hold = threading.Event()
    rt = runtime(url, FakeHeads())

    async def default_policy():
        try:
            v, later = await asyncio.wait_for(rt.scan_split("how do I build a bomb", None, "input"), 30)
            assert not s.prompts  # the answer's verdict came without asking the guard
            s.hold.set()
            return v, await later.findings()
        finally:
            await rt.aclose()

    v, later = asyncio.run(default_policy())
    assert not v.blocked and ("guard", "flag") in [(f.hit.scanner, f.action) for f in later]
    # a policy that blocks on the guard's verdict waits for it, and blocks
    s.hold = None
    rt = runtime(url, FakeHeads(), {"default": {"input": {"S9": {"action": "block", "scanners": ["guard"]}}}})
    v = full_scan(rt, "how do I build a bomb")
    assert v.blocked and v.blocked_category is Category.INDISCRIMINATE_WEAPONS


def test_the_gateway_loads_the_model_only_where_a_policy_acts_on_it_before_an_answer(stub):
    _, url = stub
    on_guard = {"default": {"input": {"S9": {"action": "block", "scanners": ["guard"]}}}}
    on_heads = {"default": {"input": {"S9": {"action": "block", "scanners": ["injection_classifier"]}}}}

    def here(policy: dict | None, scan_process: ScanProcess | None) -> bool:
        engine = SafetyEngine(PolicySet.from_dict(policy) if policy else PolicySet(), classifier=FakeHeads())
        guard = GuardClient(GuardConfig(url=url, model="m"))
        return AsyncSafety(engine, guard=guard, scan_process=scan_process).classifier_here()

    # the default policy only flags the guard's hits: its fallback runs after the answer, in the scan process
    assert not here(None, ScanProcess())
    assert here(on_guard, ScanProcess()) and here(on_heads, ScanProcess())
    assert here(None, None)  # no scan process: every classifier scan runs here


def tiny_llama_guard(tmp: Path) -> Path:
    """A Llama-architecture folder with random weights and the demo tokenizer, long enough
    for Llama Guard's prompt (the tokenizer is the demo model's, so the prompt is long)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from inference.demo_model import ensure_demo_model

    demo = ensure_demo_model(tmp)
    tok = AutoTokenizer.from_pretrained(demo)
    torch.manual_seed(3)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id or 1,
        eos_token_id=tok.eos_token_id or 2,
        pad_token_id=0,
    )
    out = tmp / "tiny-llama-guard"
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_the_guard_through_our_own_worker_serving_a_random_llama(tmp_path):
    model = tiny_llama_guard(tmp_path)
    worker = start_worker(
        tmp_path / "data", tmp_path, "--model", str(model), "--alias", "llama-guard-3-1b", "--max-model-len", "4096"
    )
    try:
        c, calls = client(worker.url, timeout_s=60)

        async def main():
            try:
                answer = await c._complete(llama_guard_3_prompt("How do I make a bomb?", "input"))
                try:
                    return answer, await c.scan("How do I make a bomb?", "input")
                except GuardUnavailable as exc:
                    return answer, exc
            finally:
                await c.close()

        (text, _p), verdict = asyncio.run(main())
    finally:
        worker.stop()
    assert isinstance(text, str)  # the worker completed the guard's prompt
    # random weights answer noise: read as no verdict (the local heads then answer), never as "safe"
    assert isinstance(verdict, GuardUnavailable) and verdict.outcome == "unparsed" or isinstance(verdict, list)
    assert [o for o, _ in calls] == ["unparsed" if isinstance(verdict, GuardUnavailable) else "ok"]
