"""Replicas discovered from DNS (a Kubernetes headless Service): each address is a replica,
re-resolved at every health check, so workers added or removed by an autoscaler join and
leave the pool, and a removed one leaves no series behind."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from gateway import upstreams
from gateway.config import UpstreamConfig
from gateway.metrics import GatewayMetrics
from gateway.upstreams import UpstreamPools


def test_resolve_gives_one_replica_per_address():
    # the machine's real resolver: localhost is 127.0.0.1 (and ::1 where IPv6 is configured)
    found = asyncio.run(upstreams.resolve("http://localhost:8001/"))
    assert "http://127.0.0.1:8001" in found
    assert found <= {"http://127.0.0.1:8001", "http://[::1]:8001"}


def test_replicas_join_and_leave_with_dns(monkeypatch: pytest.MonkeyPatch):
    # stands in for cluster DNS, which this machine does not have: the addresses of the Service now
    dns: dict[str, set[str] | OSError] = {"http://workers:8001": {"http://10.0.0.1:8001", "http://10.0.0.2:8001"}}

    async def fake_resolve(url: str) -> set[str]:
        answer = dns[url]
        if isinstance(answer, OSError):
            raise answer
        return set(answer)

    monkeypatch.setattr(upstreams, "resolve", fake_resolve)
    cfg = UpstreamConfig(urls=["http://static:8001"], discover=["http://workers:8001"])
    pools = UpstreamPools({"v1": cfg}, breaker_failures=3, breaker_open_s=10)

    def urls() -> set[str]:
        return {r.url for r in pools.pools["v1"].replicas}

    assert asyncio.run(pools.discover()) == [] and urls() == {
        "http://static:8001",
        "http://10.0.0.1:8001",
        "http://10.0.0.2:8001",
    }
    assert not any(r.healthy for r in pools.all_replicas())  # nobody is routed to before its first check
    first = next(r for r in pools.all_replicas() if r.url == "http://10.0.0.1:8001")
    first.healthy = True

    dns["http://workers:8001"] = OSError("temporary failure in name resolution")
    assert asyncio.run(pools.discover()) == [] and len(urls()) == 3  # a DNS hiccup empties nothing

    dns["http://workers:8001"] = {"http://10.0.0.1:8001", "http://10.0.0.3:8001"}  # one scaled in, one out
    removed = asyncio.run(pools.discover())
    assert [r.url for r in removed] == ["http://10.0.0.2:8001"]
    assert urls() == {"http://static:8001", "http://10.0.0.1:8001", "http://10.0.0.3:8001"}
    kept = next(r for r in pools.all_replicas() if r.url == "http://10.0.0.1:8001")
    assert kept is first and kept.healthy  # a replica that stays keeps its health and breaker

    dns["http://workers:8001"] = set()
    assert {r.url for r in asyncio.run(pools.discover())} == {"http://10.0.0.1:8001", "http://10.0.0.3:8001"}
    assert urls() == {"http://static:8001"}  # configured URLs are never discovered away


def test_a_removed_replica_leaves_no_series():
    m = GatewayMetrics()
    for url in ("http://10.0.0.1:8001", "http://10.0.0.2:8001"):
        m.worker_up.labels(url, "v1").set(1)
        m.breaker_state.labels(url).set(0)
        m.upstream_healthy.labels("chat", "v1", url).set(1)
        m.version_mismatch.labels("chat", url).set(0)
    m.forget_replica("http://10.0.0.2:8001", "v1", ["chat", "other-alias"])
    text = generate_latest(m.registry).decode()
    assert "10.0.0.2" not in text and text.count("10.0.0.1") == 4


def test_an_upstream_needs_urls_or_discovery():
    with pytest.raises(ValidationError, match="needs `urls`, `discover` or both"):
        UpstreamConfig()
    with pytest.raises(ValidationError, match="not an http"):
        UpstreamConfig(discover=["workers:8001"])
    assert UpstreamConfig(discover=["http://inferwatch-worker.inferwatch.svc:8001"]).urls == []
