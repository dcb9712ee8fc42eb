"""Response cache: hits and misses, isolation between tenants and versions, bypass, streams."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from gateway.cache import LocalCache, no_cache
from gateway.config import CacheConfig, TenantConfig, VersionTarget
from tests.governance.conftest import stub_pair_gateway

TENANTS = {"acme": TenantConfig(cache=True), "globex": TenantConfig(cache=True), "plain": TenantConfig()}
CHAT = {
    "model": "m",
    "messages": [{"role": "user", "content": "what is two plus two"}],
    "temperature": 0,
    "max_tokens": 3,
}


def chat(h, tenant: str = "acme", headers: dict | None = None, **body) -> httpx.Response:
    r = httpx.post(
        h.url + "/v1/chat/completions",
        json={**CHAT, **body},
        headers={**h.headers(tenant), **(headers or {})},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r


@pytest.fixture
def cached(tmp_path):
    with stub_pair_gateway(tmp_path, tenants=TENANTS, cache=CacheConfig(enabled=True, hit_cost_usd=0.0)) as env:
        yield env


def test_hit_after_miss_is_recorded_free_and_counted(cached):
    h, s1, _ = cached
    first, second = chat(h), chat(h)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.json() == first.json()
    assert second.headers["x-model-version"] == "stub@1"
    assert s1.behaviour.requests == 1  # the upstream saw the first only
    rows = h.rows()
    assert [r.cache_hit for r in rows] == [False, True]
    assert rows[0].cost_usd == pytest.approx(3.0) and rows[1].cost_usd == 0.0
    assert rows[1].completion_tokens == 3 and rows[1].model_version == "stub@1" and rows[1].status_code == 200
    assert h.metric("inferwatch_cache_requests_total", tenant="acme", result="hit") == 1
    assert h.metric("inferwatch_cache_requests_total", tenant="acme", result="miss") == 1
    usage = httpx.get(h.url + "/v1/usage", headers=h.headers("acme")).json()
    assert usage["totals"]["cache_hits"] == 1 and usage["totals"]["cache_hit_rate"] == 0.5


def test_series_start_at_zero_and_redis_up_is_nan_without_redis(cached):
    h, _, _ = cached
    chat(h, "globex")
    samples = {
        (s.labels["tenant"], s.labels["result"]): s.value
        for fam in h.gateway.metrics.registry.collect()
        for s in fam.samples
        if s.name == "inferwatch_cache_requests_total"
    }
    assert samples == {("globex", "hit"): 0.0, ("globex", "miss"): 1.0}  # the hit series exists before the first hit
    up = h.gateway.metrics.registry.get_sample_value("inferwatch_redis_up")
    assert up != up  # NaN: no Redis configured, which is neither up nor down


def test_tenants_and_versions_do_not_share_entries(cached):
    h, s1, s2 = cached
    chat(h, "acme")
    assert chat(h, "globex").headers["x-cache"] == "miss"  # another tenant: its own entry
    assert s1.behaviour.requests == 2
    h.gateway.store.set_alias("m", [VersionTarget(version="stub@2")])
    deadline = time.monotonic() + 10
    while [t.version for t in h.gateway.aliases.aliases["m"]] != ["stub@2"] and time.monotonic() < deadline:
        time.sleep(0.05)
    r = chat(h, "acme")
    assert (r.headers["x-cache"], r.headers["x-model-version"]) == (
        "miss",
        "stub@2",
    )  # a new version never gets the old answer
    assert s2.behaviour.requests == 1
    assert chat(h, "acme").headers["x-cache"] == "hit"


def test_bypass_nondeterministic_and_opted_out_requests(cached):
    h, s1, _ = cached
    chat(h)
    assert chat(h, headers={"cache-control": "no-cache"}).headers["x-cache"] == "miss"
    assert "x-cache" not in chat(h, temperature=0.7).headers  # not deterministic: not cacheable
    assert chat(h, temperature=0.7, seed=7).headers["x-cache"] == "miss"  # a seed makes it deterministic
    assert chat(h, temperature=0.7, seed=7).headers["x-cache"] == "hit"
    assert "x-cache" not in chat(h, "plain").headers  # the tenant did not opt in
    assert s1.behaviour.requests == 5
    # the ledger knows which requests the cache was asked about: the hit rate's denominator
    assert [(r.cache_lookup, r.cache_hit) for r in h.rows()] == [
        (True, False),
        (True, False),
        (False, False),
        (True, False),
        (True, True),
        (False, False),
    ]
    usage = httpx.get(h.url + "/v1/usage", headers=h.headers("acme")).json()["totals"]
    assert (usage["requests"], usage["cache_lookups"], usage["cache_hits"], usage["cache_hit_rate"]) == (5, 4, 1, 0.25)


def test_stream_is_replayed_as_a_stream_with_the_openai_client(cached):
    h, s1, _ = cached
    client = openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0)

    def streamed() -> tuple[str, str | None, int | None, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="m",
            messages=CHAT["messages"],
            temperature=0,
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage = "", None, None
        for chunk in raw.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage.completion_tokens
        return text, finish, usage, raw.headers["x-cache"]

    first, second = streamed(), streamed()
    assert first[3] == "miss" and second[3] == "hit"
    assert second[:3] == first[:3] == ("tok tok tok tok ", "length", 4)
    assert s1.behaviour.requests == 1
    rows = h.rows()
    assert [(r.stream, r.cache_hit, r.completion_tokens) for r in rows] == [(True, False, 4), (True, True, 4)]
    assert rows[1].ttft_s is not None


def test_failed_answers_are_not_cached(cached):
    h, s1, _ = cached
    s1.behaviour.fail_status = 500
    r = httpx.post(h.url + "/v1/chat/completions", json=CHAT, headers=h.headers(), timeout=10)
    assert r.status_code == 500
    s1.behaviour.fail_status = None
    assert chat(h).headers["x-cache"] == "miss"


def test_local_cache_bounds_entries_bytes_and_ttl():
    now = [0.0]
    c = LocalCache(max_entries=2, max_bytes=10, ttl_s=5, clock=lambda: now[0])
    c.put("a", b"1234")
    c.put("b", b"1234")
    assert c.get("a") == b"1234"  # a is now the most recent
    c.put("c", b"1234")  # over 2 entries: b (least recent) goes
    assert (c.get("b"), len(c)) == (None, 2)
    c.put("d", b"123456789")  # over 10 bytes: the least recent go until it fits
    assert c.get("d") == b"123456789" and c.bytes <= 10
    c.put("huge", b"x" * 11)
    assert c.get("huge") is None
    now[0] = 6
    assert c.get("d") is None and len(c) == 0


def test_cache_control_directives():
    assert (
        no_cache("no-cache") and no_cache("max-age=0, No-Store") and not no_cache("max-age=60") and not no_cache(None)
    )
