"""Per-minute rollup increments computed in memory from a batch of records."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ledger.buckets import bucket_for
from ledger.record import RequestRecord

ROLLUP_KEY = ("minute", "tenant", "alias", "model_version", "operation", "status_class", "error_type")
ROLLUP_VALUES = (
    "requests", "prompt_tokens", "completion_tokens", "cost_usd", "latency_sum_s",
    "ttft_sum_s", "ttft_count", "tpot_sum_s", "tpot_count", "safety_flagged",
    "safety_blocked", "client_disconnects", "cache_hits",
)
BUCKET_KEY = ("minute", "tenant", "alias", "model_version", "status_class", "metric", "le")


def minute_of(ts: datetime) -> datetime:
    """UTC minute of a timestamp (a naive timestamp is taken as UTC)."""
    ts = ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)
    return ts.replace(second=0, microsecond=0)


@dataclass
class Increments:
    """Rollup and bucket increments of one batch, keyed by primary key."""

    rollups: dict[tuple[Any, ...], list[float]] = field(default_factory=dict)
    buckets: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def add(self, r: RequestRecord, bounds: Mapping[str, Sequence[float]]) -> None:
        minute = minute_of(r.started_at)
        version = r.model_version or ""
        status = r.status_class
        key = (minute, r.tenant, r.alias, version, r.operation, status, r.error_type or "")
        v = self.rollups.get(key)
        if v is None:
            v = self.rollups[key] = [0] * len(ROLLUP_VALUES)
        inc = (
            1, r.prompt_tokens, r.completion_tokens, r.cost_usd, r.latency_s,
            r.ttft_s or 0.0, int(r.ttft_s is not None),
            r.tpot_s or 0.0, int(r.tpot_s is not None),
            int(bool(r.safety)), int(any(h.action == "block" for h in r.safety)),
            int(r.client_disconnected), int(r.cache_hit),
        )
        for i, x in enumerate(inc):
            v[i] += x
        for metric, value in (("latency", r.latency_s), ("ttft", r.ttft_s), ("tpot", r.tpot_s)):
            le = bucket_for(value, bounds[metric])
            if le is not None:
                bkey = (minute, r.tenant, r.alias, version, status, metric, le)
                self.buckets[bkey] = self.buckets.get(bkey, 0) + 1

    def rollup_rows(self) -> list[dict[str, Any]]:
        # Sorted so concurrent writers lock rollup rows in the same order (no deadlocks).
        return [
            {**dict(zip(ROLLUP_KEY, k, strict=True)), **dict(zip(ROLLUP_VALUES, v, strict=True))}
            for k, v in sorted(self.rollups.items())
        ]

    def bucket_rows(self) -> list[dict[str, Any]]:
        return [{**dict(zip(BUCKET_KEY, k, strict=True)), "count": n} for k, n in sorted(self.buckets.items())]


def increments_of(records: Iterable[RequestRecord], bounds: Mapping[str, Sequence[float]]) -> Increments:
    inc = Increments()
    for r in records:
        inc.add(r, bounds)
    return inc
