"""What the gateway built at startup is frozen (``gc.freeze``) while it serves, so the
collector's full passes under load walk what requests keep alive, not the whole process
(BENCHMARKS.md: 200-400 ms pauses of the event loop before); stopping unfreezes it. Each
pass is timed into ``inferwatch_gc_pause_seconds`` while the gateway serves."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from gateway.config import UpstreamConfig, VersionTarget
from gateway.gc_pauses import BUCKETS, NAME, GCPauses
from slo.metrics_catalog import GC_PAUSE
from tests.gateway.conftest import Stub, gateway_server
from tests.prom_text import samples


def _samples(text: str, generation: str) -> dict[str, float]:
    """suffix (and le) -> value of inferwatch_gc_pause_seconds for one generation."""
    out = {}
    for suffix in ("bucket", "count", "sum"):
        for s in samples(text, "inferwatch_gc_pause_seconds_" + suffix, generation=generation):
            out[suffix + (":" + s.labels["le"] if "le" in s.labels else "")] = s.value
    return out


def test_startup_objects_are_frozen_while_serving_and_unfrozen_after(tmp_path: Path, stub: Stub):
    with gateway_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'l.db'}",
        {"stub@1": UpstreamConfig(urls=[stub.url])},
        {"m": [VersionTarget(version="stub@1")]},
    ) as h:
        pauses = h.gateway.metrics.gc_pauses
        assert pauses._on_gc in gc.callbacks
        answer = h.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        before = _samples(httpx.get(h.url + "/metrics").text, "2").get("count", 0.0)
        gc.collect()
        frozen, walked = gc.get_freeze_count(), len(gc.get_objects(generation=2))
        assert frozen > 100_000, frozen  # the modules, schemas and safety data of startup
        assert walked < frozen / 2, (walked, frozen)
        after = _samples(httpx.get(h.url + "/metrics").text, "2")
        assert after["count"] >= before + 1, (before, after)
        assert after["sum"] > 0
    assert gc.get_freeze_count() == 0
    assert pauses._on_gc not in gc.callbacks


def test_each_pass_lands_in_its_generations_buckets_cumulatively():
    registry = CollectorRegistry()
    pauses = GCPauses().register(registry)
    gc.disable()  # only the passes this test asks for
    try:
        pauses.start()
        pauses.start()  # twice: still one callback
        for _ in range(3):
            gc.collect(1)
        pauses.stop()
        gc.collect(1)  # stopped: not counted
    finally:
        pauses.stop()
        gc.enable()
    text = generate_latest(registry).decode()
    gen1 = _samples(text, "1")
    assert gen1["count"] == 3, gen1
    cumulative = [gen1[f"bucket:{b}"] for b in ("0.0005", "0.001", "0.0025", "0.005", "0.01")]
    assert cumulative == sorted(cumulative)
    assert gen1["bucket:+Inf"] == 3 and len([k for k in gen1 if k.startswith("bucket:")]) == len(BUCKETS) + 1
    assert _samples(text, "2")["count"] == 0  # a pass of generation 1 is not one of 2


def test_the_exported_histogram_is_the_catalogs():
    assert (NAME, BUCKETS) == (GC_PAUSE.name, GC_PAUSE.buckets)
