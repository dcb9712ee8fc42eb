"""Sampling on the device: temperature, top-p and per-request seeds as tensors.

No Python branch depends on the data (the same kernels run whatever the batch holds, so the
function can be captured in a CUDA graph) and nothing is copied to the host. Randomness is
counter-based: Gumbel-max with noise hashed from (seed, counter, token id), so a seeded
request draws the same noise whatever else shares its batch, and argmax(logits / T + Gumbel)
is an exact sample of softmax(logits / T).
"""

from __future__ import annotations

import torch

_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _signed(c: int) -> int:
    """The int32 with the bits of the 32-bit constant `c`."""
    return c - (1 << 32) if c >= 1 << 31 else c


def to_int32(x: torch.Tensor) -> torch.Tensor:
    """int64 tensor of 32-bit values (0 <= x < 2**32) -> int32 tensor with the same bits."""
    return (x - ((x >> 31) << 32)).to(torch.int32)


def _shr(x: torch.Tensor, n: int) -> torch.Tensor:
    """Logical right shift of int32 bits (`>>` on int32 is arithmetic)."""
    return (x >> n) & ((1 << (32 - n)) - 1)


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit integer hash (Wellons' lowbias32) on int32 tensors, bits as uint32.

    int32 products wrap modulo 2**32, so one multiply does what int64 needed three for; on a
    [64, 32k] batch that is about 6x faster than the int64 form, with the same bits.
    """
    x = x ^ _shr(x, 16)
    x = x * _signed(0x7FEB352D)
    x = x ^ _shr(x, 15)
    x = x * _signed(0x846CA68B)
    return x ^ _shr(x, 16)


def vocab_keys(vocab_size: int, device: torch.device | str) -> torch.Tensor:
    """Per-token-id hash inputs (int32), computed once."""
    return mix32(torch.arange(vocab_size, dtype=torch.int32, device=device) ^ _signed(_GOLDEN))


def gumbel_noise(seeds: torch.Tensor, counters: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """[B, V] standard Gumbel noise, a pure function of (seed, counter, token id) per row."""
    lo, hi = to_int32(seeds & _M32), to_int32((seeds >> 32) & _M32)
    row = mix32(mix32(mix32(lo ^ _signed(_GOLDEN)) ^ hi) ^ to_int32(counters & _M32)).unsqueeze(1)
    bits = mix32(mix32(row ^ keys.unsqueeze(0)) ^ _shr(row, 1))
    u = (_shr(bits, 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))  # in (0, 1)
    return -torch.log(-torch.log(u))


def sample(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_p: torch.Tensor,
    seeds: torch.Tensor,
    counters: torch.Tensor,
    keys: torch.Tensor,
    *,
    any_sampled: bool = True,
    any_top_p: bool = True,
) -> torch.Tensor:
    """One token id per row of `logits` [B, V]; temperature 0 is greedy. All arguments are [B] tensors
    (seeds and counters int64, non-negative) except `keys` from `vocab_keys`.

    `any_sampled=False` (no row has temperature > 0) and `any_top_p=False` (no row has top_p < 1)
    skip work whose result would be discarded: the noise, and the sort over the vocabulary (the
    costliest part on a CPU). The caller knows them from its host-side inputs, so no device value is
    read; a CUDA graph is captured with both True and serves every batch.
    """
    logits = logits.float()
    greedy = logits.argmax(dim=-1)
    if not any_sampled:
        return greedy
    scaled = logits / temperature.clamp_min(1e-5).unsqueeze(1)
    if any_top_p:
        probs = torch.softmax(scaled, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # drop a token when the more likely ones already reach top_p (the first is always kept)
        drop_sorted = ((sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p.unsqueeze(1)) & (top_p < 1.0).unsqueeze(1)
        drop = torch.empty_like(drop_sorted).scatter_(1, order, drop_sorted)
        scaled = scaled.masked_fill(drop, float("-inf"))
    noisy = scaled + gumbel_noise(seeds, counters, keys)
    return torch.where(temperature > 0, noisy.argmax(dim=-1), greedy)
