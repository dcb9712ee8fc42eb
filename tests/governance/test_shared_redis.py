"""Rate limits and the response cache shared by two gateway replicas through one Redis."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx

import pytest

from gateway.config import Budget, CacheConfig, Limits, TenantConfig, UpstreamConfig, VersionTarget
from tests.gateway.conftest import gateway_server, stub_server
from tests.stub_upstream import completion_tokens, prompt_tokens
from tests.servers import free_port

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": 2}


@contextlib.contextmanager
def two_replicas(tmp_path: Path, redis_url: str | None, **overrides):
    """Two gateways (separate apps, one database) over one stub; both know tenant acme's key."""
    tenants = overrides.pop("tenants", {"acme": TenantConfig(limits=Limits(rpm=4), cache=True)})
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    with stub_server() as stub:
        ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
        aliases = {"m": [VersionTarget(version="stub@1")]}
        with (
            gateway_server(tmp_path / "a", db, ups, aliases, tenants=tenants, redis_url=redis_url, **overrides) as a,
            gateway_server(tmp_path / "b", db, ups, aliases, tenants=tenants, redis_url=redis_url, **overrides) as b,
        ):
            yield a, b, stub


def test_two_replicas_enforce_one_rpm_together(tmp_path, redis_url):
    with two_replicas(tmp_path, redis_url) as (a, b, _):
        codes = []
        for i in range(6):
            h = (a, b)[i % 2]
            r = httpx.post(
                h.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10
            )
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 200, 429, 429]  # 4 per minute for both replicas together, not 4 each
        refused = httpx.post(
            b.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10
        )
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert a.metric("inferwatch_redis_up") == 1


def test_replicas_share_cache_entries(tmp_path, redis_url):
    with two_replicas(tmp_path, redis_url, cache=CacheConfig(enabled=True)) as (a, b, stub):
        first = httpx.post(a.url + "/v1/chat/completions", json=CHAT, headers=a.headers("acme"), timeout=10)
        second = httpx.post(b.url + "/v1/chat/completions", json=CHAT, headers=a.headers("acme"), timeout=10)
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert second.json() == first.json() and stub.behaviour.requests == 1


def test_unreachable_redis_falls_back_to_local_limits(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with two_replicas(tmp_path, dead) as (a, b, _):
        codes = [
            httpx.post(
                a.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10
            ).status_code
            for _ in range(5)
        ]
        assert codes == [200, 200, 200, 200, 429]  # still served, and still limited (by this replica alone)
        assert a.metric("inferwatch_redis_up") == 0
        # the other replica counts on its own: the fallback is per replica
        assert (
            httpx.post(
                b.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10
            ).status_code
            == 200
        )


@pytest.mark.parametrize("shared", [True, False])
def test_replicas_share_budget_counters_at_once(tmp_path, redis_url, shared):
    """Three requests use up a token budget: two on replica a, one on b. With Redis, b refuses
    the next request at once; without it, b knows only its own spend until its next read of
    the ledger (an hour away here), so it still serves one."""
    body = {**CHAT, "temperature": 1}
    per_request = prompt_tokens(body) + completion_tokens(body)
    tenants = {
        "acme": TenantConfig(
            limits=Limits(rpm=None), budgets=[Budget(period="day", kind="tokens", limit=3 * per_request)]
        )
    }
    with two_replicas(tmp_path, redis_url if shared else None, tenants=tenants, budget_refresh_s=3600) as (a, b, _):
        send = lambda h: httpx.post(h.url + "/v1/chat/completions", json=body, headers=a.headers("acme"), timeout=10)  # noqa: E731
        assert [send(h).status_code for h in (b, a, a)] == [200, 200, 200]
        last = send(b)
        if shared:
            assert last.status_code == 429 and last.json()["error"]["code"] == "budget_exceeded"
        else:
            assert last.status_code == 200
