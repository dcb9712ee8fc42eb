"""Load generator: a realistic mix through a real gateway process, then the books are checked.

Starts an upstream (the stub by default, or the real demo worker with --worker), an
`inferwatch serve` gateway in its own process with one key per tenant, and drives it with
`--clients` concurrent clients for `--requests` requests: chat, streaming chat, completions
and embeddings, prompts from a few words to near the context limit, several tenants. Then:

- every request got a response (2xx, or an OpenAI-format error with a message);
- the ledger holds exactly one row per request (lost and duplicated rows: 0);
- billed tokens in the ledger == the usage the upstream reported to the clients
  (and, with --worker, == the worker's own token counters);
- `inferwatch_requests_total` and `inferwatch_tokens_total` on /metrics == the ledger;
- gateway RSS before and after (memory stays flat).

    ./dev bench loadgen [--clients 200] [--requests 20000] [--passes N] [--worker] [--database-url URL] [--json]

Exit code 0 when every check holds, 1 otherwise. Timings are printed, never judged.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import create_engine, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ledger.models import Request as RequestRow  # noqa: E402
from tests.prom_text import total  # noqa: E402
from tests.servers import free_port, spawn_logged, start_worker, wait_ready  # noqa: E402

MIX = (("chat", 0.40), ("stream", 0.35), ("completions", 0.10), ("embeddings", 0.15))
WORDS = ("ledger", "latency", "token", "budget", "tenant", "canary", "rollout", "gateway", "spool", "replica")


@dataclass
class Result:
    kind: str
    tenant: str
    status: int  # 0: no response at all
    request_id: str | None
    clear_error: bool = True  # a non-2xx came with an OpenAI-format error message
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Report:
    upstream: str
    clients: int
    requests: int
    seconds: float = 0.0
    rps: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)
    no_response: int = 0
    unclear_errors: int = 0
    ledger_rows: int = 0
    lost_rows: int = 0
    duplicate_rows: int = 0
    unexpected_rows: int = 0
    billed_tokens: int = 0
    reported_tokens: int = 0
    worker_tokens: int | None = None
    metrics_requests: float = 0.0
    metrics_tokens: float = 0.0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0
    rss_per_pass_mib: list[float] = field(default_factory=list)  # flat once warm: no growth pass over pass
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def prompt(rng: random.Random, max_words: int) -> str:
    """From a few words to near the context limit, most of them short (log-uniform)."""
    n = int(round(2 ** rng.uniform(0, max(1.0, (max_words - 1).bit_length()))))
    return " ".join(rng.choice(WORDS) for _ in range(max(1, min(n, max_words))))


def make_request(rng: random.Random, model: str, max_words: int) -> tuple[str, str, dict[str, Any]]:
    kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
    text = prompt(rng, max_words)
    max_tokens = rng.choice((1, 4, 16, 32))
    if kind == "embeddings":
        return kind, "/v1/embeddings", {"model": model, "input": text}
    if kind == "completions":
        return kind, "/v1/completions", {"model": model, "prompt": text, "max_tokens": max_tokens, "ignore_eos": True}
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
    }
    if kind == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return kind, "/v1/chat/completions", body


async def one(
    session: aiohttp.ClientSession, base: str, tenant: str, key: str, kind: str, path: str, body: dict
) -> Result:
    headers = {"authorization": f"Bearer {key}"}
    try:
        async with session.post(base + path, json=body, headers=headers) as resp:
            res = Result(kind, tenant, resp.status, resp.headers.get("x-request-id"))
            if kind == "stream" and resp.status == 200:
                async for raw in resp.content:
                    line = raw.decode().strip()
                    if line.startswith("data: {"):
                        event = json.loads(line[6:])
                        if "error" in event:
                            res.status, res.clear_error = 502, bool(event["error"].get("message"))
                        usage = event.get("usage")
                        if usage:
                            res.prompt_tokens = usage["prompt_tokens"]
                            res.completion_tokens = usage["completion_tokens"]
                return res
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                res.clear_error = bool(isinstance(data, dict) and (data.get("error") or {}).get("message"))
            else:
                usage = data.get("usage") or {}
                res.prompt_tokens = usage.get("prompt_tokens", 0)
                res.completion_tokens = usage.get("completion_tokens", 0)
            return res
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return Result(kind, tenant, 0, None, clear_error=False)


async def drive(
    base: str, keys: dict[str, str], model: str, clients: int, requests: int, max_words: int, seed: int, quiet: bool
) -> list[Result]:
    rng = random.Random(seed)
    tenants = sorted(keys)
    plan = [(rng.choice(tenants), *make_request(rng, model, max_words)) for _ in range(requests)]
    results: list[Result] = []
    queue = iter(plan)
    timeout = aiohttp.ClientTimeout(total=300)
    with Progress(
        TextColumn("load"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=quiet,
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task("requests", total=requests)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=clients)) as session:

            async def client() -> None:
                for tenant, kind, path, body in queue:
                    results.append(await one(session, base, tenant, keys[tenant], kind, path, body))
                    progress.advance(task)

            await asyncio.gather(*(client() for _ in range(clients)))
    return results


def scrape(url: str, names: tuple[str, ...], headers: dict[str, str] | None = None) -> dict[str, float]:
    """Sum of every sample of each named series on a Prometheus /metrics page."""
    text = httpx.get(url, headers=headers, timeout=30).text
    return {name: total(text, name) for name in names}


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


class Platform:
    """Upstream + gateway processes for one run; stopped on exit."""

    def __init__(self, tmp: Path, tenants: int, worker: bool, database_url: str | None) -> None:
        self.tmp, self.procs = tmp, []
        self.worker_url: str | None = None
        if worker:
            w = start_worker(tmp / "worker", tmp, "--max-batch-size", "32")
            self.procs.append(w.process)
            self.worker_url = upstream = w.url
            version = httpx.get(upstream + "/health").json()["version"]
        else:
            port, version = free_port(), "stub@1"
            upstream = f"http://127.0.0.1:{port}"
            log = tmp / "stub.log"
            p = spawn_logged([sys.executable, "-m", "tests.stub_upstream", "--port", str(port)], log, cwd=ROOT)
            self.procs.append(p)
            wait_ready(upstream, p, log, path="/v1/models")
        self.port = free_port()
        self.database_url = database_url or f"sqlite:///{tmp / 'data' / 'ledger.db'}"
        cfg = tmp / "gateway.yaml"
        cfg.write_text(
            json.dumps(
                {
                    "data_dir": str(tmp / "data"),
                    "port": self.port,
                    "log_level": "warning",
                    "database_url": self.database_url,
                    "gateway": {
                        "upstreams": {version: {"urls": [upstream]}},
                        "aliases": {"m": [{"version": version}]},
                        "default_limits": {"rpm": None, "tpm": None},
                        "request_timeout_s": 300,
                        "prices": {"default": {"input_per_1m": 0.25, "output_per_1m": 0.25}},
                    },
                    "safety": {"enabled": False},
                }
            )
        )
        iw = [sys.executable, "-m", "inferwatch.cli"]
        self.keys = {}
        for i in range(tenants):
            out = subprocess.run(
                iw + ["keys", "create", "--tenant", f"tenant-{i}", "--json", "--config", str(cfg)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            self.keys[f"tenant-{i}"] = json.loads(out.stdout)["key"]
        log = tmp / "gateway.log"
        self.gateway = spawn_logged(iw + ["serve", "--config", str(cfg)], log, cwd=ROOT, start_new_session=True)
        self.procs.append(self.gateway)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_ready(self.url, self.gateway, log)

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()


def worker_tokens(url: str) -> int:
    got = scrape(
        url + "/metrics", ("inferwatch_worker_prompt_tokens_total", "inferwatch_worker_generation_tokens_total")
    )
    return int(sum(got.values()))


def run_load(
    clients: int = 50,
    requests: int = 1000,
    *,
    tenants: int = 4,
    worker: bool = False,
    database_url: str | None = None,
    context_tokens: int = 1024,
    seed: int = 1,
    quiet: bool = True,
    workdir: Path | None = None,
    passes: int = 1,
) -> Report:
    """One run end to end (`requests` split over `passes`, RSS taken after each); the Report
    lists every failed check in `failures`."""
    tmp = Path(workdir or tempfile.mkdtemp(prefix="iw-load-"))
    platform = Platform(tmp, tenants, worker, database_url)
    report = Report("demo worker" if worker else "stub", clients, requests)
    try:
        max_words = max(1, (context_tokens - 64) // 2)  # a word and its space: about two tokens of the demo tokenizer
        warm = asyncio.run(
            drive(platform.url, platform.keys, "m", min(clients, 4), min(40, requests), max_words, seed + 1, True)
        )
        engine = create_engine(platform.database_url)
        warm_rows = _wait_for(engine, {r.request_id for r in warm if r.request_id})
        warm_metrics = scrape(platform.url + "/metrics", ("inferwatch_requests_total", "inferwatch_tokens_total"))
        before_worker = worker_tokens(platform.worker_url) if platform.worker_url else None
        report.rss_before_mib = rss_mib(platform.gateway.pid)
        t0 = time.perf_counter()
        results: list[Result] = []
        for i in range(passes):
            n = requests // passes + (i < requests % passes)
            results += asyncio.run(
                drive(platform.url, platform.keys, "m", clients, n, max_words, seed + 100 * i, quiet)
            )
            report.rss_per_pass_mib.append(round(rss_mib(platform.gateway.pid), 1))
        report.seconds = time.perf_counter() - t0
        report.rps = requests / report.seconds
        report.rss_after_mib = rss_mib(platform.gateway.pid)
        _check(report, results, engine, platform, warm_rows, warm_metrics, before_worker)
        engine.dispose()
    finally:
        platform.close()
    return report


def _wait_for(engine: Any, ids: set[str], deadline_s: float = 120) -> dict[str, tuple[int, int]]:
    """Ledger rows once every id in `ids` is there (the writer commits in batches), or at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        rows = _rows(engine)
        if ids <= rows.keys() or time.monotonic() > end:
            return rows
        time.sleep(0.25)


