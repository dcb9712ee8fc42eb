"""Per-request sampling: temperature, top-p and a seed that makes a request reproducible
whatever else shares its batch."""
from __future__ import annotations

import torch


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def sample(
    logits: torch.Tensor,
    temperatures: list[float],
    top_ps: list[float],
    generators: list[torch.Generator | None],
) -> list[int]:
    """Pick one token per row of `logits` [B, V]."""
    logits = logits.float()
    greedy = logits.argmax(dim=-1)
    temps = torch.tensor([max(t, 1e-5) for t in temperatures], device=logits.device).unsqueeze(1)
    probs = torch.softmax(logits / temps, dim=-1)
    if any(p < 1.0 for p in top_ps):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cum = sorted_probs.cumsum(dim=-1)
        top_p = torch.tensor(top_ps, device=logits.device).unsqueeze(1)
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        drop = (cum - sorted_probs) >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(1, order, sorted_probs)
    out = greedy.tolist()
    sampled = [i for i, t in enumerate(temperatures) if t > 0]
    if sampled:
        picks = torch.cat([torch.multinomial(probs[i], 1, generator=generators[i]) for i in sampled])
        for i, tok in zip(sampled, picks.tolist()):  # one device sync for the whole batch
            out[i] = tok
    return out
