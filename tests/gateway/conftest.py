from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import GatewayConfig, Limits, TenantConfig, UpstreamConfig, VersionTarget
from inferwatch.app import create_app
from inferwatch.settings import Settings
from ledger.models import Request as RequestRow
from safety.config import SafetyConfig
from tests.servers import ThreadedServer, start_worker
from tests.stub_upstream import Behaviour, create_stub

ADMIN_KEY = "test-admin-key-0123456789"


@dataclass
class Harness:
    url: str
    app: Any
    exporter: InMemorySpanExporter
    keys: dict[str, str] = field(default_factory=dict)
    clients: list[openai.OpenAI] = field(default_factory=list)

    @property
    def gateway(self):
        return self.app.state.gateway

    def flush(self) -> None:
        """Wait for requests in flight (a stream records after its last byte), then the writer."""
        end = time.monotonic() + 30
        while self.metric("inferwatch_inflight_requests") > 0 and time.monotonic() < end:
            time.sleep(0.01)
        assert self.app.state.writer.flush(30), "ledger writer did not drain"

    def rows(self) -> list[RequestRow]:
        """Ledger rows (after flushing the writer), oldest first."""
        self.flush()
        with Session(self.gateway.store.engine, expire_on_commit=False) as s:
            rows = list(s.scalars(select(RequestRow).order_by(RequestRow.started_at)))
            s.expunge_all()
            return rows

    def metric(self, name: str, **labels: str) -> float:
        return self.gateway.metrics.registry.get_sample_value(name, labels) or 0.0

    def metric_sum(self, name: str, **match: str) -> float:
        total = 0.0
        for fam in self.gateway.metrics.registry.collect():
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in match.items()):
                    total += s.value
        return total

    def client(self, tenant: str = "acme", **kw: Any) -> openai.OpenAI:
        """The real `openai` client, as this tenant; closed with the gateway."""
        c = openai.OpenAI(base_url=self.url + "/v1", api_key=self.keys[tenant], max_retries=0, **kw)
        self.clients.append(c)
        return c

    def headers(self, tenant: str = "acme") -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[tenant]}"}

    def close(self) -> None:
        for c in self.clients:
            c.close()


@contextlib.contextmanager
def gateway_server(
    tmp_path: Path,
    ledger_url: str,
    upstreams: dict[str, UpstreamConfig],
    aliases: dict[str, list[VersionTarget]],
    **overrides: Any,
) -> Iterator[Harness]:
    tenants = overrides.pop("tenants", {"acme": TenantConfig(), "globex": TenantConfig()})
    # a SafetyConfig; None: the default, but with the deferred classifier scans in a thread, so
    # that the test process loads the model once instead of a scan process per gateway
    # (tests/reliability/test_scan_process.py runs the scan process in real gateways)
    safety = overrides.pop("safety", None) or SafetyConfig(deferred_scans="thread")
    cfg = GatewayConfig(
        upstreams=upstreams,
        aliases=aliases,
        tenants=tenants,
        **{"key_cache_ttl_s": 0, "health_interval_s": 0.5, "state_refresh_s": 0.5, **overrides},
    )
    settings = Settings(
        data_dir=tmp_path / "gw",
        database_url=ledger_url,
        admin_key=ADMIN_KEY,
        gateway=cfg,
        ledger_max_delay_s=0.05,
        safety=safety,
    )
    exporter = InMemorySpanExporter()
    app = create_app(settings, span_exporter=exporter)
    with ThreadedServer(app) as server, contextlib.closing(Harness(server.url, app, exporter)) as h:
        for t in tenants:
            h.keys[t] = h.gateway.store.create_key(t).secret
        yield h


@pytest.fixture(scope="session")
def real_worker(tmp_path_factory: pytest.TempPathFactory):
    proc = start_worker(
        tmp_path_factory.mktemp("gw-worker"), tmp_path_factory.mktemp("gw-logs"), "--max-batch-size", "16"
    )
    yield proc
    proc.stop()


@pytest.fixture
def worker_gateway(tmp_path: Path, ledger_url: str, real_worker) -> Iterator[Harness]:
    """The gateway in front of a real worker, ledger on SQLite and on PostgreSQL."""
    import httpx

    version = httpx.get(real_worker.url + "/health").json()["version"]
    ups = {version: UpstreamConfig(urls=[real_worker.url])}
    with gateway_server(
        tmp_path,
        ledger_url,
        ups,
        {"demo": [VersionTarget(version=version)]},
        prices={"default": {"input_per_1m": 2.0, "output_per_1m": 6.0}},
    ) as h:
        yield h


@dataclass
class Stub:
    behaviour: Behaviour
    url: str


@contextlib.contextmanager
def stub_server(version: str = "stub@1") -> Iterator[Stub]:
    b = Behaviour(version=version)
    with ThreadedServer(create_stub(b)) as s:
        yield Stub(b, s.url)


@pytest.fixture
def stub() -> Iterator[Stub]:
    with stub_server() as s:
        yield s


@pytest.fixture
def stub_gateway(tmp_path: Path, stub: Stub) -> Iterator[Harness]:
    """The gateway in front of one stub upstream, SQLite ledger, tight limits for tenant 'tiny', priced."""
    tenants = {
        "acme": TenantConfig(),
        "globex": TenantConfig(),
        "tiny": TenantConfig(limits=Limits(rpm=3, tpm=100_000, max_body_bytes=2_000, max_prompt_tokens=50)),
    }
    with gateway_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'l.db'}",
        {"stub@1": UpstreamConfig(urls=[stub.url])},
        {"m": [VersionTarget(version="stub@1")]},
        tenants=tenants,
        request_timeout_s=5,
        first_byte_timeout_s=1.0,
        prices={"default": {"input_per_1m": 2.0, "output_per_1m": 6.0}},
    ) as h:
        yield h
