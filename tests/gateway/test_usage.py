"""StreamUsage chunk by chunk: what the client is sent, and what the record counts."""

from __future__ import annotations

import json

from gateway.outcome import Outcome
from gateway.usage import StreamUsage, upstream_stream_options


def chunk(text: str | None, usage: tuple[int, int] | None = None, choices: bool = True) -> dict:
    c: dict = {
        "id": "x",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}] if choices else [],
    }
    if usage:
        c["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return c


def run(u: StreamUsage, chunks: list[dict]) -> list[dict]:
    sent = [u.forward(c, json.dumps(c)) for c in chunks]
    return [json.loads(s) for s in sent if s is not None]


def test_upstreams_are_asked_for_running_usage_on_top_of_the_clients_options() -> None:
    assert upstream_stream_options(None, "continuous") == {"include_usage": True, "continuous_usage_stats": True}
    assert upstream_stream_options({"include_usage": False, "x": 1}, "final") == {"include_usage": True, "x": 1}


def test_a_client_gets_exactly_the_usage_it_asked_for() -> None:
    stream = [chunk("", (7, 0)), chunk("a", (7, 1)), chunk("b", (7, 2)), chunk(None, (7, 2), choices=False)]
    none = run(StreamUsage(client_usage=False, client_continuous=False, prompt_estimate=3), stream)
    final = run(StreamUsage(client_usage=True, client_continuous=False, prompt_estimate=3), stream)
    running = run(StreamUsage(client_usage=True, client_continuous=True, prompt_estimate=3), stream)
    assert [("usage" in c) for c in none] == [False, False, False]
    assert [("usage" in c) for c in final] == [False, False, False, True]
    assert running == stream


def test_a_final_usage_on_a_chunk_with_a_choice_still_closes_the_stream_for_the_client() -> None:
    """LiteLLM's shape: the last usage rides on a chunk whose choice is an empty delta, and no
    usage-only chunk follows. The client that asked for usage gets OpenAI's closing chunk."""
    last = chunk(None, (8, 9))
    last["choices"][0]["delta"] = {}
    for client_usage in (True, False):
        u = StreamUsage(client_usage=client_usage, client_continuous=False, prompt_estimate=3)
        sent = run(u, [chunk("a"), chunk("b"), last])
        assert not any("usage" in c for c in sent)
        closing = u.closing()
        if client_usage:
            assert json.loads(closing) == {
                "id": "x",
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": last["usage"],
            }
            assert u.closing() is None  # once
        else:
            assert closing is None
    # an upstream that closes with its own usage-only chunk gets no second one
    u = StreamUsage(client_usage=True, client_continuous=False, prompt_estimate=3)
    run(u, [chunk("a", (7, 1)), chunk(None, (7, 1), choices=False)])
    assert u.closing() is None


def test_a_broken_stream_counts_the_last_usage_and_output_after_it_as_estimated() -> None:
    u = StreamUsage(client_usage=False, client_continuous=False, prompt_estimate=3)
    run(u, [chunk("a", (7, 1)), chunk("b", (7, 2))])
    exact = Outcome()
    u.settle(exact, partial=True)
    assert (exact.prompt_tokens, exact.completion_tokens, exact.partial, exact.usage_estimated) == (7, 2, True, False)
    assert exact.last_token_at is not None
    run(u, [chunk("c"), chunk("d")])  # an upstream that stopped counting
    mixed = Outcome()
    u.settle(mixed, partial=True)
    assert (mixed.prompt_tokens, mixed.completion_tokens, mixed.usage_estimated) == (7, 4, True)


def test_an_upstream_without_usage_is_estimated_and_nothing_is_counted_when_nothing_came() -> None:
    u = StreamUsage(client_usage=False, client_continuous=False, prompt_estimate=3)
    run(u, [chunk(""), chunk("a"), chunk("b")])  # the role chunk carries no output
    o = Outcome()
    u.settle(o, partial=False)
    assert (o.prompt_tokens, o.completion_tokens, o.partial, o.usage_estimated, o.last_token_at) == (
        3,
        2,
        False,
        True,
        None,
    )
    empty = Outcome()
    StreamUsage(client_usage=False, client_continuous=False, prompt_estimate=3).settle(empty, partial=True)
    assert (empty.prompt_tokens, empty.completion_tokens, empty.partial, empty.usage_estimated) == (0, 0, True, False)


def test_usage_is_cut_off_the_upstreams_own_bytes() -> None:
    u = StreamUsage(client_usage=False, client_continuous=False, prompt_estimate=3)
    last = (
        '{"id":"x","choices":[{"index":0,"delta":{"content":"a \\"usage\\""}}],'
        '"usage":{"prompt_tokens":7,"completion_tokens":1}}'
    )
    assert u.forward(json.loads(last), last) == '{"id":"x","choices":[{"index":0,"delta":{"content":"a \\"usage\\""}}]}'
    first = (
        '{"usage": {"prompt_tokens": 7, "completion_tokens": 1}, "id": "x", '
        '"choices": [{"index": 0, "delta": {"content": "a"}}]}'
    )
    assert json.loads(u.forward(json.loads(first), first)) == {
        "id": "x",
        "choices": [{"index": 0, "delta": {"content": "a"}}],
    }
