"""What the gateway built at startup is frozen (``gc.freeze``) while it serves, so the
collector's full passes under load walk what requests keep alive, not the whole process
(BENCHMARKS.md: 200-400 ms pauses of the event loop before); stopping unfreezes it."""

from __future__ import annotations

import gc
from pathlib import Path

from gateway.config import UpstreamConfig, VersionTarget
from tests.gateway.conftest import Stub, gateway_server


def test_startup_objects_are_frozen_while_serving_and_unfrozen_after(tmp_path: Path, stub: Stub):
    with gateway_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'l.db'}",
        {"stub@1": UpstreamConfig(urls=[stub.url])},
        {"m": [VersionTarget(version="stub@1")]},
    ) as h:
        answer = h.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        gc.collect()
        frozen, walked = gc.get_freeze_count(), len(gc.get_objects(generation=2))
        assert frozen > 100_000, frozen  # the modules, schemas and safety data of startup
        assert walked < frozen / 2, (walked, frozen)
    assert gc.get_freeze_count() == 0
