"""Every response body of the worker and of the gateway validates against OpenAI's published
OpenAPI document: completions, each stream chunk (the first and the last included), embeddings,
moderations, the model list and errors, with the fields the document requires even when null."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.config import UpstreamConfig, VersionTarget
from tests.gateway.conftest import Harness, gateway_server
from tests.protocol._openai_schema import COMPLETION_CHUNK, problems
from tests.servers import Proc

CHAT = {"messages": [{"role": "user", "content": "Name three rivers."}], "max_tokens": 6}
PROMPT = {"prompt": "Once upon a time", "max_tokens": 6}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, real_worker: Proc) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("protocol-gw")
    version = httpx.get(real_worker.url + "/health").json()["version"]
    with gateway_server(
        tmp,
        f"sqlite:///{tmp / 'l.db'}",
        {version: UpstreamConfig(urls=[real_worker.url])},
        {"demo": [VersionTarget(version=version)]},
    ) as h:
        yield h


@dataclass
class Target:
    base: str
    headers: dict[str, str]
    model: str


@pytest.fixture(params=["worker", "gateway"])
def target(request: pytest.FixtureRequest, real_worker: Proc) -> Target:
    """The worker itself (its own model name) or the gateway in front of it (the alias)."""
    if request.param == "worker":
        return Target(real_worker.url, {}, httpx.get(real_worker.url + "/v1/models").json()["data"][0]["id"])
    h: Harness = request.getfixturevalue("gateway")
    return Target(h.url, h.headers(), "demo")


def _chunks(base: str, headers: dict[str, str], path: str, body: dict) -> list[dict]:
    with httpx.stream("POST", base + path, json=body, headers=headers, timeout=60) as r:
        assert r.status_code == 200, r.read()
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]


def _assert_valid(schema: str, body: object) -> None:
    assert problems(schema, body) == [], json.dumps(body)[:2000]


@pytest.mark.parametrize("with_usage", [False, True], ids=["plain", "include_usage"])
def test_chat_completion_and_every_stream_chunk(target: Target, with_usage: bool):
    base, headers, model = target.base, target.headers, target.model
    r = httpx.post(base + "/v1/chat/completions", json={"model": model, **CHAT}, headers=headers, timeout=60)
    assert r.status_code == 200
    _assert_valid("CreateChatCompletionResponse", r.json())
    body = {"model": model, **CHAT, "stream": True} | (
        {"stream_options": {"include_usage": True}} if with_usage else {}
    )
    chunks = _chunks(base, headers, "/v1/chat/completions", body)
    assert len(chunks) >= 2
    for chunk in chunks:
        _assert_valid("CreateChatCompletionStreamResponse", chunk)
    if with_usage:  # the last chunk carries the usage and no choice, as OpenAI sends it
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_completion_streamed_and_not(target: Target):
    base, headers, model = target.base, target.headers, target.model
    r = httpx.post(base + "/v1/completions", json={"model": model, **PROMPT}, headers=headers, timeout=60)
    assert r.status_code == 200
    _assert_valid("CreateCompletionResponse", r.json())
    chunks = _chunks(base, headers, "/v1/completions", {"model": model, **PROMPT, "stream": True})
    for chunk in chunks:
        _assert_valid(COMPLETION_CHUNK, chunk)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_embeddings_and_model_list(target: Target):
    base, headers, model = target.base, target.headers, target.model
    r = httpx.post(base + "/v1/embeddings", json={"model": model, "input": ["a", "b"]}, headers=headers, timeout=60)
    assert r.status_code == 200
    _assert_valid("CreateEmbeddingResponse", r.json())
    r = httpx.get(base + "/v1/models", headers=headers, timeout=30)
    assert r.status_code == 200
    _assert_valid("ListModelsResponse", r.json())


def test_errors(target: Target):
    base, headers, model = target.base, target.headers, target.model
    cases = [
        httpx.post(base + "/v1/chat/completions", json={"model": model, "messages": "not a list"}, headers=headers),
        httpx.post(
            base + "/v1/chat/completions", content=b"{not json", headers={**headers, "content-type": "application/json"}
        ),
        httpx.post(base + "/v1/embeddings", json={"model": model}, headers=headers),
    ]
    if headers:  # only the gateway knows keys and aliases
        cases += [
            httpx.post(
                base + "/v1/chat/completions",
                json={"model": "demo", **CHAT},
                headers={"authorization": "Bearer iw-wrong"},
            ),
            httpx.post(base + "/v1/chat/completions", json={"model": "no-such-model", **CHAT}, headers=headers),
        ]
    for r in cases:
        assert 400 <= r.status_code < 500, r.text
        _assert_valid("ErrorResponse", r.json())


def test_moderation(gateway: Harness):
    r = httpx.post(
        gateway.url + "/v1/moderations",
        json={"input": ["hello there", "my card is 4111 1111 1111 1111"]},
        headers=gateway.headers(),
        timeout=60,
    )
    assert r.status_code == 200
    _assert_valid("CreateModerationResponse", r.json())
