"""The response cache's week: hit rate per tenant and model, and what the hits saved.

Requests, lookups and hits come from the hourly rollups (the numbers GET /v1/usage shows); the
hits' tokens and charges from the raw request rows marked `cache_hit` (a hit records the cached
answer's usage). The hit rate is hits over lookups: the requests the cache could answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ledger.models import Request
from ledger.queries import Conn
from reports.model import CacheLine, CacheSection, ratio
from reports.traffic import Slice

# What a request would have cost without the cache: (alias, model version, prompt tokens,
# completion tokens) -> US dollars, at the gateway's prices.
MissCost = Callable[[str, str | None, int, int], float]

HIT_RATE_RULE = (
    "Hit rate: requests answered from the cache over all requests (as GET /v1/usage counts them); only "
    "deterministic requests (temperature 0 or a seed) of tenants that opted in can be answered from it."
)
SAVED_RULE = (
    "Saved (an estimate): what the hits' tokens (the cached answer's prompt and completion tokens, which "
    "each hit records) cost at the gateway's current prices for their model version, less what the hits "
    "were charged. A fresh answer's length would have varied."
)
NOT_PRICED = "Saved: not estimated (no prices given)."


def hit_usage(conn: Conn, start: datetime, end: datetime) -> dict[Slice, tuple[int, int, float]]:
    """(prompt tokens, completion tokens, cost) of the cache hits per slice over [start, end)."""
    stmt = (
        select(
            Request.tenant,
            Request.alias,
            Request.model_version,
            func.sum(Request.prompt_tokens),
            func.sum(Request.completion_tokens),
            func.sum(Request.cost_usd),
        )
        .where(Request.cache_hit.is_(True), Request.started_at >= start, Request.started_at < end)
        .group_by(Request.tenant, Request.alias, Request.model_version)
    )
    return {(t, a, v or ""): (int(pt or 0), int(ct or 0), float(c or 0)) for t, a, v, pt, ct, c in conn.execute(stmt)}


def _line(name: str, parts: Iterable[CacheLine], **dims: str | None) -> CacheLine:
    parts = list(parts)
    misses = [p.miss_cost_usd for p in parts]
    return CacheLine(
        name=name,
        **dims,
        requests=sum(p.requests for p in parts),
        lookups=sum(p.lookups for p in parts),
        hits=sum(p.hits for p in parts),
        hit_prompt_tokens=sum(p.hit_prompt_tokens for p in parts),
        hit_completion_tokens=sum(p.hit_completion_tokens for p in parts),
        hit_cost_usd=sum(p.hit_cost_usd for p in parts),
        miss_cost_usd=None if None in misses else sum(m for m in misses if m is not None),
    )


def _group(slices: dict[Slice, CacheLine], key: Callable[[Slice], Any]) -> dict[Any, list[CacheLine]]:
    groups: dict[Any, list[CacheLine]] = {}
    for s, line in slices.items():
        groups.setdefault(key(s), []).append(line)
    return groups


def _ranked(lines: Iterable[CacheLine]) -> list[CacheLine]:
    return sorted((x for x in lines if x.requests), key=lambda x: (-x.hits, -x.requests, x.name))


def build(
    conn: Conn,
    start: datetime,
    end: datetime,
    sums: dict[Slice, dict[str, float]],
    prev: dict[Slice, dict[str, float]],
    *,
    enabled: bool,
    miss_cost: MissCost | None,
) -> CacheSection | None:
    """`sums`, `prev`: the week's and the week before's rollup sums per slice
    (`reports.traffic.slices`). None when the cache is off and answered nothing in the week."""
    hits = hit_usage(conn, start, end)
    slices = {}
    for s in sums.keys() | hits.keys():
        pt, ct, cost = hits.get(s, (0, 0, 0.0))
        row = sums.get(s, {})
        priced = (miss_cost(s[1], s[2] or None, pt, ct) if s in hits else 0.0) if miss_cost else None
        slices[s] = CacheLine(
            name="",
            requests=int(row.get("requests", 0)),
            lookups=int(row.get("cache_lookups", 0)),
            hits=int(row.get("cache_hits", 0)),
            hit_prompt_tokens=pt,
            hit_completion_tokens=ct,
            hit_cost_usd=cost,
            miss_cost_usd=priced,
        )
    totals = _line("all traffic", slices.values())
    if not enabled and not totals.hits:
        return None
    return CacheSection(
        enabled=enabled,
        totals=totals,
        by_tenant=_ranked(_line(t, parts, tenant=t) for t, parts in _group(slices, lambda s: s[0]).items()),
        by_model=_ranked(
            _line(f"{a} · {v or '(no version)'}", parts, alias=a, model_version=v or None)
            for (a, v), parts in _group(slices, lambda s: (s[1], s[2])).items()
        ),
        method=HIT_RATE_RULE + " " + (SAVED_RULE if miss_cost else NOT_PRICED),
        prev_hit_rate=ratio(
            sum(x.get("cache_hits", 0) for x in prev.values()), sum(x.get("cache_lookups", 0) for x in prev.values())
        ),
    )
