"""Metric samples of a version, derived from its `RequestRecord`s.

This is the one definition of what each canary metric means per request, so the ledger
loader and the live feed cannot disagree:

- error: 1 when the failure is the service's fault (status >= 500 and the client did not
  disconnect); client errors (4xx), rate limiting and disconnects are not the version's doing.
- safety_hit: 1 when an output scanner hit (input hits depend on the prompt, not the version).
- latency_s, output_tokens_per_s, cost_usd: successful (2xx) requests only; NaN otherwise,
  so an error rate change does not masquerade as a latency change.
- ttft_s, tpot_s: every request that has them, a stream that broke after its first token
  included (its record says `partial`): a version dying mid-stream was as slow as it was.
  output_tokens_per_s = completion tokens / e2e latency (NaN without completion tokens).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ledger.record import RequestRecord

METRICS = ("latency_s", "ttft_s", "tpot_s", "output_tokens_per_s", "error", "safety_hit", "cost_usd")


def metric_values(r: RequestRecord) -> dict[str, float]:
    """The canary metric values of one request (NaN where the metric does not apply)."""
    nan = math.nan
    ok = 200 <= r.status_code < 300
    fault = r.status_code >= 500 and not r.client_disconnected
    latency = r.latency_s if ok and r.latency_s > 0 else nan
    return {
        "latency_s": latency,
        "ttft_s": r.ttft_s if r.ttft_s is not None else nan,  # also a stream that broke later
        "tpot_s": r.tpot_s if r.tpot_s is not None else nan,
        "output_tokens_per_s": (
            r.completion_tokens / latency if ok and r.completion_tokens > 0 and latency == latency else nan
        ),
        "error": 1.0 if fault else 0.0,
        "safety_hit": 1.0 if any(h.direction == "output" for h in r.safety) else 0.0,
        "cost_usd": r.cost_usd if ok else nan,
    }


def samples_from_records(records: Iterable[RequestRecord]) -> dict[str, np.ndarray]:
    """Per-metric arrays (one entry per request) for `judge` / `SequentialAnalysis.update`."""
    rows = [metric_values(r) for r in records]
    return {m: np.array([row[m] for row in rows], dtype=float) for m in METRICS}


def split_by_version(
    records: Iterable[RequestRecord], baseline: str, canary: str
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(baseline samples, canary samples) from a mixed stream of records."""
    b, c = [], []
    for r in records:
        if r.model_version == baseline:
            b.append(r)
        elif r.model_version == canary:
            c.append(r)
    return samples_from_records(b), samples_from_records(c)
