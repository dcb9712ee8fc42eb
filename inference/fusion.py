"""Fused projections: one matmul for q/k/v and one for gate/up in every decoder layer.

At load the weights of each group are concatenated once into a new tensor and the separate
modules keep *views* of it, so the memory is not doubled (the old tensors are dropped) and the
unfused path still works: transformers' own attention forward runs on the views wherever the
engine's step is absent (embeddings, `generate`). Only the architectures whose attention and MLP
are known to be exactly "project, rotate, attend, project" are fused; others are left as they are.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import torch
from torch import nn

from . import attention

ATTENTION_CLASSES = {"LlamaAttention", "MistralAttention", "Qwen2Attention"}  # Qwen2: q/k/v biases, fused too
MLP_CLASSES = {"LlamaMLP", "MistralMLP", "Qwen2MLP"}


def _fuse_linears(linears: list[nn.Linear]) -> tuple[nn.Linear, list[int]]:
    """A Linear whose weight (and bias) concatenates `linears`'; each of them now views its part."""
    sizes = [lin.out_features for lin in linears]
    first = linears[0]
    has_bias = first.bias is not None
    fused = nn.Linear(first.in_features, sum(sizes), bias=has_bias, device="meta")
    with torch.no_grad():
        fused.weight = nn.Parameter(torch.cat([lin.weight for lin in linears]), requires_grad=False)
        if has_bias:
            fused.bias = nn.Parameter(torch.cat([lin.bias for lin in linears]), requires_grad=False)
        for lin, w, b in zip(
            linears,
            fused.weight.split(sizes),
            fused.bias.split(sizes) if has_bias else [None] * len(sizes),
            strict=True,
        ):
            lin.weight = nn.Parameter(w, requires_grad=False)
            if b is not None:
                lin.bias = nn.Parameter(b, requires_grad=False)
    return fused, sizes


def _attention_forward(
    self: Any, hidden_states: torch.Tensor, position_embeddings: Any = None, attention_mask: Any = None, **kwargs
) -> tuple[torch.Tensor, None]:
    """transformers' Llama/Mistral/Qwen2 attention forward with one q/k/v matmul, for the engine's steps."""
    if attention.STEP_KWARG not in kwargs:
        return type(self).forward(self, hidden_states, position_embeddings, attention_mask, **kwargs)
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    q, k, v = self.qkv_proj(hidden_states).split(self.qkv_sizes, dim=-1)
    q, k, v = (t.view(hidden_shape).transpose(1, 2) for t in (q, k, v))
    cos, sin = position_embeddings
    q, k = sys.modules[type(self).__module__].apply_rotary_pos_emb(q, k, cos, sin)
    out, _ = attention.attention(
        self,
        q,
        k,
        v,
        attention_mask,
        scaling=self.scaling,
        # Qwen2 sets it per layer (its layer_types); Mistral reads the config's
        sliding_window=getattr(self, "sliding_window", getattr(self.config, "sliding_window", None)),
        **kwargs,
    )
    return self.o_proj(out.reshape(*input_shape, -1).contiguous()), None


def _mlp_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
    return self.down_proj(self.act_fn(gate) * up)


def fuse_projections(model: Any) -> int:
    """Fuse q/k/v and gate/up in place in every decoder layer; returns how many modules were fused."""
    fused = 0
    for layer in model.get_decoder().layers:
        attn: Any = getattr(layer, "self_attn", None)
        mlp: Any = getattr(layer, "mlp", None)
        if type(attn).__name__ in ATTENTION_CLASSES:
            attn.qkv_proj, attn.qkv_sizes = _fuse_linears([attn.q_proj, attn.k_proj, attn.v_proj])
            attn.forward = types.MethodType(_attention_forward, attn)
            fused += 1
        if type(mlp).__name__ in MLP_CLASSES:
            mlp.gate_up_proj, _ = _fuse_linears([mlp.gate_proj, mlp.up_proj])
            mlp.forward = types.MethodType(_mlp_forward, mlp)
            fused += 1
    return fused
