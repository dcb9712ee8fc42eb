"""Synthetic ledgers with known answers, and a webhook receiver, for the SLO service tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from alerts.synthetic import Traffic
from gateway.metrics import GatewayMetrics

from ledger.buckets import DEFAULT_BUCKETS, with_thresholds
from ledger.record import RequestRecord
from ledger.store import write_records
from ledger.testing import make_record
from slo.evaluator import Evaluation
from slo.model import SLO
from slo.spec import parse_specs
from slo.thresholds import thresholds_by_ledger_metric

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=timezone.utc)

SPECS = """\
service: svc
defaults: {window: 28d}
slos:
  - {name: avail, objective: 99, sli: {availability: {}}}
  - {name: avail-acme, objective: 99, sli: {availability: {}}, selector: {tenant: acme}}
  - {name: ttft, objective: 90, sli: {latency: {metric: ttft, threshold: 0.3}}}
  - {name: e2e, objective: 95, sli: {latency: {metric: e2e, threshold: 1.5}}}
  - {name: cost, sli: {cost: {budget_usd_per_1k_requests: 1.0}}, alerting: {page: false}}
  - {name: safety, objective: 99.9, sli: {safety_incidents: {direction: output}}}
"""


def assert_same_evaluation(a: Evaluation, b: Evaluation) -> None:
    """Two evaluators' verdicts on one SLO agree: every window's counts, the period, the alerts."""
    for w in a.windows:
        assert (a.windows[w].good, a.windows[w].total) == pytest.approx((b.windows[w].good, b.windows[w].total)), w
    assert (a.good, a.total) == pytest.approx((b.good, b.total))
    assert a.status == b.status and a.page.firing == b.page.firing and a.ticket.firing == b.ticket.firing


def slos(text: str = SPECS) -> list[SLO]:
    return parse_specs(text, "test.yaml")


def buckets_for(items: Sequence[SLO]) -> dict[str, tuple[float, ...]]:
    extra = thresholds_by_ledger_metric(items)
    return {m: with_thresholds(b, extra.get(m, ())) for m, b in DEFAULT_BUCKETS.items()}


def write(engine: Engine, records: Sequence[RequestRecord], items: Sequence[SLO] | None = None) -> None:
    with engine.begin() as conn:
        write_records(conn, list(records), buckets_for(items or slos()))


_ids = iter(range(10**9))


def rec(
    minute: float,
    *,
    tenant: str = "acme",
    status: int = 200,
    ttft: float | None = 0.2,
    latency: float = 0.8,
    cost: float = 0.0005,
    base: datetime = T0,
) -> RequestRecord:
    err = {200: None, 429: "rate_limited", 503: "upstream_error", 500: "upstream_error"}[status]
    return make_record(
        request_id=f"r{next(_ids)}",
        started_at=base + timedelta(minutes=minute, seconds=7),
        tenant=tenant,
        status_code=status,
        error_type=err,
        ttft_s=ttft if status < 400 else None,
        tpot_s=0.02 if status < 400 else None,
        latency_s=latency,
        cost_usd=cost if status < 400 else 0.0,
    )


def mixed_hour(base: datetime = T0) -> list[RequestRecord]:
    """60 minutes; each: acme 4 fast + 1 slow success, globex one 429; minutes 0-5 one globex 503.

    Hand-computed answers at base + 60 min are in test_service.py."""
    out = []
    for m in range(60):
        out += [rec(m, base=base) for _ in range(4)]
        out.append(rec(m, ttft=0.31, latency=2.0, base=base))
        out.append(rec(m, tenant="globex", status=429, base=base))
        if m < 6:
            out.append(rec(m, tenant="globex", status=503, base=base))
    return out


def outage(base: datetime = T0, healthy: int = 50, bad: int = 10, recovery: int = 0) -> list[RequestRecord]:
    """`healthy` minutes of 10 successes, `bad` minutes of 10 x 503, then `recovery` healthy minutes."""
    out = []
    for m in range(healthy + bad + recovery):
        status = 503 if healthy <= m < healthy + bad else 200
        out += [rec(m, status=status, base=base) for _ in range(10)]
    return out


class Receiver:
    """A local webhook receiver: records JSON bodies; answers the queued status codes, then 200."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.failures: list[int] = []
        self.attempts = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.attempts += 1
                code = owner.failures.pop(0) if owner.failures else 200
                if code == 200:
                    owner.payloads.append(json.loads(body))
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def summary(self) -> list[tuple[str, str, str]]:
        """(slo, alertname, status) of every delivered alert, in order."""
        return [(a["labels"]["slo"], a["labels"]["alertname"], a["status"]) for p in self.payloads for a in p["alerts"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def counter_traffic(
    minutes: Sequence[Sequence[RequestRecord]], metrics: GatewayMetrics, names: Sequence[str]
) -> Traffic:
    """The counters `names` of `metrics` (a GatewayMetrics) after each minute's records went
    through it, as per-minute increments: the Prometheus input of an agreement test."""
    cum: dict[tuple[str, tuple[tuple[str, str], ...]], np.ndarray] = {}
    for m, recs in enumerate(minutes):
        for r in recs:
            metrics.observe(r)
        for family in metrics.registry.collect():
            for s in family.samples:
                if s.name in names:
                    cum.setdefault((s.name, tuple(sorted(s.labels.items()))), np.zeros(len(minutes)))[m:] = s.value
    tr = Traffic(len(minutes))
    for (name, labels), values in cum.items():
        tr.add(name, dict(labels), np.diff(np.concatenate([[0.0], values])))
    return tr