def _rows(engine: Any) -> dict[str, tuple[int, int]]:
    with engine.connect() as c:
        return {
            r.request_id: (r.prompt_tokens, r.completion_tokens)
            for r in c.execute(select(RequestRow.request_id, RequestRow.prompt_tokens, RequestRow.completion_tokens))
        }


def _check(
    report: Report,
    results: list[Result],
    engine: Any,
    platform: Platform,
    warm_rows: dict,
    warm_metrics: dict,
    before_worker: int | None,
) -> None:
    for r in results:
        report.by_status[str(r.status)] = report.by_status.get(str(r.status), 0) + 1
    report.no_response = sum(r.status == 0 for r in results)
    report.unclear_errors = sum(r.status >= 400 and not r.clear_error for r in results)
    ids = [r.request_id for r in results if r.request_id]
    rows = {k: v for k, v in _wait_for(engine, set(ids)).items() if k not in warm_rows}
    with engine.connect() as c:
        total = c.execute(select(func.count()).select_from(RequestRow)).scalar_one()
        distinct = c.execute(select(func.count(func.distinct(RequestRow.request_id)))).scalar_one()
    report.ledger_rows = len(rows)
    report.lost_rows = len(set(ids) - set(rows)) + report.no_response
    report.duplicate_rows = total - distinct
    report.unexpected_rows = len(set(rows) - set(ids))
    report.billed_tokens = sum(p + c for p, c in rows.values())
    report.reported_tokens = sum(r.prompt_tokens + r.completion_tokens for r in results)
    now = scrape(platform.url + "/metrics", ("inferwatch_requests_total", "inferwatch_tokens_total"))
    report.metrics_requests = now["inferwatch_requests_total"] - warm_metrics["inferwatch_requests_total"]
    report.metrics_tokens = now["inferwatch_tokens_total"] - warm_metrics["inferwatch_tokens_total"]
    if platform.worker_url and before_worker is not None:
        report.worker_tokens = worker_tokens(platform.worker_url) - before_worker
    checks = {
        "a request got no response": report.no_response == 0,
        "an error came without an OpenAI-format message": report.unclear_errors == 0,
        "ledger rows != requests": report.ledger_rows == len(results) and report.lost_rows == 0,
        "duplicated ledger rows": report.duplicate_rows == 0 and report.unexpected_rows == 0,
        "billed tokens != usage reported by the upstream": report.billed_tokens == report.reported_tokens,
        "inferwatch_requests_total != ledger rows": report.metrics_requests == report.ledger_rows,
        "inferwatch_tokens_total != billed tokens": report.metrics_tokens == report.billed_tokens,
    }
    if report.worker_tokens is not None:
        # the worker's engine counts the tokens it prefilled and generated; embeddings do not pass through it
        generated = sum(r.prompt_tokens + r.completion_tokens for r in results if r.kind != "embeddings")
        checks["billed tokens of generations != the worker's token counters"] = report.worker_tokens == generated
    report.failures = [name for name, ok in checks.items() if not ok]


