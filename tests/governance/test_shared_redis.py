"""Rate limits and the response cache shared by two gateway replicas through one Redis."""
from __future__ import annotations

import contextlib
from pathlib import Path

import httpx

from gateway.config import CacheConfig, Limits, TenantConfig, UpstreamConfig, VersionTarget
from tests.gateway.conftest import gateway_server, stub_server
from tests.servers import free_port

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": 2}


@contextlib.contextmanager
def two_replicas(tmp_path: Path, redis_url: str | None, **overrides):  # noqa: ANN003, ANN201
    """Two gateways (separate apps, one database) over one stub; both know tenant acme's key."""
    tenants = overrides.pop("tenants", {"acme": TenantConfig(limits=Limits(rpm=4), cache=True)})
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    with stub_server() as stub:
        ups = {"stub@1": UpstreamConfig(urls=[stub.url])}
        aliases = {"m": [VersionTarget(version="stub@1")]}
        with gateway_server(tmp_path / "a", db, ups, aliases, tenants=tenants, redis_url=redis_url, **overrides) as a, \
             gateway_server(tmp_path / "b", db, ups, aliases, tenants=tenants, redis_url=redis_url, **overrides) as b:
            yield a, b, stub


def test_two_replicas_enforce_one_rpm_together(tmp_path, redis_url):  # noqa: ANN001
    with two_replicas(tmp_path, redis_url) as (a, b, _):
        codes = []
        for i in range(6):
            h = (a, b)[i % 2]
            r = httpx.post(h.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10)
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 200, 429, 429]  # 4 per minute for both replicas together, not 4 each
        refused = httpx.post(b.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10)
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert a.metric("inferwatch_redis_up") == 1


def test_replicas_share_cache_entries(tmp_path, redis_url):  # noqa: ANN001
    with two_replicas(tmp_path, redis_url, cache=CacheConfig(enabled=True)) as (a, b, stub):
        first = httpx.post(a.url + "/v1/chat/completions", json=CHAT, headers=a.headers("acme"), timeout=10)
        second = httpx.post(b.url + "/v1/chat/completions", json=CHAT, headers=a.headers("acme"), timeout=10)
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert second.json() == first.json() and stub.behaviour.requests == 1


def test_unreachable_redis_falls_back_to_local_limits(tmp_path):  # noqa: ANN001
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with two_replicas(tmp_path, dead) as (a, b, _):
        codes = [httpx.post(a.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10).status_code
                 for _ in range(5)]
        assert codes == [200, 200, 200, 200, 429]  # still served, and still limited (by this replica alone)
        assert a.metric("inferwatch_redis_up") == 0
        # the other replica counts on its own: the fallback is per replica
        assert httpx.post(b.url + "/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=a.headers("acme"), timeout=10).status_code == 200
