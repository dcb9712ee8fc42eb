"""CPU cost of the classifier's encoder per text by batching: as the texts come, against
sorted by length in sub-batches (``Embedder.encode``), side by side in one run (prints numbers,
never fails).

    python bench/classifier_batching.py [--corpus ../shared/data/safety] [--repeat 3] [--json]

One torch thread, as in the scan process. Text sets: the gateway benchmark's varied prompts
(256), our fresh ordinary-traffic set (108: code, logs, many languages) and, with
``--corpus``, 640 texts drawn from its ``train.jsonl``. "as they come, 32" is the encoder's
old path (each batch of 32 padded to its longest text). "calls of 32, k tokens" calls
``encode`` with 32 texts at a time, as the scan process does, sorted by length into encoder
calls of at most k padded tokens; "one call" hands it the whole set, as evaluation and
training do. "max |diff|" is
the largest difference of any feature from the old path.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway_overhead import varied_prompts
from safety.classifier import BATCH_TOKENS, Embedder, Heads, padded
from safety.owndata import fresh_ordinary

BUDGETS = (128, BATCH_TOKENS, 512)  # padded tokens a call


def as_they_come(emb: Embedder, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """The encoder's path before sorting: consecutive batches, each padded to its longest."""
    import torch

    out = []
    for i in range(0, len(texts), batch_size):
        ids, mask = padded([emb.ids(t)[0] for t in texts[i : i + batch_size]])
        with torch.inference_mode():
            out.append(emb._pool(emb._encoder(ids, mask), mask).numpy())
    return np.concatenate(out)


def calls_of_32(emb: Embedder, texts: Sequence[str], batch_tokens: int) -> np.ndarray:
    """``encode`` on 32 texts at a time, as the scan process calls it."""
    return np.concatenate([emb.encode(texts[i : i + 32], batch_tokens)[0] for i in range(0, len(texts), 32)])


def cpu_ms(fn: Callable[[], np.ndarray], n: int) -> tuple[float, np.ndarray]:
    t0 = time.process_time()
    x = fn()
    return (time.process_time() - t0) / n * 1e3, x


def text_sets(corpus: Path | None) -> dict[str, list[str]]:
    make = varied_prompts()
    sets = {
        "gateway varied prompts": [json.loads(make())["messages"][0]["content"] for _ in range(256)],
        "own ordinary traffic, fresh": [r["text"] for r in fresh_ordinary()],
    }
    if corpus is not None:
        rows = [json.loads(line) for line in (corpus / "train.jsonl").open(encoding="utf-8")]
        random.Random(1).shuffle(rows)
        sets["train.jsonl sample"] = [r["text"] for r in rows[:640]]
    return sets


def measure(emb: Embedder, name: str, texts: list[str], repeat: int) -> list[dict]:
    """One row per way of batching: the median CPU ms per text over ``repeat`` interleaved runs."""
    n = len(texts)
    tokens = statistics.mean(len(emb.ids(t)[0]) for t in texts)
    as_they_come(emb, texts[:32])  # warm-up
    ways: dict[str, Callable[[], np.ndarray]] = {"as they come, 32": lambda: as_they_come(emb, texts)}
    for k in BUDGETS:
        ways[f"calls of 32, {k} tokens"] = lambda k=k: calls_of_32(emb, texts, k)
    ways[f"one call, {BATCH_TOKENS} tokens"] = lambda: emb.encode(texts)[0]
    runs: dict[str, list[float]] = {way: [] for way in ways}
    feats: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for way, fn in ways.items():
            ms, feats[way] = cpu_ms(fn, n)
            runs[way].append(ms)
    old = statistics.median(runs["as they come, 32"])
    rows = []
    for way, ms_list in runs.items():
        ms = statistics.median(ms_list)
        rows.append(
            {
                "set": name,
                "texts": n,
                "mean_tokens": round(tokens, 1),
                "batching": way,
                "cpu_ms_per_text": round(ms, 2),
                "ratio_to_old": round(ms / old, 3),
                "max_abs_diff": float(np.abs(feats[way] - feats["as they come, 32"]).max()),
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, help="the shared safety corpus (adds a train.jsonl sample)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats; the median is shown")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    emb = Embedder.for_heads(Heads.load())
    results = [r for name, texts in text_sets(args.corpus).items() for r in measure(emb, name, texts, args.repeat)]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    head = ("set", "texts", "tokens", "batching", "CPU ms/text", "ratio", "max |diff|")
    print("{:30s} {:>5s} {:>6s}  {:24s} {:>11s} {:>6s} {:>10s}".format(*head))
    for r in results:
        print(
            f"{r['set']:30s} {r['texts']:5d} {r['mean_tokens']:6.1f}  {r['batching']:24s} "
            f"{r['cpu_ms_per_text']:11.2f} {r['ratio_to_old']:6.2f} {r['max_abs_diff']:10.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
