"""Interactive latency beside a batch flood, without and with priorities, in one run.

A real worker (demo model, CPU) behind a real gateway whose upstream allows --slots requests in
flight (max_parallel_requests). Interactive traffic: one tenant, open loop at --rate requests/s
(short chats). Batch flood: another tenant, --flood closed-loop clients sending longer chats
back to back (a client that is shed waits what Retry-After says, at most 1 s, and sends again).

Phases, same processes: interactive alone (the reference); with the flood sent as interactive
too (no priorities: everyone queues for the same slots); with the flood sent as
`x-inferwatch-priority: batch` (batch holds at most overload.batch_share of the slots and waits
behind interactive requests, and is shed first when the queue is full).

    ./dev bench priority_overload [--seconds 40] [--rate 0.5] [--flood 16] [--slots 4] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gateway_overhead import spawn, stop
from gateway.priority import PRIORITY_HEADER
from tests.servers import free_port, wait_ready

INTERACTIVE = {"messages": [{"role": "user", "content": "A short question"}], "max_tokens": 8, "ignore_eos": True}
BATCH = {
    "messages": [{"role": "user", "content": "Summarise this document " * 8}],
    "max_tokens": 32,
    "ignore_eos": True,
}


async def post(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    async with session.post(url, json={"model": "demo", **body}, headers=headers) as r:
        await r.read()
        return r.status, time.perf_counter() - t0, r.headers.get("Retry-After", "")


async def phase(
    url: str, keys: dict[str, str], *, seconds: float, rate: float, flood: int, flood_priority: str | None
) -> dict[str, Any]:
    app = {"Authorization": f"Bearer {keys['app']}"}
    bulk = {"Authorization": f"Bearer {keys['bulk']}", **({PRIORITY_HEADER: flood_priority} if flood_priority else {})}
    lat: list[float] = []
    statuses: dict[str, dict[int, int]] = {"interactive": {}, "batch": {}}
    end = time.perf_counter() + seconds
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as s:

        async def interactive_one() -> None:
            status, took, _ = await post(s, url, app, INTERACTIVE)
            statuses["interactive"][status] = statuses["interactive"].get(status, 0) + 1
            if status == 200:
                lat.append(took)

        async def interactive() -> None:
            tasks, start, i = [], time.perf_counter(), 0
            while time.perf_counter() < end:  # open loop: on schedule, whatever earlier requests did
                tasks.append(asyncio.ensure_future(interactive_one()))
                i += 1
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            await asyncio.gather(*tasks)

        async def flooder() -> None:
            while time.perf_counter() < end:
                status, _, retry = await post(s, url, bulk, BATCH)
                statuses["batch"][status] = statuses["batch"].get(status, 0) + 1
                if status != 200:
                    await asyncio.sleep(min(1.0, float(retry or 1)))

        await asyncio.gather(interactive(), *(flooder() for _ in range(flood)))
    ms = np.asarray(lat) * 1000 if lat else np.asarray([float("nan")])
    return {
        "interactive_ok": len(lat),
        "interactive_p50_ms": float(np.percentile(ms, 50)),
        "interactive_p95_ms": float(np.percentile(ms, 95)),
        "statuses": statuses,
        "batch_ok_per_s": statuses["batch"].get(200, 0) / seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40.0, help="per phase")
    ap.add_argument("--rate", type=float, default=0.5, help="interactive requests/s (open loop), well below capacity")
    ap.add_argument("--flood", type=int, default=16, help="closed-loop batch clients")
    ap.add_argument("--slots", type=int, default=4, help="max_parallel_requests (and the worker batch)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="iw-bench-priority-") as d:
        tmp = Path(d)
        wport = free_port()
        worker = spawn(
            [
                sys.executable,
                "-m",
                "inference",
                "--port",
                str(wport),
                "--data-dir",
                str(tmp / "worker"),
                "--max-batch-size",
                str(args.slots),
            ],
            tmp / "worker.log",
        )
        wurl = f"http://127.0.0.1:{wport}"
        port = free_port()
        cfg = tmp / "gw.yaml"
        cfg.write_text(
            json.dumps(
                {
                    "data_dir": str(tmp / "data"),
                    "port": port,
                    "log_level": "warning",
                    "safety": {"enabled": False},
                    "gateway": {
                        "upstreams": {"demo@1": {"urls": [wurl], "max_parallel_requests": args.slots}},
                        "aliases": {"demo": [{"version": "demo@1"}]},
                        "key_cache_ttl_s": 60,
                        "default_limits": {"rpm": 10_000_000, "tpm": 10_000_000_000},
                        "overload": {"batch_share": 0.5, "batch_max_wait_s": 30, "max_waiting": 256},
                        "tenants": {"app": {}, "bulk": {}},
                    },
                }
            )
        )
        iw = [sys.executable, "-m", "inferwatch.cli"]
        keys = {
            t: json.loads(
                subprocess.run(
                    iw + ["keys", "create", "--tenant", t, "--json", "--config", str(cfg)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )["key"]
            for t in ("app", "bulk")
        }
        gw = spawn(iw + ["serve", "--config", str(cfg)], tmp / "gateway.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(wurl, worker, tmp / "worker.log")
            wait_ready(url, gw, tmp / "gateway.log")
            time.sleep(2)  # a health check has seen the worker
            chat = url + "/v1/chat/completions"
            results = {
                "interactive alone": asyncio.run(
                    phase(chat, keys, seconds=args.seconds, rate=args.rate, flood=0, flood_priority=None)
                ),
                "flood, no priorities": asyncio.run(
                    phase(chat, keys, seconds=args.seconds, rate=args.rate, flood=args.flood, flood_priority=None)
                ),
                "flood as batch": asyncio.run(
                    phase(chat, keys, seconds=args.seconds, rate=args.rate, flood=args.flood, flood_priority="batch")
                ),
            }
        finally:
            stop(gw)
            stop(worker)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    without, with_ = results["flood, no priorities"], results["flood as batch"]
    ratio = without["interactive_p95_ms"] / with_["interactive_p95_ms"]
    if args.json:
        print(json.dumps({"args": vars(args), "results": results, "p95_ratio": ratio, "uptime": load}))
        return
    print(
        f"interactive {args.rate:g} rps (8 tokens), flood {args.flood} clients (32 tokens), {args.slots} slots, "
        f"{args.seconds:g} s per phase"
    )
    print(
        f"{'phase':22} {'int. ok':>7} {'p50 ms':>8} {'p95 ms':>8} {'int. errors':>11} {'batch ok/s':>10} "
        f"{'batch shed':>10}"
    )
    for name, r in results.items():
        st = r["statuses"]
        errors = sum(n for code, n in st["interactive"].items() if code != 200)
        shed = sum(n for code, n in st["batch"].items() if code != 200)
        print(
            f"{name:22} {r['interactive_ok']:7d} {r['interactive_p50_ms']:8.0f} {r['interactive_p95_ms']:8.0f} "
            f"{errors:11d} {r['batch_ok_per_s']:10.2f} {shed:10d}"
        )
    print(f"interactive p95 without / with priorities: x{ratio:.1f}")
    print(f"load: {load}")


if __name__ == "__main__":
    main()
