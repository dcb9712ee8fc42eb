"""A slot-based KV cache for continuous batching with Hugging Face decoder models.

Each running sequence owns one slot (a row of preallocated key/value buffers). The model's
attention layers call `update()` with the new keys and values; we write them at each row's
own position, so sequences of different lengths decode in the same forward pass. Attention
masking is done by the engine with an explicit 4D mask, which transformers passes through.
"""
from __future__ import annotations

import torch


class SlotKVCache:
    def __init__(
        self,
        num_layers: int,
        num_slots: int,
        num_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        shape = (num_slots, num_kv_heads, max_len, head_dim)
        # zeros, not empty: masked-out positions still enter the matmul, and 0 * NaN is NaN.
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.num_slots = num_slots
        self.max_len = max_len
        self._mode = ""
        self._slots: torch.Tensor | None = None
        self._positions: torch.Tensor | None = None
        self._rows = 0
        self._kv_len = 0

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)

    def bind_prefill(self, slots: torch.Tensor) -> None:
        """Next forward: fresh prompts (positions 0..L-1) for `slots`, no earlier context."""
        self._mode, self._slots = "prefill", slots

    def bind_decode(self, rows: int, positions: torch.Tensor, kv_len: int) -> None:
        """Next forward: one token for each slot 0..rows-1, written at `positions`."""
        self._mode, self._rows, self._positions, self._kv_len = "decode", rows, positions, kv_len

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        k_buf, v_buf = self.keys[layer_idx], self.values[layer_idx]
        if self._mode == "prefill":
            length = key_states.shape[2]
            k_buf[self._slots, :, :length] = key_states
            v_buf[self._slots, :, :length] = value_states
            return key_states, value_states  # a prompt attends only to itself
        rows = torch.arange(self._rows, device=k_buf.device)
        k_buf[rows, :, self._positions] = key_states[:, :, 0]
        v_buf[rows, :, self._positions] = value_states[:, :, 0]
        return k_buf[: self._rows, :, : self._kv_len], v_buf[: self._rows, :, : self._kv_len]

    # transformers asks caches a few questions; with explicit positions and masks these suffice.
    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    @property
    def is_compileable(self) -> bool:
        return False
