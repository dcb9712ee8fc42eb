"""The forward stage: send a request to a replica of its routed version and return the
upstream's response as soon as its headers arrived; before any byte reached the client,
failures are retried on another replica of the same version."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from . import tracing
from .config import GatewayConfig
from .context import RequestContext
from .errors import ErrorCode, GatewayError, no_healthy_upstream
from .metrics import GatewayMetrics
from .upstreams import Replica, UpstreamPools
from .usage import upstream_stream_options

_RETRYABLE_STATUS = {502, 503, 504}


class Forwarder:
    def __init__(self, config: GatewayConfig, pools: UpstreamPools, metrics: GatewayMetrics) -> None:
        self.config, self.pools, self.metrics = config, pools, metrics
        self.client: aiohttp.ClientSession | None = None  # set by the gateway's start(): it belongs to the serving loop

    async def forward(self, ctx: RequestContext, body: dict[str, Any]) -> tuple[aiohttp.ClientResponse, Replica]:
        """The response (headers read) and the replica, whose breaker still hears of a failure
        while the body is read."""
        outcome, version, deadline = ctx.outcome, ctx.version, ctx.deadline
        tried: set[str] = set()
        last_error: GatewayError | None = None
        for attempt in range(self.config.max_retries + 1):
            replica = self.pools.pick(version, tried) if version else None
            if replica is None:
                break
            tried.add(replica.url)
            outcome.retries = attempt
            if attempt:
                self.metrics.retries.labels(replica.url).inc()
            try:
                resp = await self._send(replica, ctx, body)
            except asyncio.TimeoutError as exc:
                if ctx.deadline_passed():  # the client's deadline, not the replica's fault
                    outcome.model_version = version
                    raise deadline.error() from exc  # type: ignore[union-attr]
                replica.breaker.failure(time.monotonic())
                last_error = GatewayError(
                    504,
                    f"The upstream did not answer in time ({type(exc).__name__}).",
                    ErrorCode.UPSTREAM_TIMEOUT,
                )
                continue
            except aiohttp.ClientError as exc:
                replica.breaker.failure(time.monotonic())
                last_error = GatewayError(
                    502,
                    f"Could not reach the upstream: {type(exc).__name__}.",
                    ErrorCode.UPSTREAM_UNREACHABLE,
                )
                continue
            if resp.status >= 500:
                replica.breaker.failure(time.monotonic())
                # another replica, where there is one; else the answer goes on (a fallback reads it)
                others = self.pools.pools[replica.version].candidates(time.monotonic(), tried)
                if resp.status in _RETRYABLE_STATUS and attempt < self.config.max_retries and others:
                    resp.release()
                    last_error = GatewayError(502, f"The upstream answered {resp.status}.", ErrorCode.UPSTREAM_ERROR)
                    continue
            else:
                replica.breaker.success()
            assert version is not None
            outcome.upstream, outcome.model_version = replica.url, version
            outcome.provider = self.pools.pools[version].config.provider
            return resp, replica
        if last_error is not None:
            outcome.model_version = version
            raise last_error
        raise no_healthy_upstream(ctx.alias)

    async def _send(self, replica: Replica, ctx: RequestContext, body: dict[str, Any]) -> aiohttp.ClientResponse:
        cfg = self.pools.pools[replica.version].config
        headers = {
            "x-request-id": ctx.request_id,
            "content-type": "application/json",
            **tracing.traceparent_headers(ctx.span),
            **(ctx.deadline.header() if ctx.deadline else {}),
        }
        timeout = None
        if ctx.deadline is not None:  # the whole exchange, body and stream included, ends at the deadline
            c = self.config
            timeout = aiohttp.ClientTimeout(
                total=min(ctx.deadline.remaining(), c.request_timeout_s),
                connect=c.connect_timeout_s,
                sock_read=c.first_byte_timeout_s,
            )
        if cfg.api_key:
            headers["authorization"] = f"Bearer {cfg.api_key}"
        sent = {**body, "model": replica.served_model or body["model"]}
        if body.get("stream"):  # exact usage for billing, in every chunk where the upstream can
            sent["stream_options"] = upstream_stream_options(body.get("stream_options"), cfg.stream_usage)
        payload = json.dumps(sent).encode()
        assert self.client is not None
        replica.inflight += 1
        try:
            return await self.client.post(
                replica.url + ctx.operation.path,
                data=payload,
                headers=headers,
                timeout=timeout if timeout is not None else self.client.timeout,
            )
        finally:
            replica.inflight -= 1
