"""Gateway throughput and latency with the response cache off and on, side by side.

Workload: deterministic chat requests (temperature 0) where 70 % repeat one of a small set
of popular prompts and 30 % are unique, against a stub upstream that takes --upstream-ms to
answer (a stand-in for a model). One gateway process, two tenants with the same limits: one
opted in to the cache, one not; each runs the same workload at a fixed rate (open loop:
p50/p99 latency, added latency = latency minus the upstream's time) and then in a closed
loop (saturation throughput).

    ./dev bench gateway_cache [--rate 50] [--seconds 10] [--upstream-ms 100] [--repeat 0.7] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gateway_overhead import fixed_rate, saturation, spawn, stop
from tests.servers import free_port, wait_ready
from tests.prom_text import samples

STUB = (
    "import sys, uvicorn; from tests.stub_upstream import Behaviour, create_stub; "
    "uvicorn.run(create_stub(Behaviour(delay_s=float(sys.argv[2]))), port=int(sys.argv[1]), log_level='warning')"
)


class Workload:
    """Request bodies: `repeat` of them from `popular` prompts, the rest never seen before."""

    def __init__(self, repeat: float, popular: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.repeat, self.popular, self.unique = repeat, popular, 0

    def body(self) -> bytes:
        if self.rng.random() < self.repeat:
            text = f"popular question number {self.rng.randrange(self.popular)}"
        else:
            self.unique += 1
            text = f"one-off question {self.unique} {self.rng.random()}"
        return json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": text}], "temperature": 0, "max_tokens": 16}
        ).encode()


def cache_counts(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in samples(httpx.get(url + "/metrics").text, "inferwatch_cache_requests_total"):
        out[s.labels["result"]] = out.get(s.labels["result"], 0) + s.value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=50.0, help="fixed request rate (requests/s)")
    ap.add_argument("--seconds", type=float, default=10.0, help="per phase")
    ap.add_argument("--connections", type=int, default=32, help="closed-loop connections for saturation")
    ap.add_argument("--upstream-ms", type=float, default=100.0, help="the stub's time to answer")
    ap.add_argument("--repeat", type=float, default=0.7, help="share of requests repeating a popular prompt")
    ap.add_argument("--popular", type=int, default=50, help="how many popular prompts")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="iw-bench-cache-") as d:
        tmp = Path(d)
        stub_port = free_port()
        stub_proc = spawn([sys.executable, "-c", STUB, str(stub_port), str(args.upstream_ms / 1000)], tmp / "stub.log")
        stub_url = f"http://127.0.0.1:{stub_port}"
        wait_ready(stub_url, stub_proc, tmp / "stub.log", path="/v1/models")
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
                        "upstreams": {"stub@1": {"urls": [stub_url]}},
                        "aliases": {"m": [{"version": "stub@1"}]},
                        "default_limits": {"rpm": 10_000_000, "tpm": 10_000_000_000},
                        "key_cache_ttl_s": 60,
                        "cache": {"enabled": True},
                        "tenants": {"cached": {"cache": True}, "plain": {"cache": False}},
                        "prices": {"default": {"input_per_1m": 0.25, "output_per_1m": 0.25}},
                    },
                }
            )
        )
        iw = [sys.executable, "-m", "inferwatch.cli"]

        def create_key(tenant: str) -> str:
            made = subprocess.run(
                iw + ["keys", "create", "--tenant", tenant, "--json", "--config", str(cfg)],
                capture_output=True,
                text=True,
                check=True,
            )
            return str(json.loads(made.stdout)["key"])

        keys = {t: create_key(t) for t in ("plain", "cached")}
        gw = spawn(iw + ["serve", "--config", str(cfg)], tmp / "gateway.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, gw, tmp / "gateway.log")
            results = {}
            for mode, tenant in (("cache off", "plain"), ("cache on", "cached")):
                before = cache_counts(url)
                auth = {"Authorization": f"Bearer {keys[tenant]}"}
                fixed = asyncio.run(
                    fixed_rate(
                        url + "/v1/chat/completions",
                        auth,
                        args.rate,
                        args.seconds,
                        Workload(args.repeat, args.popular, 1).body,
                    )
                )
                sat = asyncio.run(
                    saturation(
                        url + "/v1/chat/completions",
                        auth,
                        args.connections,
                        args.seconds,
                        Workload(args.repeat, args.popular, 2).body,
                    )
                )
                after = cache_counts(url)
                hits, misses = after.get("hit", 0) - before.get("hit", 0), after.get("miss", 0) - before.get("miss", 0)
                results[mode] = {
                    "fixed_rate": {
                        **fixed,
                        "added_p50_ms": fixed["p50_ms"] - args.upstream_ms,
                        "added_p99_ms": fixed["p99_ms"] - args.upstream_ms,
                    },
                    "saturation": sat,
                    "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
                }
        finally:
            stop(gw)
            stop(stub_proc)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    off, on = results["cache off"], results["cache on"]
    if args.json:
        print(json.dumps({"args": vars(args), "results": results, "uptime": load}))
        return
    print(
        f"workload: {args.repeat:.0%} repeated prompts ({args.popular} popular), upstream {args.upstream_ms:.0f} ms, "
        f"{args.rate:g} rps fixed for {args.seconds:g} s, then {args.connections} connections closed loop"
    )
    print(
        f"{'mode':10} {'hit rate':>8} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} "
        f"{'sat rps':>8} {'errors':>6}"
    )
    for mode, r in results.items():
        f, s = r["fixed_rate"], r["saturation"]
        print(
            f"{mode:10} {r['hit_rate']:8.1%} {f['p50_ms']:8.1f} {f['p99_ms']:8.1f} {f['added_p50_ms']:10.1f} "
            f"{f['added_p99_ms']:10.1f} {s['rps']:8.1f} {f['errors'] + s['errors']:6d}"
        )
    print(
        f"cache on / off: saturation throughput x{on['saturation']['rps'] / off['saturation']['rps']:.2f}, "
        f"mean latency x{on['fixed_rate']['mean_ms'] / off['fixed_rate']['mean_ms']:.2f}"
    )
    print(f"load: {load}")


if __name__ == "__main__":
    main()
