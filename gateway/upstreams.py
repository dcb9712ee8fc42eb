"""Upstream replicas: health checks, circuit breakers, and replica choice."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .config import UpstreamConfig

log = logging.getLogger("inferwatch.gateway")

CLOSED, HALF_OPEN, OPEN = 0, 1, 2


@dataclass
class Breaker:
    """Opens after `failures` consecutive failures; after `open_s` lets one trial through."""

    failures: int
    open_s: float
    consecutive: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False

    def state(self, now: float) -> int:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if now - self.opened_at >= self.open_s else OPEN

    def allow(self, now: float) -> bool:
        s = self.state(now)
        if s == CLOSED:
            return True
        if s == HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def success(self) -> None:
        self.consecutive, self.opened_at, self.trial_in_flight = 0, None, False

    def failure(self, now: float) -> None:
        self.consecutive += 1
        self.trial_in_flight = False
        if self.opened_at is not None or self.consecutive >= self.failures:
            self.opened_at = now  # (re)open: a failed trial starts a new open period


@dataclass
class Replica:
    url: str
    version: str  # configured version key
    breaker: Breaker
    healthy: bool = False
    reported_version: str | None = None  # what the worker says it serves
    reported_digest: str | None = None  # its content digest, where the worker reports one
    served_model: str | None = None
    max_model_len: int | None = None  # the context the worker reports (ours and vLLM do)
    inflight: int = 0
    last_error: str | None = None


@dataclass
class VersionPool:
    version: str
    config: UpstreamConfig
    replicas: list[Replica] = field(default_factory=list)

    def candidates(self, now: float, exclude: set[str]) -> list[Replica]:
        ok = [r for r in self.replicas if r.healthy and r.url not in exclude and r.breaker.state(now) != OPEN]
        return sorted(ok, key=lambda r: r.inflight)  # least busy first

    def context_window(self) -> int | None:
        """The configured context, else the smallest any replica reports; None: unknown."""
        reported = [r.max_model_len for r in self.replicas if r.max_model_len]
        return self.config.context_window or (min(reported) if reported else None)

    def healthy_replicas(self) -> int:
        return sum(r.healthy for r in self.replicas)


async def resolve(url: str) -> set[str]:
    """The replica URLs behind a discovery URL: one per address its host name resolves to."""
    parts = urlsplit(url.rstrip("/"))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    hosts = {f"[{info[4][0]}]" if info[0] == socket.AF_INET6 else info[4][0] for info in infos}
    return {urlunsplit((parts.scheme, f"{h}:{port}", parts.path, "", "")) for h in hosts}


class UpstreamPools:
    def __init__(self, upstreams: dict[str, UpstreamConfig], *, breaker_failures: int, breaker_open_s: float) -> None:
        self._breaker = (breaker_failures, breaker_open_s)
        self.pools = {
            version: VersionPool(version, cfg, [self._replica(u, version, cfg) for u in cfg.urls])
            for version, cfg in upstreams.items()
        }
        self._discovered: dict[str, set[str]] = {version: set() for version in upstreams}

    def _replica(self, url: str, version: str, cfg: UpstreamConfig) -> Replica:
        return Replica(url.rstrip("/"), version, Breaker(*self._breaker), served_model=cfg.served_model)

    async def discover(self) -> list[Replica]:
        """Resolve every discovery URL again: new addresses join (unhealthy until checked),
        vanished ones leave. A name that fails to resolve keeps the replicas it had, so a DNS
        hiccup does not empty a pool. Returns the replicas that left."""
        removed: list[Replica] = []
        for version, pool in self.pools.items():
            if not pool.config.discover:
                continue
            found: set[str] = set()
            for url in pool.config.discover:
                try:
                    found |= await resolve(url)
                except OSError as exc:
                    log.warning("cannot resolve %s for %s: %s; keeping its replicas", url, version, exc)
                    found |= {r.url for r in pool.replicas if r.url in self._discovered[version]}
            static = {u.rstrip("/") for u in pool.config.urls}
            gone = self._discovered[version] - found - static
            removed += [r for r in pool.replicas if r.url in gone]
            pool.replicas = [r for r in pool.replicas if r.url not in gone]
            known = {r.url for r in pool.replicas}
            pool.replicas += [self._replica(u, version, pool.config) for u in sorted(found - known)]
            self._discovered[version] = found - static
        return removed

    def all_replicas(self) -> list[Replica]:
        return [r for p in self.pools.values() for r in p.replicas]

    def pick(self, version: str, exclude: set[str]) -> Replica | None:
        pool = self.pools.get(version)
        if pool is None:
            return None
        now = time.monotonic()
        for r in pool.candidates(now, exclude):
            if r.breaker.allow(now):
                return r
        return None

    async def check_all(self, client: aiohttp.ClientSession) -> list[Replica]:
        """Discover, then health-check every replica; returns the replicas discovery removed."""
        removed = await self.discover()
        await asyncio.gather(*(self._check(client, r) for r in self.all_replicas()))
        return removed

    async def _check(self, client: aiohttp.ClientSession, r: Replica) -> None:
        cfg = self.pools[r.version].config
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        try:
            async with client.get(
                r.url + "/v1/models", headers=headers, timeout=aiohttp.ClientTimeout(total=5.0)
            ) as resp:
                resp.raise_for_status()
                data = (await resp.json(content_type=None)).get("data") or []
            if not data:
                raise ValueError("upstream lists no models")
            card = data[0]
            r.served_model = cfg.served_model or card["id"]
            r.reported_version = card.get("version")  # our worker reports it; vLLM does not
            r.reported_digest = card.get("digest")
            r.max_model_len = card.get("max_model_len") if isinstance(card.get("max_model_len"), int) else None
            if not r.healthy:
                log.info("upstream %s healthy (%s)", r.url, r.reported_version or r.served_model)
            r.healthy, r.last_error = True, None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as exc:
            if r.healthy:
                log.warning("upstream %s unhealthy: %s", r.url, exc)
            r.healthy, r.last_error = False, f"{type(exc).__name__}: {exc}"
