"""A real Prometheus scraping a real gateway in front of a real demo worker, after traffic.

Also used to make the README's preview images (see `python -m tests.dashboards._stack`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import yaml

from alerts.rules import render_rules
from gateway.config import Budget, CacheConfig, Limits, TenantConfig, UpstreamConfig, VersionTarget
from slo.spec import load_default_slos
from tests.gateway.conftest import Harness, gateway_server, stub_server
from tests.servers import Proc, free_port, spawn_logged, start_worker, wait_ready

PROMETHEUS = "prometheus"
# acme opted in to the response cache; initech may send 2 requests a minute; umbrella's own
# budget is used up by its first request; the others have the default monthly budget.
TENANTS = {
    "acme": TenantConfig(cache=True),
    "globex": TenantConfig(),
    "initech": TenantConfig(limits=Limits(rpm=2)),
    "umbrella": TenantConfig(budgets=[Budget(period="month", limit=1e-6)]),
}
REFUSED = ("initech", "umbrella")
MONTHLY_BUDGET_USD = 1.0


@dataclass
class Stack:
    prometheus: Proc
    gateway: Harness
    worker: Proc
    requests_sent: int
    settled_at: float = 0.0  # when the last traffic had been scraped twice: panels are read as of then

    def query(self, expr: str) -> list[dict]:
        body = httpx.get(self.prometheus.url + "/api/v1/query", params={"query": expr}, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(self, expr: str, deadline_s: float = 60) -> list[dict]:
        """Poll until `expr` returns a sample (scrapes and rule evaluations are asynchronous)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if result := self.query(expr):
                return result
            time.sleep(0.25)
        raise AssertionError(f"no sample for {expr} after {deadline_s}s:\n{self.prometheus.output()[-3000:]}")


