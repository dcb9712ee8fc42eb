"""Decode bucket choice and KV-cache sizing."""

from __future__ import annotations

import pytest
import torch
from transformers import MistralConfig

from inference.buckets import MIN_WINDOW, batch_buckets, pick, powers_of_two, window_buckets
from inference.kv_cache import bytes_per_token, plan_cache


def test_buckets_are_powers_of_two_ending_at_the_limit():
    assert powers_of_two(64) == [1, 2, 4, 8, 16, 32, 64]
    assert batch_buckets(48) == [1, 2, 4, 8, 16, 32, 48]
    assert batch_buckets(1) == [1]
    assert window_buckets(1024) == [MIN_WINDOW, 128, 256, 512, 1024]
    assert window_buckets(300) == [MIN_WINDOW, 128, 256, 300]
    assert window_buckets(40) == [40]


def test_pick_takes_the_smallest_bucket_that_fits():
    b = batch_buckets(48)
    assert [pick(b, n) for n in (1, 2, 3, 5, 16, 17, 33, 48)] == [1, 2, 4, 8, 16, 32, 48, 48]
    with pytest.raises(ValueError):
        pick(b, 49)


MISTRAL_7B = MistralConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)


def test_cache_is_sized_from_memory_not_from_max_position_embeddings():
    per_token = bytes_per_token(MISTRAL_7B, torch.bfloat16)
    assert per_token == 2 * 32 * 8 * 128 * 2  # 128 KiB
    # 64 slots of the model's 32,768 tokens would be 256 GiB; 40 GiB free holds 10 of them
    plan = plan_cache(
        MISTRAL_7B, torch.bfloat16, torch.device("cpu"), max_batch_size=64, length=32768, available=40 << 30
    )
    assert plan.slots == 10 and plan.nbytes == 10 * 32768 * per_token
    # with --max-model-len 4096 all 64 fit
    assert (
        plan_cache(
            MISTRAL_7B, torch.bfloat16, torch.device("cpu"), max_batch_size=64, length=4096, available=40 << 30
        ).slots
        == 64
    )
    with pytest.raises(RuntimeError, match="max-model-len"):
        plan_cache(MISTRAL_7B, torch.bfloat16, torch.device("cpu"), max_batch_size=64, length=32768, available=1 << 30)
