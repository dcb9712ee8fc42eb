"""The worker over real HTTP with the real `openai` client, on the demo model."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
from transformers import AutoTokenizer

from tests.inference.conftest import DEMO
from tests.prom_text import samples, total


def chat(client, content="Tell me something.", **kw):
    return client.chat.completions.create(model=DEMO, messages=[{"role": "user", "content": content}], **kw)


def stream_text(client, **kw) -> tuple[str, list]:
    chunks = list(chat(client, stream=True, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_health_reports_version_and_load_time(worker):
    body = httpx.get(worker.url + "/health").json()
    assert body["status"] == "ready"
    assert body["version"].startswith(DEMO + "@")
    # the load time /health reports is the one /metrics exports (a value, not a speed target)
    gauge = samples(httpx.get(worker.url + "/metrics").text, "inferwatch_worker_model_load_seconds")
    assert len(gauge) == 1 and gauge[0].value == pytest.approx(body["load_seconds"])


def test_models_lists_content_derived_version(client, worker):
    models = client.models.list().data
    assert [m.id for m in models] == [DEMO]
    extra = models[0].model_extra
    assert extra["digest"].startswith("sha256:") and len(extra["digest"]) == 7 + 64
    assert extra["version"] == f"{DEMO}@{extra['digest'][7:19]}"
    assert extra["demo"] is True
    assert "built-in demo model" in worker.output()


def test_chat_usage_is_exact_and_version_reported(client, demo_dir):
    raw = client.chat.completions.with_raw_response.create(
        model=DEMO,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        max_tokens=12,
        seed=1,
    )
    resp = raw.parse()
    tok = AutoTokenizer.from_pretrained(demo_dir / "models" / DEMO)
    prompt = tok.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert resp.usage.prompt_tokens == len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert resp.choices[0].finish_reason in ("length", "stop")
    if resp.choices[0].finish_reason == "length":
        assert resp.usage.completion_tokens == 12
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert raw.headers["x-model-version"] == resp.system_fingerprint
    assert resp.system_fingerprint.startswith(DEMO + "@")


def test_seed_reproducible_and_streaming_matches(client):
    a = chat(client, max_tokens=30, seed=42, temperature=1.0).choices[0].message.content
    b = chat(client, max_tokens=30, seed=42, temperature=1.0).choices[0].message.content
    c = chat(client, max_tokens=30, seed=43, temperature=1.0).choices[0].message.content
    assert a == b
    assert a != c
    streamed, chunks = stream_text(
        client, max_tokens=30, seed=42, temperature=1.0, stream_options={"include_usage": True}
    )
    assert streamed == a
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 30
    assert chunks[-2].choices[0].finish_reason == "length"


def test_greedy_is_deterministic(client):
    outs = {chat(client, max_tokens=20, temperature=0).choices[0].message.content for _ in range(3)}
    assert len(outs) == 1


def test_stop_sequence_truncates_and_is_never_streamed(client):
    full = chat(client, max_tokens=40, seed=7).choices[0].message.content
    assert len(full) > 12
    stop = full[8:11]
    first = full.find(stop)
    resp = chat(client, max_tokens=40, seed=7, stop=[stop, "never-appears"])
    assert resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == full[:first]
    streamed, _ = stream_text(client, max_tokens=40, seed=7, stop=stop)
    assert streamed == full[:first]


def test_max_tokens_is_respected(client):
    for n in (1, 5, 17):
        resp = chat(client, max_tokens=n, seed=3)
        assert resp.usage.completion_tokens <= n
        if resp.choices[0].finish_reason == "length":
            assert resp.usage.completion_tokens == n


def test_completions_stream_and_not(client):
    resp = client.completions.create(model=DEMO, prompt="Once upon a time", max_tokens=10, seed=5)
    assert resp.object == "text_completion"
    assert resp.usage.prompt_tokens == len("Once upon a time") + 1  # one token per character plus BOS
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(model=DEMO, prompt="Once upon a time", max_tokens=10, seed=5, stream=True)
    )
    assert streamed == resp.choices[0].text


def test_embeddings_mean_pooled(client):
    resp = client.embeddings.create(model=DEMO, input=["alpha", "beta", "alpha"])
    vecs = [d.embedding for d in resp.data]
    assert len(vecs) == 3 and len(vecs[0]) == 256  # the demo model's hidden size
    assert vecs[0] == pytest.approx(vecs[2], abs=1e-5)
    assert vecs[0] != pytest.approx(vecs[1], abs=1e-3)
    assert resp.usage.prompt_tokens == (5 + 1) + (4 + 1) + (5 + 1)


async def test_concurrent_requests_share_decode_steps(worker):
    # closed within the test: its connections belong to this test's event loop
    aclient = openai.AsyncOpenAI(base_url=worker.url + "/v1", api_key="unused", max_retries=0)
    before = httpx.get(worker.url + "/v1/engine/stats").json()

    async def one(i: int) -> str:
        stream = await aclient.chat.completions.create(
            model=DEMO,
            messages=[{"role": "user", "content": f"req {i}"}],
            max_tokens=64,
            stream=True,
            seed=i,
            extra_body={"ignore_eos": True},
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async with aclient:
        texts = await asyncio.gather(*(one(i) for i in range(8)))
    assert all(texts)
    after = httpx.get(worker.url + "/v1/engine/stats").json()
    assert after["max_batch_size"] >= 2
    assert after["steps"] > before["steps"]
    # the 8 x 64 tokens took fewer decode steps than running them one after another would
    assert after["steps"] - before["steps"] < 8 * 64


def test_metrics_exposes_worker_series(client, worker):
    chat(client, max_tokens=3)
    text = httpx.get(worker.url + "/metrics").text
    for name in (
        "inferwatch_worker_num_requests_running",
        "inferwatch_worker_time_to_first_token_seconds_bucket",
        "inferwatch_worker_inter_token_latency_seconds_bucket",
        "inferwatch_worker_generation_tokens_total",
        "inferwatch_worker_prompt_tokens_total",
        "inferwatch_worker_model_load_seconds",
        "inferwatch_worker_batch_size_bucket",
    ):
        assert name in text, name
    assert total(text, "inferwatch_worker_generation_tokens_total") >= 3


# ---- bad input ---------------------------------------------------------------------------


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in e.value.body["message"]


@pytest.mark.parametrize(
    "body,param",
    [
        ({"model": DEMO, "messages": []}, "messages"),
        ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}, "max_tokens"),
        ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
        ({"model": DEMO, "messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
        ({"model": DEMO, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_invalid_fields_are_400_in_openai_format(worker, body, param):
    r = httpx.post(worker.url + "/v1/chat/completions", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert "Traceback" not in r.text


def test_malformed_json_is_400(worker):
    r = httpx.post(
        worker.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_prompt_too_long_is_400_with_numbers(client):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, content="x" * 2000, max_tokens=10)
    msg = e.value.body["message"]
    assert "1024" in msg and "10 for the completion" in msg
    assert e.value.body["code"] == "context_length_exceeded"


def test_max_tokens_beyond_context_is_400(client):
    with pytest.raises(openai.BadRequestError):
        chat(client, max_tokens=5000)


def test_cancellation_frees_the_slot(worker):
    body = {
        "model": DEMO,
        "messages": [{"role": "user", "content": "long"}],
        "max_tokens": 900,
        "stream": True,
        "ignore_eos": True,
    }
    before = httpx.get(worker.url + "/v1/engine/stats").json()["cancelled"]
    aborted = _aborted(worker)
    with httpx.stream("POST", worker.url + "/v1/chat/completions", json=body, timeout=30) as r:
        lines = r.iter_lines()
        for _ in range(3):
            assert next(lines) is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = httpx.get(worker.url + "/v1/engine/stats").json()
        if stats["cancelled"] > before and stats["running"] == 0:
            break
        time.sleep(0.05)
    assert stats["cancelled"] > before
    assert stats["running"] == 0
    assert stats["free_slots"] == 16
    assert (
        _aborted(worker) == aborted + stats["cancelled"] - before
    )  # the engine's counter, as vLLM's finished_reason="abort"


def _aborted(worker) -> float:
    return total(
        httpx.get(worker.url + "/metrics").text, "inferwatch_worker_request_success_total", finished_reason="abort"
    )


def test_usage_chunk_only_when_asked(client):
    _, chunks = stream_text(client, max_tokens=4)
    assert all(c.usage is None for c in chunks)
    _, chunks = stream_text(client, max_tokens=4, stream_options={"include_usage": True})
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]


def test_running_usage_in_every_chunk_as_vllm(client):
    # vLLM's continuous_usage_stats: the role chunk counts the prompt, each chunk the tokens so far
    text, chunks = stream_text(
        client,
        max_tokens=12,
        extra_body={"ignore_eos": True, "stream_options": {"include_usage": True, "continuous_usage_stats": True}},
    )
    counts = [c.usage.completion_tokens for c in chunks]
    assert counts[0] == 0 and counts == sorted(counts) and counts[-2:] == [12, 12]
    assert chunks[-1].choices == [] and len({c.usage.prompt_tokens for c in chunks}) == 1
    # alone (without include_usage) it asks for nothing, as in vLLM
    _, alone = stream_text(client, max_tokens=4, extra_body={"stream_options": {"continuous_usage_stats": True}})
    assert all(c.usage is None for c in alone)


def test_sse_ends_with_done(worker):
    body = {
        "model": DEMO,
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 3,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.stream("POST", worker.url + "/v1/chat/completions", json=body) as r:
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "length"
