"""Per-minute and per-hour rollup increments computed in memory from a batch of records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ledger.buckets import bucket_for
from ledger.record import RequestRecord

ROLLUP_KEY = ("minute", "tenant", "alias", "model_version", "operation", "status_class", "error_type")
ROLLUP_VALUES = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_sum_s",
    "ttft_sum_s",
    "ttft_count",
    "tpot_sum_s",
    "tpot_count",
    "safety_flagged",
    "safety_blocked",
    "client_disconnects",
    "cache_hits",
    "safety_incidents_input",
    "safety_incidents_output",
    "cache_lookups",
)
BUCKET_KEY = ("minute", "tenant", "alias", "model_version", "status_class", "metric", "le")
HOUR_ROLLUP_KEY = ("hour", *ROLLUP_KEY[1:])
HOUR_BUCKET_KEY = ("hour", *BUCKET_KEY[1:])
INCIDENT_ACTIONS = frozenset({"block", "flag"})  # a redaction is not an incident


def minute_of(ts: datetime) -> datetime:
    """UTC minute of a timestamp (a naive timestamp is taken as UTC)."""
    ts = ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)
    return ts.replace(second=0, microsecond=0)


def hour_of(ts: datetime) -> datetime:
    """UTC hour of a timestamp (a naive timestamp is taken as UTC)."""
    return minute_of(ts).replace(minute=0)


def incident(r: RequestRecord, direction: str) -> int:
    """1 if `r` has a blocked or flagged hit in `direction` (as inferwatch_safety_incidents_total)."""
    return int(any(h.direction == direction and h.action in INCIDENT_ACTIONS for h in r.safety))


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
            1,
            r.prompt_tokens,
            r.completion_tokens,
            r.cost_usd,
            r.latency_s,
            r.ttft_s or 0.0,
            int(r.ttft_s is not None),
            r.tpot_s or 0.0,
            int(r.tpot_s is not None),
            int(bool(r.safety)),
            int(any(h.action == "block" for h in r.safety)),
            int(r.client_disconnected),
            int(r.cache_hit),
            incident(r, "input"),
            incident(r, "output"),
            int(r.cache_lookup),
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

    def hour_rollup_rows(self) -> list[dict[str, Any]]:
        """The minute increments summed per hour (what `request_rollups_hour` adds)."""
        hours: dict[tuple[Any, ...], list[float]] = {}
        for k, v in self.rollups.items():
            hk = (k[0].replace(minute=0), *k[1:])
            acc = hours.get(hk)
            if acc is None:
                hours[hk] = list(v)
            else:
                for i, x in enumerate(v):
                    acc[i] += x
        return [
            {**dict(zip(HOUR_ROLLUP_KEY, k, strict=True)), **dict(zip(ROLLUP_VALUES, v, strict=True))}
            for k, v in sorted(hours.items())
        ]

    def hour_bucket_rows(self) -> list[dict[str, Any]]:
        hours: dict[tuple[Any, ...], int] = {}
        for k, n in self.buckets.items():
            hk = (k[0].replace(minute=0), *k[1:])
            hours[hk] = hours.get(hk, 0) + n
        return [{**dict(zip(HOUR_BUCKET_KEY, k, strict=True)), "count": n} for k, n in sorted(hours.items())]


def increments_of(records: Iterable[RequestRecord], bounds: Mapping[str, Sequence[float]]) -> Increments:
    inc = Increments()
    for r in records:
        inc.add(r, bounds)
    return inc
