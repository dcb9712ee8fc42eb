"""Worker throughput and latency under continuous batching vs. a naive sequential baseline.

Starts a real worker process, drives it over HTTP with N concurrent streaming clients whose
requests start at staggered times (as a server sees them), and prints output tokens/s, TTFT
and inter-token latency p50/p99 per concurrency level. In the same run it loads the same
model in this process and calls `model.generate` one request at a time: the baseline.

    ./dev bench worker_throughput                      # demo model on CPU
    ./dev bench worker_throughput --model DIR --device cuda --prompt-len 128 --max-tokens 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import start_worker


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def one_stream(client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int) -> dict:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
        "temperature": 1.0,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    first, last, gaps, tokens = None, None, [], 0
    async with client.stream("POST", url + "/v1/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            msg = json.loads(line[6:])
            if msg.get("usage"):
                tokens = msg["usage"]["completion_tokens"]
            if not msg["choices"] or not msg["choices"][0].get("text"):
                continue
            now = time.perf_counter()
            if first is None:
                first = now
            else:
                gaps.append(now - last)
            last = now
    return {
        "ttft": (first or time.perf_counter()) - t0,
        "itl": gaps,
        "tokens": tokens,
        "start": t0,
        "end": time.perf_counter(),
    }


async def run_level(url: str, model: str, prompt: str, concurrency: int, per_client: int, max_tokens: int) -> dict:
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def client_loop(i: int) -> list[dict]:
            await asyncio.sleep(random.uniform(0, 0.5))  # arrivals spread out, not a lockstep batch
            return [await one_stream(client, url, model, prompt, max_tokens) for _ in range(per_client)]

        results = [r for rs in await asyncio.gather(*(client_loop(i) for i in range(concurrency))) for r in rs]
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    itl = [g for r in results for g in r["itl"]]
    ttft = [r["ttft"] for r in results]
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "tokens": tokens,
        "seconds": wall,
        "tok_s": tokens / wall,
        "ttft_p50": pct(ttft, 0.5),
        "ttft_p99": pct(ttft, 0.99),
        "itl_p50": pct(itl, 0.5),
        "itl_p99": pct(itl, 0.99),
    }


def naive_baseline(model_dir: Path, device: str, prompt: str, max_tokens: int, requests: int) -> dict:
    """`model.generate` one request at a time: what serving without a batching engine gives."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inference.model_loader import resolve_device, resolve_dtype

    dev = resolve_device(device)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve_dtype("auto", dev)).to(dev).eval()
    ids = tok(prompt, return_tensors="pt").to(dev)
    model.generate(**ids, max_new_tokens=4, do_sample=True, pad_token_id=0)  # warm-up
    tokens, ttfts = 0, []
    t0 = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        out = model.generate(
            **ids, max_new_tokens=max_tokens, min_new_tokens=max_tokens, do_sample=True, pad_token_id=0
        )
        tokens += out.shape[1] - ids["input_ids"].shape[1]
        ttfts.append(time.perf_counter() - t)  # sequential: the whole answer arrives at once
    wall = time.perf_counter() - t0
    del model
    if dev.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"requests": requests, "tokens": tokens, "seconds": wall, "tok_s": tokens / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="model folder (default: the demo model)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--levels", default="1,8,32,64", help="concurrent streams, comma separated")
    ap.add_argument("--prompt-len", type=int, default=64, help="prompt length in characters/tokens (approximate)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--per-client", type=int, default=2, help="requests each client sends back to back")
    ap.add_argument("--baseline-requests", type=int, default=8)
    ap.add_argument("--max-model-len", type=int, default=None)
    ap.add_argument("--worker-flags", default="", help="more flags for the worker, e.g. '--compile true'")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = ap.parse_args()

    levels = [int(x) for x in args.levels.split(",")]
    data_dir = Path(tempfile.mkdtemp(prefix="iw-bench-"))
    flags = ["--max-batch-size", str(max(levels)), "--device", args.device, "--max-queue", "1024"]
    if args.model:
        flags += ["--model", str(args.model)]
    if args.max_model_len:
        flags += ["--max-model-len", str(args.max_model_len)]
    flags += args.worker_flags.split()
    print(f"starting worker ({'demo model' if not args.model else args.model}) ...", file=sys.stderr)
    worker = start_worker(data_dir, data_dir, *flags)
    try:
        info = httpx.get(worker.url + "/v1/models").json()["data"][0]
        health = httpx.get(worker.url + "/health").json()
        model_dir = args.model or (data_dir / "models" / "inferwatch-demo-mistral")
        prompt = ("The quick brown fox jumps over the lazy dog. " * 64)[: args.prompt_len]
        rows = []
        for n in levels:
            print(f"  {n} concurrent streams ...", file=sys.stderr)
            rows.append(asyncio.run(run_level(worker.url, info["id"], prompt, n, args.per_client, args.max_tokens)))
    finally:
        worker.stop()
    print("  naive sequential baseline ...", file=sys.stderr)
    base = naive_baseline(model_dir, args.device, prompt, args.max_tokens, args.baseline_requests)
    for r in rows:
        r["x_naive"] = r["tok_s"] / base["tok_s"]
    result = {
        "model": info["version"],
        "load_seconds": health["load_seconds"],
        "max_tokens": args.max_tokens,
        "prompt_len": args.prompt_len,
        "levels": rows,
        "naive": base,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"\nmodel {info['version']}  load+warm-up {health['load_seconds']:.1f}s  "
        f"prompt ~{args.prompt_len} tok  output {args.max_tokens} tok"
    )
    print(
        f"{'streams':>7} {'reqs':>5} {'out tok/s':>10} {'x naive':>8} "
        f"{'TTFT p50':>9} {'TTFT p99':>9} {'ITL p50':>8} {'ITL p99':>8}"
    )
    for r in rows:
        print(
            f"{r['concurrency']:>7} {r['requests']:>5} {r['tok_s']:>10.1f} {r['x_naive']:>7.2f}x "
            f"{r['ttft_p50'] * 1e3:>7.1f}ms {r['ttft_p99'] * 1e3:>7.1f}ms "
            f"{r['itl_p50'] * 1e3:>6.1f}ms {r['itl_p99'] * 1e3:>6.1f}ms"
        )
    print(
        f"{'naive':>7} {base['requests']:>5} {base['tok_s']:>10.1f} {1:>7.2f}x   "
        "(sequential model.generate, one request at a time)"
    )


if __name__ == "__main__":
    main()
