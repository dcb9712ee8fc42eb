"""One gateway for the console tests: two stub upstream versions behind the alias `chat`, two
tenants (globex's inputs with PII are flagged, so the review queue fills), SQLite ledger; and
one real Chromium (Debian's, driven by Playwright; Playwright never downloads a browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.config import Budget, GatewayConfig, Limits, TenantConfig, UpstreamConfig, VersionTarget
from inferwatch.app import create_app
from inferwatch.settings import Settings
from safety.config import SafetyConfig
from tests.gateway.conftest import ADMIN_KEY, Harness, Stub, stub_server
from tests.servers import ROOT, ThreadedServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "docs" / "console"
PII_PROMPT = "Please write to bob.smith@example.com about the invoice."


@dataclass
class Console:
    h: Harness
    ledger_url: str
    stubs: dict[str, Stub]

    @property
    def url(self) -> str:
        return self.h.url

    def chat(self, tenant: str, content: str = "hi there", n: int = 1) -> list[dict[str, Any]]:
        body = {"model": "chat", "messages": [{"role": "user", "content": content}], "max_tokens": 8}
        with httpx.Client(base_url=self.url, headers=self.h.headers(tenant), timeout=30) as c:
            out = [c.post("/v1/chat/completions", json=body) for _ in range(n)]
        self.h.flush()
        return [{"status": r.status_code, "id": r.headers.get("x-request-id"), "body": r.json()} for r in out]

    def api(self, method: str, path: str, key: str = ADMIN_KEY, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers={"authorization": f"Bearer {key}"}, timeout=60, **kw)


@contextlib.contextmanager
def console_gateway(tmp: Path) -> Iterator[Console]:
    with stub_server("v1") as v1, stub_server("v2") as v2:
        cfg = GatewayConfig(
            upstreams={"v1": UpstreamConfig(urls=[v1.url]), "v2": UpstreamConfig(urls=[v2.url])},
            aliases={"chat": [VersionTarget(version="v1")]},
            tenants={"acme": TenantConfig(budgets=[Budget(period="day", limit=1.0)]), "globex": TenantConfig()},
            default_limits=Limits(rpm=None, tpm=None),
            prices={"default": {"input_per_1m": 2.0, "output_per_1m": 6.0}},
            key_cache_ttl_s=0,
            health_interval_s=0.5,
            state_refresh_s=0.2,
            request_timeout_s=10,
        )
        url = f"sqlite:///{tmp / 'l.db'}"
        settings = Settings(
            data_dir=tmp / "gw",
            database_url=url,
            admin_key=ADMIN_KEY,
            gateway=cfg,
            ledger_max_delay_s=0.05,
            slo_eval_interval_s=1,
            safety=SafetyConfig(classifier=False, tenants={"globex": {"input": {"pii": "flag"}}}),
        )
        app = create_app(settings, span_exporter=InMemorySpanExporter())
        with ThreadedServer(app) as server, contextlib.closing(Harness(server.url, app, InMemorySpanExporter())) as h:
            for t in ("acme", "globex"):
                h.keys[t] = h.gateway.store.create_key(t).secret
            yield Console(h, url, {"v1": v1, "v2": v2})


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with console_gateway(tmp_path_factory.mktemp("console")) as c:
        yield c


@pytest.fixture(scope="module")  # Playwright's sync API runs an event loop in this thread while it lives
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{CHROMIUM} not installed; CI must install Debian's chromium", pytrace=False)
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def sign_in(browser: Any, url: str, key: str, **context: Any) -> Any:
    """A fresh browser context (its own cookies) signed in with `key`; returns its page."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, **context)
    page = ctx.new_page()
    page.goto(url + "/ui/login")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/ui")
    return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
