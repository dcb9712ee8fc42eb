"""Fused q/k/v and gate/up projections: one matmul each in the engine's steps, the separate
weights become views of the fused ones (memory not doubled), the unfused path still works."""

from __future__ import annotations

import asyncio

import torch

from inference.demo_model import ensure_demo_model
from inference.engine import Engine, SamplingParams
from inference.metrics import WorkerMetrics
from inference.model_loader import load_model


def storage_bytes(model: torch.nn.Module) -> int:
    storages = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()}
    return sum(storages.values())


def test_fused_weights_replace_the_separate_ones_without_doubling_memory(tmp_path):
    path = ensure_demo_model(tmp_path)
    plain, fused = load_model(path, fuse=False).model, load_model(path).model
    assert storage_bytes(fused) == storage_bytes(plain)
    for layer, ref in zip(fused.get_decoder().layers, plain.get_decoder().layers, strict=True):
        attn, mlp = layer.self_attn, layer.mlp
        start = attn.qkv_proj.weight.data_ptr()
        assert attn.q_proj.weight.data_ptr() == start
        assert attn.k_proj.weight.data_ptr() == start + attn.q_proj.weight.numel() * attn.q_proj.weight.element_size()
        assert mlp.gate_proj.weight.data_ptr() == mlp.gate_up_proj.weight.data_ptr()
        for name in ("q_proj", "k_proj", "v_proj"):
            assert torch.equal(getattr(attn, name).weight, getattr(ref.self_attn, name).weight)
        assert torch.equal(mlp.up_proj.weight, ref.mlp.up_proj.weight)
    ids = torch.tensor([[1, 40, 41, 42, 43, 44]])
    with torch.no_grad():  # the path without the engine's step (embeddings) runs on the views
        torch.testing.assert_close(fused(ids).logits, plain(ids).logits)


def test_engine_steps_run_the_fused_matmuls_only(tmp_path):
    loaded = load_model(ensure_demo_model(tmp_path), max_model_len=128)
    calls = {"qkv": 0, "gate_up": 0, "separate": 0}
    layer = loaded.model.get_decoder().layers[0]

    def count(key):
        def hook(*_):
            calls[key] += 1

        return hook

    layer.self_attn.qkv_proj.register_forward_hook(count("qkv"))
    layer.mlp.gate_up_proj.register_forward_hook(count("gate_up"))
    for name in ("q_proj", "k_proj", "v_proj"):
        getattr(layer.self_attn, name).register_forward_hook(count("separate"))
    layer.mlp.gate_proj.register_forward_hook(count("separate"))
    engine = Engine(loaded, max_batch_size=2, max_queue=4, prefill_token_budget=64, metrics=WorkerMetrics("t"))
    engine.start()

    async def run() -> list[int]:
        ids = loaded.tokenizer("Hello there")["input_ids"]
        h = engine.submit("f", ids, SamplingParams(max_tokens=5, temperature=0.0), asyncio.get_running_loop())
        async for _ in h.outputs():
            pass
        return h.seq.output_ids

    try:
        assert len(asyncio.run(run())) == 5
    finally:
        engine.stop()
    # one prefill, four decode steps read and one launched before the host saw the request was done
    assert engine.stats.prefill_steps == 1 and engine.stats.steps == 4 and engine.runner.launches == 5
    assert calls["qkv"] == calls["gate_up"] == 6
    assert calls["separate"] == 0


def test_qwen2_biases_are_fused_as_views_of_one_tensor():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from inference.fusion import fuse_projections

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for name in ("q_proj", "k_proj", "v_proj"):
                getattr(layer.self_attn, name).bias.normal_()
        ids = torch.tensor([[1, 5, 7, 9]])
        want = model(ids).logits
        assert fuse_projections(model) == 4  # attention and MLP of both layers
        attn = model.model.layers[1].self_attn
        assert attn.q_proj.bias.data_ptr() == attn.qkv_proj.bias.data_ptr()
        torch.testing.assert_close(attn.qkv_proj.bias[-attn.v_proj.out_features :], attn.v_proj.bias)
        torch.testing.assert_close(model(ids).logits, want)
