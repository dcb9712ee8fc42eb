"""End to end: the gateway routes an alias to two stub upstream versions by the weights a
rollout writes; the ledger the gateway fills is what the rollout judges. One rollout of a
slower version rolls itself back, one of an equal version promotes itself."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from canary.config import LATENCY_ONLY, replace_metrics
from canary.service import CanaryService
from gateway.config import Limits, UpstreamConfig, VersionTarget
from tests.gateway.conftest import gateway_server, stub_server

ROUNDS = 40
# The stub answers without streaming, so there is no ttft / tpot to judge.
PROFILE = replace_metrics(
    LATENCY_ONLY, [m for m in LATENCY_ONLY.metrics if m.name in ("latency_s", "output_tokens_per_s")]
)


def drive(h, svc: CanaryService, rollout_id: str, requests_per_round: int = 48) -> str:
    """Traffic through the gateway, then a tick, until the rollout ends; returns its state."""
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 8}
    with httpx.Client(base_url=h.url, headers=h.headers(), timeout=30) as c, ThreadPoolExecutor(8) as pool:
        for _ in range(ROUNDS):
            codes = list(
                pool.map(lambda _: c.post("/v1/chat/completions", json=body).status_code, range(requests_per_round))
            )
            assert set(codes) == {200}, codes
            h.flush()
            svc.rollouts.tick()
            r = svc.rollouts.get(rollout_id)
            if r.state != "running":
                return r.state
    return svc.rollouts.get(rollout_id).state


def test_rollouts_through_the_gateway(tmp_path: Path) -> None:
    with stub_server("v1") as base, stub_server("v2") as slow, stub_server("v3") as same:
        for s in (base, slow, same):
            s.behaviour.delay_s = 0.02
        slow.behaviour.delay_s = 0.15
        ups = {v: UpstreamConfig(urls=[s.url]) for v, s in (("v1", base), ("v2", slow), ("v3", same))}
        with gateway_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'l.db'}",
            ups,
            {"chat": [VersionTarget(version="v1")]},
            state_refresh_s=0.1,
            default_limits=Limits(rpm=None, tpm=None),
        ) as h:
            store = h.gateway.store
            sent: list[dict] = []
            svc = CanaryService(
                store.engine,
                ingest_lag_s=0,
                store=store,
                notify=lambda url, p: sent.append(p),
                notify_urls=["http://hook"],
            )
            plan = {"steps": (25, 50), "min_step_s": 0, "min_step_samples": 30, "max_step_s": 300}

            bad = svc.rollouts.start("chat", "v1", "v2", PROFILE, **plan)
            assert drive(h, svc, bad.id) == "rolled_back"
            bad = svc.rollouts.get(bad.id)
            assert bad.events[-1].kind == "rolled_back" and bad.events[-1].detail["verdict"] == "fail"
            assert {t.version: t.weight for t in store.aliases()["chat"]} == {"v1": 100.0, "v2": 0.0}
            assert sent[-1]["type"] == "canary.rollout.rolled_back"
            assert slow.behaviour.requests > 0

            good = svc.rollouts.start("chat", "v1", "v3", PROFILE, **plan)
            assert drive(h, svc, good.id) == "promoted", [(e.kind, e.detail) for e in svc.rollouts.get(good.id).events]
            good = svc.rollouts.get(good.id)
            assert [e.kind for e in good.events] == ["started", "step", "step", "promoted"]
            assert {t.version: t.weight for t in store.aliases()["chat"] if t.weight > 0} == {"v3": 100.0}
            assert same.behaviour.requests > 0
