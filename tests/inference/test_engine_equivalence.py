"""The batching engine computes what transformers computes: greedy outputs of requests that
share decode steps (joining at different times, in padded batches with holes, across KV-window
buckets, in reused slots, with prompts read in chunks and a neighbour cancelled) equal
`model.generate` run alone; a seeded sampled request gives the same text alone or in a batch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from inference.buckets import MIN_WINDOW
from inference.demo_model import ensure_demo_model
from inference.engine import Engine, SamplingParams
from inference.runner import PrefillPiece
from inference.metrics import WorkerMetrics
from inference.model_loader import load_model


def tiny(tmp: Path, demo: Path, name: str, model_cls, config) -> Path:
    """A small random-weight folder of another architecture, with the demo tokenizer."""
    torch.manual_seed(1)
    model = model_cls(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
        for m in model.modules():  # transformers starts biases at zero; a fused bias must be tested nonzero
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.normal_(0.0, 0.5)
    out = tmp / name
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(demo).save_pretrained(out)
    return out


SMALL = dict(
    vocab_size=102,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("equiv")
    demo = ensure_demo_model(tmp)
    return {
        "mistral-demo": demo,
        "tiny-llama": tiny(tmp, demo, "tiny-llama", LlamaForCausalLM, LlamaConfig(**SMALL)),
        # a window shorter than the sequences, so every request crosses it
        "tiny-mistral-sliding": tiny(
            tmp, demo, "tiny-mistral", MistralForCausalLM, MistralConfig(**SMALL, sliding_window=12)
        ),
        # biases on q/k/v (fused with their weights)
        "tiny-qwen2": tiny(tmp, demo, "tiny-qwen2", Qwen2ForCausalLM, Qwen2Config(**SMALL)),
    }


@dataclass
class Req:
    prompt: str
    max_tokens: int
    delay_s: float = 0.0
    cancel_after: int = 0  # cancel once this many tokens arrived (0: never)


# 4 slots, 7 requests: slots are reused; different lengths leave holes in the batch; the long
# prompt is read in chunks and its sequence crosses the 64-key window bucket.
REQUESTS = [
    Req("Hello", 24),
    Req("The quick brown fox jumps", 10, 0.003),
    Req("a", 30, 0.006),
    Req("Once upon a time in a land far away, there lived a king and a queen", 40, 0.01),
    Req("0123456789" * 3, 16, 0.012),
    Req("zz", 8, 0.02),
    Req("Last one in", 20, 0.03),
]


def expected(model_dir: Path, tok, reqs: list[Req]) -> list[list[int]]:
    reference = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    out = []
    for r in reqs:
        ids = tok(r.prompt, return_tensors="pt")["input_ids"]
        gen = reference.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=r.max_tokens,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )
        out.append(gen[0, ids.shape[1] :].tolist())
    return out


def run_engine(
    engine: Engine,
    tok,
    reqs: list[Req],
    params=lambda r: SamplingParams(max_tokens=r.max_tokens, temperature=0.0, ignore_eos=True),
) -> list[list[int]]:
    async def one(i: int, r: Req) -> list[int]:
        await asyncio.sleep(r.delay_s)  # staggered arrivals: requests join a running batch
        h = engine.submit(f"r{i}", tok(r.prompt)["input_ids"], params(r), asyncio.get_running_loop())
        async for _ in h.outputs():
            if r.cancel_after and len(h.seq.output_ids) >= r.cancel_after:
                h.cancel()
                break
        return list(h.seq.output_ids)

    async def run_all() -> list[list[int]]:
        return await asyncio.gather(*(one(i, r) for i, r in enumerate(reqs)))

    return asyncio.run(run_all())


@pytest.mark.parametrize("name", ["mistral-demo", "tiny-llama", "tiny-mistral-sliding", "tiny-qwen2"])
def test_greedy_matches_generate_under_continuous_batching(model_dirs, name):
    loaded = load_model(model_dirs[name], max_model_len=256)
    tok = loaded.tokenizer
    reqs = REQUESTS + [Req("cancel me soon", 60, 0.004, cancel_after=5)]
    want = expected(model_dirs[name], tok, reqs)
    engine = Engine(loaded, max_batch_size=4, max_queue=16, prefill_token_budget=16, metrics=WorkerMetrics("t"))
    engine.start()
    try:
        got = run_engine(engine, tok, reqs)
    finally:
        engine.stop()
    assert engine.stats.max_batch_size > 1  # they really shared decode steps
    assert got[:-1] == want[:-1]
    cancelled = got[-1]
    assert 5 <= len(cancelled) < 60 and cancelled == want[-1][: len(cancelled)]
    assert engine.stats.cancelled == 1 and len(engine._free_slots) == 4
    windows = {w for _, w in engine.runner.shapes}
    if name == "tiny-mistral-sliding":  # a ring of window + one chunk: sequences wrap around it
        assert engine.cache.length == 12 + 16 and engine.cache.length in windows
        assert max(len(tok(r.prompt)["input_ids"]) + r.max_tokens for r in reqs) > 2 * engine.cache.ring
    else:
        assert {MIN_WINDOW, 2 * MIN_WINDOW} <= windows  # the long request crossed a window bucket
    assert len({b for b, _ in engine.runner.shapes}) > 1
    longest = max(len(tok(r.prompt)["input_ids"]) for r in reqs)
    assert engine.stats.prefill_steps >= -(-longest // 16)  # the longest prompt alone needs that many 16-token chunks


# Prompts longer than the window (12) and than the ring (12 + 5 - 1 columns), read in 5-token
# chunks that wrap around it; 2 slots for 5 requests, so slots are reused with stale keys in them.
RING_REQUESTS = [
    Req("Once upon a time in a land far away", 30),
    Req("abcdefghijklmnopqrstuvwxyz" * 2, 20, 0.002),
    Req("hi", 45, 0.004),
    Req("The quick brown fox jumps over the lazy dog", 25, 0.006),
    Req("0123456789" * 4, 12, 0.008),
]


def test_sliding_window_ring_buffer_bounds_memory_and_matches_generate(model_dirs):
    path = model_dirs["tiny-mistral-sliding"]
    loaded = load_model(path, max_model_len=256)
    tok = loaded.tokenizer
    want = expected(path, tok, RING_REQUESTS)
    engine = Engine(loaded, max_batch_size=2, max_queue=16, prefill_token_budget=5, metrics=WorkerMetrics("t"))
    assert engine.cache.ring == 12 + 5 - 1 and engine.cache.keys[0].shape[2] == engine.cache.ring + 1
    engine.start()
    try:
        got = run_engine(engine, tok, RING_REQUESTS)
    finally:
        engine.stop()
    assert got == want
    assert engine.stats.max_batch_size == 2 and engine.stats.finished == len(RING_REQUESTS)
    assert min(len(tok(r.prompt)["input_ids"]) for r in RING_REQUESTS[:2]) > engine.cache.ring


def test_ring_buffer_logits_match_the_full_forward(model_dirs):
    """Sharper than greedy tokens: the logits of every chunked-prefill and decode step equal the
    reference forward over the whole sequence, with the sequence wrapping the ring several times."""
    path = model_dirs["tiny-mistral-sliding"]
    loaded = load_model(path, max_model_len=256)
    engine = Engine(loaded, max_batch_size=2, max_queue=1, prefill_token_budget=5, metrics=WorkerMetrics("t"))
    runner, ring = engine.runner, engine.cache.ring
    seen: list[torch.Tensor] = []
    runner.lm_head.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    ids = torch.randint(5, 100, (40,), generator=torch.Generator().manual_seed(0)).tolist()
    reference = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    with torch.inference_mode():
        tokens = []
        for start in range(0, len(ids), 5):
            tokens = runner.prefill([PrefillPiece(1, start, ids[start : start + 5], 0.0, 1.0, 0)])
        seq = ids + tokens
        for _ in range(30):
            runner.set_row(1, token=seq[-1], position=len(seq) - 1, counter=0, seed=0, temperature=0.0, top_p=1.0)
            seq.append(int(runner.decode(2, runner.window(len(seq) - 1))[1]))
        want = reference(torch.tensor([seq])).logits[0]
    assert len(seq) > 4 * ring
    got = torch.cat([s[-1:] for s in seen])  # the slot's row (prefill: its only row; decode: row 1)
    positions = list(range(4, len(ids), 5)) + list(range(len(ids), len(seq) - 1))
    torch.testing.assert_close(got, want[positions], atol=1e-4, rtol=1e-4)


def test_seeded_sampling_is_independent_of_the_batch(model_dirs):
    loaded = load_model(model_dirs["mistral-demo"], max_model_len=256)
    tok = loaded.tokenizer

    def seeded(r: Req) -> SamplingParams:
        return SamplingParams(
            max_tokens=r.max_tokens, temperature=1.0, top_p=0.9, seed=1234 if r.prompt == "Hello" else None
        )

    engine = Engine(loaded, max_batch_size=4, max_queue=16, prefill_token_budget=64, metrics=WorkerMetrics("t"))
    engine.start()
    try:
        alone = run_engine(engine, tok, [Req("Hello", 24)], seeded)[0]
        crowded = run_engine(engine, tok, [Req("other text", 30), Req("Hello", 24, 0.01), Req("x", 40)], seeded)
    finally:
        engine.stop()
    assert engine.stats.max_batch_size > 1
    assert crowded[1] == alone
    assert crowded[0] != crowded[2]


@pytest.mark.slow
# torch 2.13's inductor imports torch.utils.mkldnn, which warns about its own torch.jit.script_method
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_layers_match_generate_and_do_not_recompile_after_warm_up(model_dirs):
    from torch._dynamo.utils import counters

    loaded = load_model(model_dirs["tiny-mistral-sliding"], max_model_len=256)
    tok = loaded.tokenizer
    want = expected(model_dirs["tiny-mistral-sliding"], tok, REQUESTS)
    engine = Engine(
        loaded, max_batch_size=4, max_queue=16, prefill_token_budget=16, metrics=WorkerMetrics("t"), compile_layers=True
    )
    engine.start()
    try:
        assert run_engine(engine, tok, REQUESTS) == want  # warm-up: every shape kind seen once
        graphs = counters["stats"]["unique_graphs"]
        assert run_engine(engine, tok, REQUESTS) == want
        assert counters["stats"]["unique_graphs"] == graphs  # no recompilation after warm-up
    finally:
        engine.stop()
