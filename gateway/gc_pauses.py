"""The cyclic garbage collector's passes as a Prometheus histogram by generation,
`inferwatch_gc_pause_seconds`: the process (its event loop included) stands still for each,
so a tail-latency step that lines up with this metric is the collector, not the upstream.
Counted only between ``start`` and ``stop`` (the gateway: while it serves).

The callback only adds to plain lists: it runs wherever an allocation starts a collection,
and taking a metric's lock there could deadlock the thread that already holds it.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

NAME = "inferwatch_gc_pause_seconds"
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GENERATIONS = 3


class GCPauses(Collector):
    def __init__(self) -> None:
        self._counts = [[0] * (len(BUCKETS) + 1) for _ in range(GENERATIONS)]  # the last: above 1 s
        self._sums = [0.0] * GENERATIONS
        self._started = 0.0

    def register(self, registry: CollectorRegistry) -> GCPauses:
        registry.register(self)
        return self

    def start(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        seconds, gen = time.perf_counter() - self._started, info["generation"]
        self._counts[gen][bisect.bisect_left(BUCKETS, seconds)] += 1
        self._sums[gen] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            NAME, "Passes of Python's cyclic garbage collector in the gateway process", labels=["generation"]
        )
        bounds = (*map(str, BUCKETS), "+Inf")
        for gen in range(GENERATIONS):
            cumulative = itertools.accumulate(list(self._counts[gen]))  # a snapshot: a pass may land meanwhile
            family.add_metric([str(gen)], list(zip(bounds, cumulative, strict=True)), sum_value=self._sums[gen])
        yield family
