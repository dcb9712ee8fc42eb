"""Per-layer key/value buffers at fixed addresses, one row (slot) per running sequence.

Sized from the memory left after the weights are loaded and from the context length
(`--max-model-len`), not from `max_batch_size × max_position_embeddings`: a Mistral-7B at
64 × 32,768 tokens would need 256 GiB. The last column of every slot is scratch: no sequence
ever writes there (a request needs prompt + max_tokens ≤ length, and the last sampled token is
never fed back), so rows of a padded decode batch that hold no sequence write their key there.

When every layer attends through a sliding window (Mistral), a slot is a ring buffer: position p
lives in column p mod `ring`, and the ring only needs the window plus one prefill chunk (a chunk's
keys are all written before its queries read), so K/V memory per sequence is bounded by the
window rather than by the context.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger("inferwatch.worker")

# Kept free for activations, logits, the sampler's sort and CUDA graphs' memory pool.
GPU_RESERVE_BYTES = 3 << 30
GPU_MEMORY_FRACTION = 0.92
CPU_MEMORY_FRACTION = 0.5


def head_dim(config: Any) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """Keys and values of one token across all layers."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim(config) * itemsize


def free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return max(
            0, int(min(free, total * GPU_MEMORY_FRACTION - torch.cuda.memory_reserved(device))) - GPU_RESERVE_BYTES
        )
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 1 << 20
    return int(pages * os.sysconf("SC_PAGE_SIZE") * CPU_MEMORY_FRACTION)


def ring_window(config: Any) -> int | None:
    """The sliding window when every layer uses it (Mistral's attention passes it to all layers)."""
    window = getattr(config, "sliding_window", None)
    return int(window) if window is not None and getattr(config, "model_type", None) == "mistral" else None


def slot_length(config: Any, max_model_len: int, prefill_token_budget: int) -> int:
    """Columns per slot, scratch included: the context, or a ring of window + one prefill chunk.

    A chunk of n tokens starting at s writes positions s .. s+n-1 before its first query (at s)
    reads back to s-window+1; a ring of window+n-1 columns keeps that key intact.
    """
    window = ring_window(config)
    if window is None:
        return max_model_len
    return min(max_model_len, window + prefill_token_budget)


@dataclass(frozen=True)
class CachePlan:
    slots: int
    length: int  # tokens per slot, scratch column included
    nbytes: int


def plan_cache(
    config: Any,
    dtype: torch.dtype,
    device: torch.device,
    *,
    max_batch_size: int,
    length: int,
    available: int | None = None,
) -> CachePlan:
    """As many slots (up to `max_batch_size`) of `length` tokens as the free memory holds."""
    per_slot = bytes_per_token(config, dtype) * length
    budget = free_memory(device) if available is None else available
    slots = min(max_batch_size, budget // per_slot)
    if slots < 1:
        raise RuntimeError(
            f"not enough memory for one sequence of {length} tokens ({per_slot / 2**30:.2f} GiB of KV cache, "
            f"{budget / 2**30:.2f} GiB free): lower --max-model-len"
        )
    if slots < max_batch_size:
        log.warning(
            "KV cache holds %d of %d sequences at %d tokens each; lower --max-model-len for more",
            slots,
            max_batch_size,
            length,
        )
    return CachePlan(int(slots), length, int(slots * per_slot))


class KVCache:
    def __init__(self, config: Any, plan: CachePlan, dtype: torch.dtype, device: torch.device) -> None:
        shape = (plan.slots, config.num_key_value_heads, plan.length, head_dim(config))
        # zeros, not empty: masked-out keys still enter the matmul, and 0 * NaN is NaN.
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_hidden_layers)]
        self.num_slots = plan.slots
        self.length = plan.length
        self.scratch = plan.length - 1
        self.ring = self.scratch  # columns holding positions: p lives in column p mod ring

    def column(self, position: int) -> int:
        return position % self.ring

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.keys[i], self.values[i]