def start_prometheus(tmp: Path, targets: dict[str, str], rules: Path, binary: str = PROMETHEUS) -> Proc:
    """Prometheus on a free port, scraping `targets` (job -> host:port) every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [addr]}]} for job, addr in targets.items()],
    }
    cfg = tmp / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = tmp / "prometheus.log"
    proc = spawn_logged(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1d",
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, log, path="/-/ready", deadline_s=60)
    return Proc(url, proc, log)


def send_cached(h: Harness) -> int:
    """One deterministic acme request, repeated until the cache answers it (the entry is stored
    just after the first answer); returns the requests sent."""
    client = openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0)
    for sent in range(1, 10):
        raw = client.chat.completions.with_raw_response.create(
            model="demo", max_tokens=8, temperature=0, messages=[{"role": "user", "content": "the same question"}]
        )
        if raw.headers.get("x-cache") == "hit":
            return sent
        time.sleep(0.1)
    raise AssertionError("the response cache never answered a repeated deterministic request")


def send_traffic(h: Harness, rounds: int = 1) -> int:
    """Real OpenAI-client traffic for two tenants: plain, streaming, completions, one client error,
    and a repeated deterministic request the cache answers."""
    sent = send_cached(h)
    for _ in range(rounds):
        for tenant in ("acme", "globex"):
            client = openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys[tenant], max_retries=0)
            for i in range(2):
                client.chat.completions.create(
                    model="demo", max_tokens=8, messages=[{"role": "user", "content": f"hello {i}"}]
                )
                for _ in client.chat.completions.create(
                    model="demo", max_tokens=8, stream=True, messages=[{"role": "user", "content": f"stream {i}"}]
                ):
                    pass
                sent += 2
            client.completions.create(model="demo", prompt="once upon a time", max_tokens=6)
            sent += 1
        with contextlib.suppress(openai.BadRequestError):
            openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys["acme"], max_retries=0).chat.completions.create(
                model="demo", max_tokens=-1, messages=[{"role": "user", "content": "bad"}]
            )
        sent += 1
    return sent


def send_refused(h: Harness) -> int:
    """Three requests each from the tenants past a limit (rpm) and past their budget: 429s after
    the first few; returns the requests sent."""
    for tenant in REFUSED:
        client = openai.OpenAI(base_url=h.url + "/v1", api_key=h.keys[tenant], max_retries=0)
        for _ in range(3):
            with contextlib.suppress(openai.RateLimitError):
                client.chat.completions.create(
                    model="demo", max_tokens=4, messages=[{"role": "user", "content": "again"}]
                )
    return 3 * len(REFUSED)


@contextlib.contextmanager
def demo_stack(tmp: Path, rounds: int = 1) -> Iterator[Stack]:
    slos = load_default_slos()
    rules = tmp / "rules.yaml"
    rules.write_text(render_rules(slos).to_yaml(), encoding="utf-8")
    worker = start_worker(tmp / "worker", tmp, "--max-batch-size", "8")
    try:
        version = httpx.get(worker.url + "/health").json()["version"]
        # A second replica of the version that answers 503 (a stub), listed first: every request
        # tries it, fails before the first byte and is retried on the worker. Its breaker is set
        # never to open, so the retries go on for the whole run.
        with (
            stub_server(version) as broken,
            gateway_server(
                tmp,
                f"sqlite:///{tmp / 'ledger.db'}",
                {version: UpstreamConfig(urls=[broken.url, worker.url])},
                {"demo": [VersionTarget(version=version)]},
                prices={"default": {"input_per_1m": 2.0, "output_per_1m": 6.0}},
                tenants=TENANTS,
                cache=CacheConfig(enabled=True),
                default_budgets=[Budget(period="month", limit=MONTHLY_BUDGET_USD)],
                budget_refresh_s=0.5,
                breaker_failures=1_000_000,
            ) as gw,
        ):
            broken.behaviour.fail_status = 503
            hostport = lambda url: url.split("://", 1)[1]  # noqa: E731
            targets = {"inferwatch-gateway": hostport(gw.url), "inferwatch-worker": hostport(worker.url)}
            prom = start_prometheus(tmp, targets, rules)
            try:
                stack = Stack(prom, gw, worker, 0)
                stack.wait_for('up{job="inferwatch-gateway"} == 1')  # a scrape before traffic: increases count
                stack.requests_sent = send_traffic(gw, rounds) + send_refused(gw)
                # Prometheus counts increases only of series it has seen: once it holds the hit
                # series, one more hit makes the hit rate panels non-zero.
                stack.wait_for('sum(inferwatch_cache_requests_total{result="hit"}) > 0')
                stack.requests_sent += send_cached(gw)
                # and for the refusals (rpm and budget) and retries
                stack.wait_for(
                    "count(inferwatch_rate_limited_total) >= 2 and sum(inferwatch_upstream_retries_total) > 0"
                )
                stack.requests_sent += send_refused(gw)
                # The same for each tenant's cost series: its first sample already holds the
                # first requests' cost, which increase() cannot see.
                stack.wait_for("count(inferwatch_cost_usd_total) >= 2")
                for tenant in ("acme", "globex"):
                    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=gw.keys[tenant], max_retries=0)
                    client.chat.completions.create(
                        model="demo", max_tokens=4, messages=[{"role": "user", "content": "one more"}]
                    )
                    stack.requests_sent += 1
                gw.flush()
                stack.wait_for(f"sum(inferwatch_requests_total) >= {stack.requests_sent}")
                stack.wait_for("count(inferwatch_budget_used_ratio > 0) >= 2")  # both tenants' spend re-read
                stack.wait_for("slo:period_burn_rate:ratio")
                time.sleep(2)  # two more scrapes after the last increment, so every rate window has both sides
                stack.settled_at = time.time()
                yield stack
            finally:
                prom.stop()
    finally:
        worker.stop()


def make_previews(out: Path, seconds: float = 150) -> list[Path]:
    """The README's pictures: `seconds` of steady traffic, then one PNG per dashboard."""
    import tempfile

    from dashboards.definitions import all_dashboards
    from dashboards.preview import preview
    from dashboards.query import Window

    with tempfile.TemporaryDirectory() as tmp, demo_stack(Path(tmp)) as stack:
        client = openai.OpenAI(base_url=stack.gateway.url + "/v1", api_key=stack.gateway.keys["acme"], max_retries=0)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            send_traffic(stack.gateway)
            # An e-mail address in the prompt: a safety hit for the debug dashboard.
            client.chat.completions.create(
                model="demo", max_tokens=4, messages=[{"role": "user", "content": "mail me at jane.doe@example.com"}]
            )
        time.sleep(3)
        return preview(
            all_dashboards(load_default_slos()), stack.prometheus.url, out, Window(seconds + 30, rate_interval="30s")
        )


if __name__ == "__main__":
    import sys

    for path in make_previews(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboards")):
        print(path, path.stat().st_size)
