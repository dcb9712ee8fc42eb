"""The real `openai` client through the gateway to a real worker; ledger on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

MSG = [{"role": "user", "content": "Hello through the gateway"}]


def test_sync_chat_is_recorded_with_exact_usage(worker_gateway):
    h = worker_gateway
    raw = h.client().chat.completions.with_raw_response.create(
        model="demo", messages=MSG, max_tokens=9, seed=1, extra_body={"ignore_eos": True}
    )
    resp = raw.parse()
    assert resp.usage.completion_tokens == 9
    version = raw.headers["x-model-version"]
    assert version.startswith("inferwatch-demo-mistral@")
    [row] = h.rows()
    assert row.request_id == raw.headers["x-request-id"]
    assert (row.tenant, row.alias, row.model_version, row.operation) == ("acme", "demo", version, "chat")
    assert (row.prompt_tokens, row.completion_tokens) == (resp.usage.prompt_tokens, 9)
    assert row.status_code == 200 and row.finish_reason == "length" and not row.stream
    assert row.cost_usd == pytest.approx((resp.usage.prompt_tokens * 2.0 + 9 * 6.0) / 1e6)
    assert row.latency_s > 0 and row.key_id is not None


async def test_async_streaming_with_and_without_usage(worker_gateway):
    h = worker_gateway
    ac = openai.AsyncOpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0)

    async def one(include_usage: bool) -> list:
        kw = {"stream_options": {"include_usage": True}} if include_usage else {}
        stream = await ac.chat.completions.create(
            model="demo", messages=MSG, max_tokens=12, stream=True, extra_body={"ignore_eos": True}, **kw
        )
        return [c async for c in stream]

    async with ac:
        with_usage, without = await asyncio.gather(one(True), one(False))
    assert with_usage[-1].usage.completion_tokens == 12
    assert all(c.usage is None for c in without)  # the gateway asked for usage upstream, but drops it for this client
    rows = h.rows()
    assert len(rows) == 2
    for row in rows:
        assert row.stream and row.completion_tokens == 12 and row.prompt_tokens == with_usage[-1].usage.prompt_tokens
        assert row.ttft_s is not None and 0 < row.ttft_s <= row.latency_s
        assert row.tpot_s is not None and row.tpot_s >= 0


def test_completions_and_embeddings(worker_gateway):
    h = worker_gateway
    c = h.client()
    comp = c.completions.create(model="demo", prompt="abc", max_tokens=4, extra_body={"ignore_eos": True})
    assert comp.usage.completion_tokens == 4
    streamed = list(
        c.completions.create(model="demo", prompt="abc", max_tokens=4, stream=True, extra_body={"ignore_eos": True})
    )
    assert "".join(x.choices[0].text for x in streamed if x.choices)
    emb = c.embeddings.create(model="demo", input=["one", "two"])
    assert len(emb.data) == 2
    ops = sorted(r.operation for r in h.rows())
    assert ops == ["embeddings", "text_completion", "text_completion"]
    emb_row = next(r for r in h.rows() if r.operation == "embeddings")
    assert emb_row.prompt_tokens == emb.usage.prompt_tokens and emb_row.completion_tokens == 0


def test_metrics_agree_with_ledger(worker_gateway):
    h = worker_gateway
    c = h.client()
    for i in range(5):
        c.chat.completions.create(model="demo", messages=MSG, max_tokens=3 + i)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="nope", messages=MSG)
    list(c.chat.completions.create(model="demo", messages=MSG, max_tokens=5, stream=True))
    rows = h.rows()
    assert (
        h.metric_sum("inferwatch_requests_total", tenant="acme") == len(rows) + 1
    )  # the 404 named no served model: metrics only
    assert h.metric_sum("inferwatch_tokens_total", token_type="input") == sum(r.prompt_tokens for r in rows)
    assert h.metric_sum("inferwatch_tokens_total", token_type="output") == sum(r.completion_tokens for r in rows)
    assert h.metric_sum("inferwatch_cost_usd_total") == pytest.approx(sum(r.cost_usd for r in rows))
    assert h.metric_sum("gen_ai_server_request_duration_seconds_count") == sum(1 for r in rows if r.status_code < 400)
    assert h.metric("inferwatch_inflight_requests") == 0


def test_span_has_genai_attributes_and_traceparent_reaches_worker(worker_gateway):
    h = worker_gateway
    h.client().chat.completions.create(model="demo", messages=MSG, max_tokens=2, temperature=0.5)
    [row] = h.rows()
    h.app.state.gateway.tracer_provider.force_flush()
    [span] = [s for s in h.exporter.get_finished_spans() if s.name == "chat demo"]
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "demo"
    assert a["gen_ai.response.model"] == row.model_version
    assert (
        a["gen_ai.usage.input_tokens"] == row.prompt_tokens and a["gen_ai.usage.output_tokens"] == row.completion_tokens
    )
    assert a["gen_ai.request.temperature"] == 0.5
    assert format(span.context.trace_id, "032x") == row.trace_id


def test_tenant_sees_only_its_own_usage(worker_gateway):
    h = worker_gateway
    h.client("acme").chat.completions.create(model="demo", messages=MSG, max_tokens=2)
    h.client("globex").chat.completions.create(model="demo", messages=MSG, max_tokens=3)
    h.flush()
    acme = httpx.get(h.url + "/v1/usage", headers=h.headers("acme")).json()
    assert {d["tenant"] for d in acme["data"]} == {"acme"} and acme["totals"]["requests"] == 1
    denied = httpx.get(h.url + "/v1/usage", params={"tenant": "acme"}, headers=h.headers("globex"))
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    admin = httpx.get(h.url + "/v1/usage", headers={"authorization": "Bearer test-admin-key-0123456789"}).json()
    assert {d["tenant"] for d in admin["data"]} == {"acme", "globex"}
    assert admin["totals"]["completion_tokens"] == sum(r.completion_tokens for r in h.rows())
