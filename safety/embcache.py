"""Embedding cache for training and evaluation (git-ignored ``.cache/safety_embeddings``).

Encoding the ~30k training and evaluation texts with the 6-layer MiniLM takes tens of minutes
on a loaded 2-core machine, so each text's embedding is stored once, keyed by a digest of the
embedder's settings and the text. Shards are written as they finish, so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "safety_embeddings"  # only used from a source checkout
SHARD = 512


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, embedder, cache_dir: Path = CACHE) -> None:
        self.embedder = embedder
        self.dir = cache_dir / embedder.tag
        self.dir.mkdir(parents=True, exist_ok=True)
        self.table: dict[str, np.ndarray] = {}
        for f in sorted(self.dir.glob("shard_*.npz")):
            z = np.load(f)
            self.table.update(zip(z["keys"].tolist(), z["emb"], strict=True))

    def embed(self, texts: Sequence[str], log=print) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self.table))
        by_key = {k: t for k, t in zip(keys, texts, strict=True)}
        t0 = time.perf_counter()
        for i in range(0, len(missing), SHARD):
            chunk = missing[i : i + SHARD]
            emb = self.embedder.embed([by_key[k] for k in chunk])
            n = len(list(self.dir.glob("shard_*.npz")))
            np.savez(self.dir / f"shard_{n:05d}.npz", keys=np.array(chunk), emb=emb)
            self.table.update(zip(chunk, emb, strict=True))
            done = i + len(chunk)
            log(f"embedded {done}/{len(missing)} in {time.perf_counter() - t0:.0f} s")
        return np.stack([self.table[k] for k in keys]) if keys else np.zeros((0, self.embedder.dim), np.float32)


if __name__ == "__main__":  # python -m safety.embcache FILE.jsonl ...: fill the cache for the shipped heads
    import json

    import torch

    from .classifier import Embedder, Heads

    torch.set_num_threads(2)
    heads = Heads.load()
    cache = EmbeddingCache(Embedder.for_heads(heads))
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
        t0 = time.perf_counter()
        cache.embed(texts, log=lambda m: print(m, flush=True))
        print(f"{path}: {len(texts)} texts, {time.perf_counter() - t0:.0f} s", flush=True)
