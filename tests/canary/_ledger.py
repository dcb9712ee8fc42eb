"""Synthetic ledger traffic for the canary service, rollout, router and CLI tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from ledger.record import RequestRecord
from ledger.writer import LedgerWriter

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> datetime:
        self.t += timedelta(seconds=seconds)
        return self.t


def records(
    version: str,
    n: int,
    start: datetime,
    span_s: float,
    *,
    alias: str = "chat",
    slow: float = 1.0,
    error_rate: float = 0.0,
    seed: int = 0,
) -> list[RequestRecord]:
    """n requests of `version` spread over [start, start + span_s); latencies lognormal
    around 1 s times `slow`, a fraction `error_rate` answered 500."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        at = start + timedelta(seconds=span_s * i / max(1, n))
        failed = rng.random() < error_rate
        lat = float(rng.lognormal(0.0, 0.3)) * slow
        ct = 50
        ttft = lat * 0.2
        out.append(
            RequestRecord(
                request_id=uuid.uuid4().hex,
                started_at=at,
                tenant="acme",
                key_id=None,
                operation="chat",
                alias=alias,
                model_version=version,
                upstream="http://u",
                status_code=500 if failed else 200,
                error_type="upstream_error" if failed else None,
                latency_s=lat,
                ttft_s=None if failed else ttft,
                tpot_s=None if failed else (lat - ttft) / (ct - 1),
                prompt_tokens=20,
                completion_tokens=0 if failed else ct,
                cost_usd=0.0 if failed else 0.001,
            )
        )
    return out


def write(engine: Engine, spool: Path, recs: Sequence[RequestRecord]) -> None:
    w = LedgerWriter(engine, spool, max_delay_s=0.01, batch_size=1000)
    try:
        for r in recs:
            w.submit(r)
        assert w.flush(30)
    finally:
        w.close()


def traffic(
    engine: Engine,
    spool: Path,
    start: datetime,
    span_s: float,
    n_base: int,
    n_can: int,
    *,
    slow: float = 1.0,
    error_rate: float = 0.0,
    base_error_rate: float = 0.0,
    seed: int = 0,
    baseline: str = "v1",
    canary: str = "v2",
    alias: str = "chat",
) -> None:
    write(
        engine,
        spool,
        records(baseline, n_base, start, span_s, alias=alias, error_rate=base_error_rate, seed=seed)
        + records(canary, n_can, start, span_s, alias=alias, slow=slow, error_rate=error_rate, seed=seed + 1000),
    )
