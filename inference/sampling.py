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


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for 0 <= x < 2**32 in int64, split so that no product overflows."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit integer hash (Wellons' lowbias32) on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def vocab_keys(vocab_size: int, device: torch.device | str) -> torch.Tensor:
    """Per-token-id hash inputs, computed once."""
    return mix32(torch.arange(vocab_size, dtype=torch.int64, device=device) ^ _GOLDEN)


def gumbel_noise(seeds: torch.Tensor, counters: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """[B, V] standard Gumbel noise, a pure function of (seed, counter, token id) per row."""
    lo, hi = seeds & _M32, (seeds >> 32) & _M32
    row = mix32(mix32(mix32(lo ^ _GOLDEN) ^ hi) ^ (counters & _M32))
    bits = mix32(mix32(row.unsqueeze(1) ^ keys.unsqueeze(0)) ^ (row.unsqueeze(1) >> 1))
    u = ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))  # in (0, 1)
    return -torch.log(-torch.log(u))


def sample(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_p: torch.Tensor,
    seeds: torch.Tensor,
    counters: torch.Tensor,
    keys: torch.Tensor,
) -> torch.Tensor:
    """One token id per row of `logits` [B, V]; temperature 0 is greedy. All arguments are [B] tensors
    (seeds and counters int64, non-negative) except `keys` from `vocab_keys`."""
    logits = logits.float()
    greedy = logits.argmax(dim=-1)
    scaled = logits / temperature.clamp_min(1e-5).unsqueeze(1)
    probs = torch.softmax(scaled, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    # drop a token when the more likely ones already reach top_p (the first is always kept)
    drop_sorted = ((sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p.unsqueeze(1)) & (top_p < 1.0).unsqueeze(1)
    drop = torch.empty_like(drop_sorted).scatter_(1, order, drop_sorted)
    noisy = scaled.masked_fill(drop, float("-inf")) + gumbel_noise(seeds, counters, keys)
    return torch.where(temperature > 0, noisy.argmax(dim=-1), greedy)
