"""The batching engine computes what transformers computes: greedy outputs of requests that
share decode steps (and join at different times) equal `model.generate` run alone."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from inference.demo_model import ensure_demo_model
from inference.engine import Engine, SamplingParams
from inference.metrics import WorkerMetrics
from inference.model_loader import load_model


def tiny_llama(tmp: Path, demo: Path) -> Path:
    """A Llama-architecture folder (other attention layout, rope settings) with the demo tokenizer."""
    from transformers import AutoTokenizer

    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=102, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    out = tmp / "tiny-llama"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(demo).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("equiv")
    demo = ensure_demo_model(tmp)
    return {"mistral-demo": demo, "tiny-llama": tiny_llama(tmp, demo)}


PROMPTS = ["Hello", "The quick brown fox jumps", "a", "Once upon a time in a land far away, there lived", "0123456789" * 3]


@pytest.mark.parametrize("name", ["mistral-demo", "tiny-llama"])
def test_greedy_matches_generate_under_continuous_batching(model_dirs, name):
    loaded = load_model(model_dirs[name], max_model_len=256)
    tok = loaded.tokenizer
    reference = AutoModelForCausalLM.from_pretrained(model_dirs[name], attn_implementation="eager").eval()
    max_new = 24
    expected = []
    for p in PROMPTS:
        ids = tok(p, return_tensors="pt")
        out = reference.generate(**ids, max_new_tokens=max_new, do_sample=False, pad_token_id=0, eos_token_id=None)
        expected.append(out[0, ids["input_ids"].shape[1]:].tolist())

    engine = Engine(loaded, max_batch_size=4, max_queue=16, prefill_token_budget=64, metrics=WorkerMetrics("t"))
    engine.start()
    try:
        async def run_one(i: int, p: str) -> list[int]:
            await asyncio.sleep(0.003 * i)  # staggered arrivals: requests join a running batch
            h = engine.submit(f"r{i}", tok(p)["input_ids"], SamplingParams(max_tokens=max_new, temperature=0.0, ignore_eos=True),
                              asyncio.get_running_loop())
            async for out in h.outputs():
                pass
            return h.seq.output_ids

        async def run_all() -> list[list[int]]:
            return await asyncio.gather(*(run_one(i, p) for i, p in enumerate(PROMPTS)))

        got = asyncio.run(run_all())
    finally:
        engine.stop()
    assert engine.stats.max_batch_size > 1  # they really shared decode steps
    assert got == expected
