"""What the gateway keeps up to date between requests: replica health (and its gauges), alias
weights and registered versions from the database (so a rollout or an alias change on any
replica reaches all), and the review queue."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
from sqlalchemy.exc import SQLAlchemyError

from safety import review

from .metrics import GatewayMetrics
from .routing import AliasTable
from ledger.governance import GovernanceStore
from .upstreams import OPEN, Replica, UpstreamPools

log = logging.getLogger("inferwatch.gateway")
REVIEW_SYNC_S = 30.0  # how often flagged/blocked hits of the ledger are copied to the review queue


class Upkeep:
    def __init__(
        self, store: GovernanceStore, pools: UpstreamPools, aliases: AliasTable, metrics: GatewayMetrics
    ) -> None:
        self.store, self.pools, self.aliases, self.metrics = store, pools, aliases, metrics
        self.registry: dict[str, dict[str, Any]] = {}  # registered versions (the expected side of what workers report)

    async def refresh_state(self) -> None:
        try:
            aliases = await asyncio.to_thread(self.store.aliases)
            self.registry = await asyncio.to_thread(self.store.versions)
        except SQLAlchemyError as exc:  # database away: keep routing by the last weights
            log.warning("cannot refresh alias weights: %s", type(exc).__name__)
            return
        if aliases:
            self.aliases.replace({a: [t for t in ts if t.version in self.pools.pools] for a, ts in aliases.items()})
        for alias, targets in self.aliases.aliases.items():
            for t in targets:
                self.metrics.alias_weight.labels(alias, t.version).set(t.weight)

    async def health(self, client: aiohttp.ClientSession) -> None:
        for r in await self.pools.check_all(client):
            self.metrics.forget_replica(r.url, r.version, self.aliases.aliases)
        self._update_upstream_gauges()

    async def review_sync(self) -> None:
        try:
            await asyncio.to_thread(review.sync, self.store.engine)
        except SQLAlchemyError as exc:  # database away: the hits wait in the ledger's spool
            log.warning("cannot sync the review queue: %s", type(exc).__name__)

    def _update_upstream_gauges(self) -> None:
        now = time.monotonic()
        m = self.metrics
        for r in self.pools.all_replicas():
            m.worker_up.labels(r.url, r.version).set(1 if r.healthy else 0)
            m.breaker_state.labels(r.url).set(r.breaker.state(now))
            for alias, targets in self.aliases.aliases.items():
                if any(t.version == r.version for t in targets):
                    serving = r.healthy and r.breaker.state(now) != OPEN
                    m.upstream_healthy.labels(alias, r.version, r.url).set(1 if serving else 0)
                    m.version_mismatch.labels(alias, r.url).set(1 if self.mismatch(r) else 0)

    def mismatch(self, r: Replica) -> bool:
        """The worker serves another version than the registry (or, unregistered, the
        configuration) says: another content digest, or another version id."""
        expected = _bare_digest((self.registry.get(r.version) or {}).get("digest"))
        if expected and r.reported_digest and _bare_digest(r.reported_digest) != expected:
            return True
        return r.reported_version is not None and "@" in r.version and r.reported_version != r.version


def _bare_digest(d: str | None) -> str | None:
    return d.removeprefix("sha256:") if d else None
