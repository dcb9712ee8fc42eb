"""Our attention function, registered with transformers' `AttentionInterface` as "inferwatch".

transformers calls it from every attention layer with the layer's new queries, keys and values
(rotary embeddings applied). What a step needs beyond that (which cache rows, which positions,
which masks) arrives as the `iw_step` keyword argument, which transformers forwards from the
model's `forward(**kwargs)` down to this function unchanged. So the engine never passes a
`cache=`/`past_key_values` object and does not depend on how a transformers version builds its
cache or masks. Without `iw_step` (embeddings, tests) it is plain SDPA.

Grouped-query heads are packed, not copied: the G query heads that share one KV head become G
query rows against that head's keys, so K/V are read once from the cache in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .kv_cache import KVCache

NAME = "inferwatch"
STEP_KWARG = "iw_step"


@dataclass
class DecodeStep:
    """One token per row; row i is cache slot i. `write_pos[i]` is the column its key goes to (its
    position mod the ring; the cache's scratch column for rows without a sequence); it reads
    columns `[0, window)`."""

    cache: KVCache
    rows: torch.Tensor  # [B] arange, fixed address
    write_pos: torch.Tensor  # [B]
    window: int
    masks: dict[int | None, torch.Tensor]  # sliding window (None: full) -> additive mask [B, 1, 1, window]


@dataclass
class PrefillStep:
    """Prompt chunks: row i writes `width` tokens of slot `slots[i]` at columns `write_pos[i]` and
    reads columns `[0, kv_len)` of that slot (earlier chunks included)."""

    cache: KVCache
    slots: torch.Tensor  # [n]
    write_pos: torch.Tensor  # [n, width]; padding goes to the scratch column
    kv_len: int
    masks: dict[int | None, torch.Tensor]  # -> additive mask [n, 1, G * width, kv_len]


def allowed_keys(query_pos: torch.Tensor, kv_len: int, sliding_window: int | None, ring: int) -> torch.Tensor:
    """[..., kv_len] bool: which cache columns a query at position p sees.

    Position j lives in column j mod `ring` (`KVCache.ring`), so column c holds the latest position
    j <= p with j ≡ c, that is j = p - ((p - c) mod ring); it is visible when j >= 0 (and
    p - j < window). Without a ring (positions always below it) that is plain j = c <= p.
    Columns from `ring` on (scratch) are never visible.
    """
    cols = torch.arange(kv_len, device=query_pos.device)
    p = query_pos.unsqueeze(-1)
    back = (p - cols) % ring  # p - j
    ok = (back <= p) & (cols < ring)
    if sliding_window is not None:
        ok &= back < sliding_window
    return ok


def additive(ok: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(ok.shape, dtype=dtype, device=ok.device).masked_fill_(~ok, torch.finfo(dtype).min)


def window_kinds(config: Any) -> set[int | None]:
    """The sliding windows the model's layers pass to attention (None: full attention)."""
    window = getattr(config, "sliding_window", None)
    kinds: set[int | None] = {None}
    if window is not None:
        kinds.add(int(window))
    return kinds


def _grouped(
    query: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scaling: float | None
) -> torch.Tensor:
    """query [n, H, q, D] against k/v [n, KVH, L, D] without repeating k/v; returns [n, q, H, D]."""
    n, heads, q, d = query.shape
    kv_heads = k.shape[1]
    group = heads // kv_heads
    packed = query.reshape(n, kv_heads, group * q, d)  # head h = kv_head * group + g, as repeat_kv has it
    out = F.scaled_dot_product_attention(packed, k, v, attn_mask=mask, scale=scaling)
    return out.view(n, heads, q, d).transpose(1, 2)


def attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    sliding_window: int | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    step = kwargs.pop(STEP_KWARG, None)
    if step is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            scaling=scaling,
            dropout=dropout,
            sliding_window=sliding_window,
            **kwargs,
        )
    k_buf, v_buf = step.cache.layer(module.layer_idx)
    mask = step.masks[sliding_window]
    if isinstance(step, DecodeStep):
        b = query.shape[0]
        k_buf[step.rows, :, step.write_pos] = key[:, :, 0]
        v_buf[step.rows, :, step.write_pos] = value[:, :, 0]
        return _grouped(query, k_buf[:b, :, : step.window], v_buf[:b, :, : step.window], mask, scaling), None
    k_buf[step.slots.unsqueeze(1), :, step.write_pos] = key.transpose(1, 2)
    v_buf[step.slots.unsqueeze(1), :, step.write_pos] = value.transpose(1, 2)
    k, v = k_buf[step.slots, :, : step.kv_len], v_buf[step.slots, :, : step.kv_len]
    return _grouped(query, k, v, mask, scaling), None


def register() -> None:
    """Make "inferwatch" a valid `attn_implementation` (masks for the no-`iw_step` path as SDPA's)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
