"""Decode shapes: batches padded to a few batch sizes, KV windows to powers of two.

A CUDA graph replays fixed shapes, so each (batch, window) pair is one graph, captured during
warm-up. Padding costs little: dummy rows compute on scratch and windows at most double.
"""

from __future__ import annotations

import bisect

MIN_WINDOW = 64


def powers_of_two(limit: int, start: int = 1) -> list[int]:
    """start, 2·start, 4·start, … below `limit`, then `limit` itself."""
    out, n = [], start
    while n < limit:
        out.append(n)
        n *= 2
    return out + [limit]


def batch_buckets(max_batch: int) -> list[int]:
    return powers_of_two(max_batch)


def window_buckets(cache_length: int) -> list[int]:
    return powers_of_two(cache_length, min(MIN_WINDOW, cache_length))


def pick(buckets: list[int], n: int) -> int:
    """The smallest bucket holding `n` (buckets sorted ascending)."""
    i = bisect.bisect_left(buckets, n)
    if i == len(buckets):
        raise ValueError(f"{n} exceeds the largest bucket {buckets[-1]}")
    return buckets[i]
