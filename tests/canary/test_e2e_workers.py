"""End to end with real workers (slow: run with -m slow): the gateway routes an alias to two
worker versions, the new one slowed by the worker's fault injection, and the rollout rolls
itself back. (The rollout that promotes itself is in test_e2e_gateway, over stub upstreams:
the demo worker's latency on a CPU varies too much for a pass to come quickly.)"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from canary.service import CanaryService
from gateway.config import Limits, UpstreamConfig, VersionTarget
from tests.canary.test_e2e_gateway import PROFILE, drive
from tests.gateway.conftest import gateway_server
from tests.servers import Proc, start_worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proc]]:
    data, logs = tmp_path_factory.mktemp("canary-workers"), tmp_path_factory.mktemp("canary-worker-logs")
    procs: dict[str, Proc] = {}
    try:
        procs["base"] = start_worker(data, logs, "--alias", "demo@v1")
        procs["slow"] = start_worker(data, logs, "--alias", "demo@v2", "--fault.extra-latency-s", "1.0")
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def test_rollout_of_a_slower_worker_rolls_itself_back(tmp_path: Path, workers: dict[str, Proc]) -> None:
    versions = {k: httpx.get(p.url + "/health").json()["version"] for k, p in workers.items()}
    ups = {versions[k]: UpstreamConfig(urls=[p.url]) for k, p in workers.items()}
    base, slow = versions["base"], versions["slow"]
    with gateway_server(tmp_path, f"sqlite:///{tmp_path / 'l.db'}", ups, {"chat": [VersionTarget(version=base)]},
                        state_refresh_s=0.1, default_limits=Limits(rpm=None, tpm=None)) as h:
        store = h.gateway.store
        svc = CanaryService(store.engine, ingest_lag_s=0, store=store, notify=lambda url, p: None)
        plan = {"steps": (25, 50), "min_step_s": 0, "min_step_samples": 30, "max_step_s": 600}

        bad = svc.rollouts.start("chat", base, slow, PROFILE, **plan)
        assert drive(h, svc, bad.id) == "rolled_back"
        assert {t.version: t.weight for t in store.aliases()["chat"] if t.weight > 0} == {base: 100.0}
        bad = svc.rollouts.get(bad.id)
        assert bad.events[-1].kind == "rolled_back" and "latency" in bad.events[-1].detail["reason"]
