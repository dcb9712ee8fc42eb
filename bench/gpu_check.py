"""Correctness and host-sync check of the decode engine on the machine at hand (CUDA or CPU).

A small random-weight fp32 Mistral (sliding window shorter than the sequences): greedy outputs
of staggered requests through the engine must equal `model.generate` run alone, with q/k/v and
gate/up fused and each slot a ring buffer of window + one prefill chunk that the longer requests
wrap around (so graph replay is checked over fused weights and ring columns), and step N+1
launched before the host reads step N (async output processing). On CUDA it also
checks that every steady decode step replayed a graph captured at warm-up (no new graphs) and
that launching a step makes no host synchronisation (`torch.cuda.set_sync_debug_mode("error")`
around the launch; the step's one sync is the event wait after it). Prints one JSON document.

    python bench/gpu_check.py --device cuda
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--compile", action="store_true", help="torch.compile each decoder layer too")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, MistralConfig, MistralForCausalLM

    from bench.make_random_model import padded_tokenizer
    from inference.engine import Engine, SamplingParams
    from inference.metrics import WorkerMetrics
    from inference.model_loader import load_model

    out = Path(tempfile.mkdtemp(prefix="iw-check-"))
    torch.manual_seed(3)
    cfg = MistralConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        sliding_window=48,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    model = MistralForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)  # sharp logits: greedy ties cannot flip on rounding
    model.save_pretrained(out)
    padded_tokenizer(cfg.vocab_size, out)

    loaded = load_model(out, device=args.device, dtype="float32", max_model_len=256)
    reference = (
        AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
        .to(loaded.device)
        .eval()
    )
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, cfg.vocab_size, (n,), generator=gen).tolist() for n in (5, 17, 60, 1, 33, 90, 8, 24)]
    new_tokens = [40, 12, 70, 30, 25, 60, 50, 16]
    want = []
    for ids, n in zip(prompts, new_tokens, strict=True):
        x = torch.tensor([ids], device=loaded.device)
        y = reference.generate(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=n,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )
        want.append(y[0, len(ids) :].tolist())
    del reference

    engine = Engine(
        loaded,
        max_batch_size=4,
        max_queue=64,
        prefill_token_budget=32,
        metrics=WorkerMetrics("check"),
        compile_layers=args.compile,
    )
    cuda = engine.device.type == "cuda"
    launches, syncs_flagged = 0, 0
    if cuda:
        launch = engine.runner.launch

        def checked_launch(b: int, w: int) -> int:
            nonlocal launches, syncs_flagged
            launches += 1
            torch.cuda.set_sync_debug_mode("error")
            try:
                return launch(b, w)
            except RuntimeError:
                syncs_flagged += 1
                raise
            finally:
                torch.cuda.set_sync_debug_mode("default")

        engine.runner.launch = checked_launch  # type: ignore[method-assign]
    engine.start()

    async def one(i: int) -> list[int]:
        await asyncio.sleep(0.01 * i)
        h = engine.submit(
            f"c{i}",
            prompts[i],
            SamplingParams(max_tokens=new_tokens[i], temperature=0.0, ignore_eos=True),
            asyncio.get_running_loop(),
        )
        async for _ in h.outputs():
            pass
        return h.seq.output_ids

    async def run_all() -> list[list[int]]:
        return await asyncio.gather(*(one(i) for i in range(len(prompts))))

    try:
        got = asyncio.run(run_all())
    finally:
        engine.stop()
    graphs = len(engine.runner.graphs)
    shapes = engine.runner.shapes
    result = {
        "device": str(engine.device),
        "greedy_equals_generate": got == want,
        "mismatched_requests": [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w],
        "decode_steps": engine.stats.steps,
        "prefill_steps": engine.stats.prefill_steps,
        "max_batch": engine.stats.max_batch_size,
        "graphs_captured_at_warmup": engine.warmup_graphs,
        "async_output": engine.async_output,  # step N+1 launched before step N is read
        "fused_projections": hasattr(loaded.model.get_decoder().layers[0].self_attn, "qkv_proj"),
        "kv_ring_columns": engine.cache.ring,
        "requests_wrapping_the_ring": sum(
            len(p) + n > engine.cache.ring for p, n in zip(prompts, new_tokens, strict=True)
        ),
        "graphs_after_run": graphs,
        "steps_without_a_graph": sum(n for key, n in shapes.items() if key not in engine.runner.graphs)
        if cuda
        else None,
        "launches_checked": launches,
        "launches_with_a_host_sync": syncs_flagged if cuda else None,
        "host_syncs_per_step": (1 if syncs_flagged == 0 else None) if cuda else None,
    }
    print(json.dumps(result, indent=2))
    ok = result["greedy_equals_generate"] and result["fused_projections"] and result["requests_wrapping_the_ring"] > 0
    ok = ok and (
        not cuda or (syncs_flagged == 0 and result["steps_without_a_graph"] == 0 and graphs == engine.warmup_graphs)
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
