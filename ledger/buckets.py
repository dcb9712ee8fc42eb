"""Histogram bucket bounds shared by metrics and ledger rollups.

Defaults are the OpenTelemetry GenAI recommended buckets. The composition root adds every SLO
threshold to them (`with_thresholds`) so that "value <= T" is exact for each threshold T.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

LATENCY_BUCKETS: tuple[float, ...] = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TTFT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
TPOT_BUCKETS: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
)

METRICS: tuple[str, ...] = ("latency", "ttft", "tpot")

DEFAULT_BUCKETS: Mapping[str, tuple[float, ...]] = {
    "latency": LATENCY_BUCKETS,
    "ttft": TTFT_BUCKETS,
    "tpot": TPOT_BUCKETS,
}


def with_thresholds(bounds: Iterable[float], thresholds: Iterable[float]) -> tuple[float, ...]:
    """Sorted, de-duplicated union of `bounds` and `thresholds` (all finite and > 0)."""
    out = sorted({float(b) for b in (*bounds, *thresholds)})
    for b in out:
        if not math.isfinite(b) or b <= 0:
            raise ValueError(f"bucket bound must be finite and > 0, got {b!r}")
    return tuple(out)


def normalize(buckets: Mapping[str, Sequence[float]] | None) -> dict[str, tuple[float, ...]]:
    """Validated bounds for each of METRICS; missing metrics take the defaults."""
    given = dict(buckets or {})
    unknown = set(given) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown histogram metrics {sorted(unknown)}; expected {METRICS}")
    return {m: with_thresholds(given.get(m, DEFAULT_BUCKETS[m]), ()) for m in METRICS}


def bucket_for(value: float | None, bounds: Sequence[float]) -> float | None:
    """The smallest bound >= value (a value equal to a bound belongs to it); None above the
    largest bound, or for a missing/NaN value. `bounds` must be sorted ascending."""
    if value is None or math.isnan(value):
        return None
    i = bisect_left(bounds, value)
    return bounds[i] if i < len(bounds) else None
