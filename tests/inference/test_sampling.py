"""The device sampler: exact softmax sampling by Gumbel-max, top-p, greedy, and noise that
depends only on (seed, counter, token id)."""

from __future__ import annotations

import torch
from scipy.stats import chisquare

from inference.sampling import mix32, sample, to_int32, vocab_keys

ALPHA = 1e-3  # chi-square goodness of fit; the draws are fixed by their seeds, so the test is deterministic
LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -0.5, -1.0, 1.5, 0.2])


def draws(n: int, temperature: float, top_p: float, counter: int = 0, logits: torch.Tensor = LOGITS) -> torch.Tensor:
    """n draws from the same logits row, one per seed 0..n-1 (a batch of n rows)."""
    keys = vocab_keys(logits.shape[-1], "cpu")
    return sample(
        logits.expand(n, -1),
        torch.full((n,), temperature),
        torch.full((n,), top_p),
        torch.arange(n, dtype=torch.int64),
        torch.full((n,), counter, dtype=torch.int64),
        keys,
    )


def lowbias32(x: int) -> int:
    """The reference hash in Python integers."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_mix32_is_lowbias32_and_a_bijection_on_a_sample():
    x = torch.arange(1 << 16, dtype=torch.int64) * 65599 % (1 << 32)
    h = mix32(to_int32(x)).to(torch.int64) & 0xFFFFFFFF  # the int32 bits read as uint32
    assert h.unique().numel() == x.numel()
    picks = [0, 1, 2, 12345, 40000, 65535]
    assert [int(h[i]) for i in picks] == [lowbias32(int(x[i])) for i in picks]
    top = torch.tensor([(1 << 32) - 1, 1 << 31, (1 << 31) - 1])  # values whose int32 bits are negative
    assert (mix32(to_int32(top)).to(torch.int64) & 0xFFFFFFFF).tolist() == [lowbias32(int(v)) for v in top]


def test_skipping_unneeded_parts_gives_the_same_tokens():
    torch.manual_seed(1)
    b, v = 16, 300
    logits, seeds, counters = torch.randn(b, v) * 3, torch.randint(0, 1 << 52, (b,)), torch.randint(0, 99, (b,))
    keys = vocab_keys(v, "cpu")
    temp = torch.rand(b) + 0.2
    full = sample(logits, temp, torch.ones(b), seeds, counters, keys)
    assert torch.equal(full, sample(logits, temp, torch.ones(b), seeds, counters, keys, any_top_p=False))
    greedy = sample(logits, torch.zeros(b), torch.full((b,), 0.5), seeds, counters, keys)
    assert torch.equal(
        greedy, sample(logits, torch.zeros(b), torch.full((b,), 0.5), seeds, counters, keys, any_sampled=False)
    )
    assert torch.equal(greedy, logits.argmax(-1)) and not torch.equal(full, greedy)


def test_distribution_matches_softmax():
    n, t = 40_000, 0.8
    counts = torch.bincount(draws(n, t, 1.0), minlength=8).double()
    want = torch.softmax(LOGITS.double() / t, -1) * n
    assert chisquare(counts.numpy(), want.numpy()).pvalue > ALPHA
    # a draw of a different counter (the next token) is as good a sample
    counts = torch.bincount(draws(n, t, 1.0, counter=7), minlength=8).double()
    assert chisquare(counts.numpy(), want.numpy()).pvalue > ALPHA


def test_top_p_samples_the_renormalised_nucleus():
    n, t, top_p = 40_000, 1.0, 0.7
    probs = torch.softmax(LOGITS.double() / t, -1)
    order = probs.argsort(descending=True)
    cum = probs[order].cumsum(0)
    keep = order[: int((cum - probs[order] < top_p).sum())]  # tokens until the mass reaches top_p
    counts = torch.bincount(draws(n, t, top_p), minlength=8).double()
    assert counts[[i for i in range(8) if i not in keep.tolist()]].sum() == 0
    want = probs[keep] / probs[keep].sum() * n
    assert chisquare(counts[keep].numpy(), want.numpy()).pvalue > ALPHA


def test_greedy_and_tiny_top_p_pick_the_argmax():
    assert set(draws(200, 0.0, 1.0).tolist()) == {0}
    assert set(draws(200, 1.0, 0.05).tolist()) == {0}
    assert len(set(draws(200, 1.0, 1.0).tolist())) > 4


def test_a_seeded_row_draws_the_same_whatever_else_is_in_the_batch():
    keys = vocab_keys(8, "cpu")
    torch.manual_seed(0)
    for trial in range(20):
        b = 2 + trial % 7
        logits = torch.randn(b, 8) * 2
        temp, top_p = torch.rand(b) + 0.3, torch.rand(b) * 0.5 + 0.5
        seeds, counters = torch.randint(0, 1 << 52, (b,)), torch.randint(0, 1000, (b,))
        batched = sample(logits, temp, top_p, seeds, counters, keys)
        alone = [
            int(
                sample(
                    logits[i : i + 1], temp[i : i + 1], top_p[i : i + 1], seeds[i : i + 1], counters[i : i + 1], keys
                )
            )
            for i in range(b)
        ]
        assert batched.tolist() == alone

    # different seeds and different counters give different noise
    def row(seed, counter):
        return sample(
            torch.zeros(1, 1000),
            torch.ones(1),
            torch.ones(1),
            torch.tensor([seed]),
            torch.tensor([counter]),
            vocab_keys(1000, "cpu"),
        )

    assert len({int(row(s, 0)) for s in range(20)}) > 15
    assert len({int(row(5, c)) for c in range(20)}) > 15
    assert int(row(5, 3)) == int(row(5, 3))