def main(
    clients: int = typer.Option(200, help="Concurrent clients."),
    requests: int = typer.Option(20_000, help="Requests in all."),
    tenants: int = typer.Option(4, help="Tenants, one key each."),
    worker: bool = typer.Option(False, "--worker", help="The real demo worker upstream instead of the stub."),
    database_url: str = typer.Option(None, help="Ledger database (default: SQLite in a temp dir)."),
    context_tokens: int = typer.Option(1024, help="Context limit the longest prompts approach."),
    seed: int = typer.Option(1),
    passes: int = typer.Option(
        1, help="Split the requests into passes, RSS after each (flat memory: no growth once warm)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    report = run_load(
        clients,
        requests,
        tenants=tenants,
        worker=worker,
        database_url=database_url,
        context_tokens=context_tokens,
        seed=seed,
        quiet=as_json,
        passes=passes,
    )
    if as_json:
        typer.echo(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    else:
        t = Table("check", "value")
        for k, v in asdict(report).items():
            t.add_row(k, f"{v:.1f}" if isinstance(v, float) else str(v))
        Console().print(t)
        Console().print("[green]all checks hold[/]" if report.ok else f"[red]failed: {', '.join(report.failures)}[/]")
    raise typer.Exit(0 if report.ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    typer.run(main)
