"""The model's forward passes for the engine: chunked prefill, and the decode step.

A decode step reads one packed input buffer (token, write position, seed, counter,
temperature, top-p per row), runs the decoder, the output layer and the sampler on the
device, and writes one token id per row. On CUDA each (batch, window) bucket is a CUDA graph
captured at warm-up, so a step is one non-blocking copy in, one replay, one copy out and one
event sync. Elsewhere the same function runs eagerly.

A row marked CARRY takes its input token from the previous step's output on the device, so the
engine can launch step N+1 before the host has read step N's tokens. The host-side input and
output buffers are doubled for that: a step's staging buffers are reused two launches later,
after its event has been waited on.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import attention
from .attention import DecodeStep, PrefillStep, additive, allowed_keys, window_kinds
from .buckets import batch_buckets, pick, window_buckets
from .kv_cache import KVCache
from .sampling import sample, vocab_keys

log = logging.getLogger("inferwatch.worker")

# Rows of the packed decode input (float64 holds every id, position and 52-bit seed exactly).
TOKEN, POSITION, COLUMN, SEED, COUNTER, TEMPERATURE, TOP_P, CARRY = range(8)
INPUT_ROWS = 8
IN_FLIGHT = 2  # decode steps launched and not yet read back, at most
SEED_MASK = (1 << 52) - 1


@dataclass
class PrefillPiece:
    slot: int
    start: int  # prompt tokens already in the cache
    ids: list[int]
    temperature: float
    top_p: float
    seed: int


class ModelRunner:
    def __init__(
        self,
        model: Any,
        cache: KVCache,
        device: torch.device,
        dtype: torch.dtype,
        *,
        use_graphs: bool = True,
        compile_layers: bool = False,
    ) -> None:
        self.decoder = model.get_decoder()
        self.lm_head = model.get_output_embeddings()
        self.cache, self.device, self.dtype = cache, device, dtype
        config = model.config
        self.group = config.num_attention_heads // config.num_key_value_heads
        self.windows = window_kinds(config)
        self.batch_buckets = batch_buckets(cache.num_slots)
        self.window_buckets = window_buckets(cache.length)
        cuda = device.type == "cuda"
        n = cache.num_slots
        self.inputs = np.zeros((INPUT_ROWS, n))  # the engine writes rows here; copied to staging at launch
        self.host_in = [torch.zeros((INPUT_ROWS, n), dtype=torch.float64, pin_memory=cuda) for _ in range(IN_FLIGHT)]
        self.dev_in = torch.zeros((INPUT_ROWS, n), dtype=torch.float64, device=device)
        self.dev_out = torch.zeros(n, dtype=torch.int64, device=device)
        self.host_out = [torch.zeros(n, dtype=torch.int64, pin_memory=cuda) for _ in range(IN_FLIGHT)]
        self.rows = torch.arange(n, device=device)
        self.keys = vocab_keys(config.vocab_size, device)
        self.events = [torch.cuda.Event() for _ in range(IN_FLIGHT)] if cuda else None
        self.launches = 0
        self.use_graphs = use_graphs and cuda
        self.graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self.shapes: collections.Counter[tuple[int, int]] = collections.Counter()  # decode steps per (batch, window)
        for slot in range(n):
            self.clear_row(slot)
        if compile_layers:
            for layer in self.decoder.layers:
                layer.compile(dynamic=True)

    # ---- host-side rows -------------------------------------------------------------------

    def clear_row(self, slot: int) -> None:
        """A row without a sequence: greedy, writing its key to the scratch column."""
        self.inputs[:, slot] = (0, 0, self.cache.scratch, 0, 0, 0.0, 1.0, 0)

    def set_row(
        self,
        slot: int,
        *,
        token: int,
        position: int,
        counter: int,
        seed: int,
        temperature: float,
        top_p: float,
        carry: bool = False,
    ) -> None:
        """The row of `slot` for the next step; with `carry` its token is what the previous step sampled there."""
        column = self.cache.column(position)
        self.inputs[:, slot] = (token, position, column, seed & SEED_MASK, counter, temperature, top_p, carry)

    def window(self, max_position: int) -> int:
        """The decode window bucket for rows whose highest position is `max_position`."""
        return pick(self.window_buckets, min(max_position, self.cache.ring - 1) + 1)

    # ---- decode ---------------------------------------------------------------------------

    def _decode_forward(self, b: int, w: int, any_sampled: bool = True, any_top_p: bool = True) -> None:
        x = self.dev_in[:, :b]
        ids, pos, cols, seeds, counters = (x[i].long() for i in (TOKEN, POSITION, COLUMN, SEED, COUNTER))
        ids = torch.where(x[CARRY] > 0, self.dev_out[:b], ids)  # read before this step overwrites dev_out
        ring = self.cache.ring
        masks = {sw: additive(allowed_keys(pos, w, sw, ring), self.dtype).view(b, 1, 1, w) for sw in self.windows}
        step = DecodeStep(self.cache, self.rows[:b], cols, w, masks)
        hidden = self.decoder(
            input_ids=ids.unsqueeze(1),
            position_ids=pos.unsqueeze(1),
            attention_mask=masks[None],
            use_cache=False,
            **{attention.STEP_KWARG: step},
        ).last_hidden_state
        logits = self.lm_head(hidden[:, -1])
        self.dev_out[:b] = sample(
            logits,
            x[TEMPERATURE].float(),
            x[TOP_P].float(),
            seeds,
            counters,
            self.keys,
            any_sampled=any_sampled,
            any_top_p=any_top_p,
        )

    def launch(self, b: int, w: int) -> int:
        """Start a decode step of `b` rows over a `w`-key window; no host synchronisation. Returns
        the ticket to `wait` on; the step `IN_FLIGHT` launches earlier must have been waited on."""
        self.shapes[(b, w)] += 1
        ticket = self.launches % IN_FLIGHT
        self.launches += 1
        staging = self.host_in[ticket]
        staging.numpy()[:] = self.inputs
        self.dev_in.copy_(staging, non_blocking=True)
        graph = self.graphs.get((b, w))
        if graph is not None:
            graph.replay()
        else:  # eager: the host-side inputs say which parts of the sampler this batch needs
            rows = self.inputs[:, :b]
            self._decode_forward(b, w, bool((rows[TEMPERATURE] > 0).any()), bool((rows[TOP_P] < 1).any()))
        self.host_out[ticket].copy_(self.dev_out, non_blocking=True)
        if self.events is not None:
            self.events[ticket].record()
        return ticket

    def wait(self, ticket: int) -> np.ndarray:
        """The step's token per row (the one host synchronisation of a step)."""
        if self.events is not None:
            self.events[ticket].synchronize()
        return self.host_out[ticket].numpy()

    def decode(self, b: int, w: int) -> np.ndarray:
        return self.wait(self.launch(b, w))

    def capture(self) -> int:
        """Capture one CUDA graph per (batch, window) bucket; returns how many."""
        if not self.use_graphs:
            return 0
        self.dev_in.copy_(torch.from_numpy(self.inputs))
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # eager runs first: lazy initialisation must not happen inside a capture
            for b in self.batch_buckets:
                self._decode_forward(b, self.window_buckets[-1])
        torch.cuda.current_stream(self.device).wait_stream(side)
        pool = torch.cuda.graph_pool_handle()
        for b in reversed(self.batch_buckets):  # largest first, so the smaller ones reuse its memory
            for w in reversed(self.window_buckets):
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool):
                    self._decode_forward(b, w)
                self.graphs[(b, w)] = graph
        torch.cuda.synchronize(self.device)
        return len(self.graphs)

    # ---- prefill --------------------------------------------------------------------------

    def prefill(self, pieces: list[PrefillPiece]) -> list[int]:
        """Write each piece's keys into its slot; return a token sampled after each piece's last token."""
        n, width = len(pieces), max(len(p.ids) for p in pieces)
        ids = torch.zeros((n, width), dtype=torch.long)
        for i, p in enumerate(pieces):
            ids[i, : len(p.ids)] = torch.tensor(p.ids)
        start = torch.tensor([p.start for p in pieces])
        lengths = torch.tensor([len(p.ids) for p in pieces])
        ring = self.cache.ring
        kv_len = min(int((start + lengths).max()), ring)
        query_pos = start.unsqueeze(1) + torch.arange(width)
        columns = torch.where(torch.arange(width) < lengths.unsqueeze(1), query_pos % ring, self.cache.scratch)
        query_pos = query_pos.to(self.device)
        masks = {
            sw: additive(allowed_keys(query_pos, kv_len, sw, ring), self.dtype).unsqueeze(1).repeat(1, 1, self.group, 1)
            for sw in self.windows
        }  # [n, 1, group * width, kv_len]: packed query heads, see attention._grouped
        step = PrefillStep(
            self.cache,
            torch.tensor([p.slot for p in pieces], device=self.device),
            columns.to(self.device),
            kv_len,
            masks,
        )
        hidden = self.decoder(
            input_ids=ids.to(self.device),
            position_ids=query_pos,
            attention_mask=masks[None],
            use_cache=False,
            **{attention.STEP_KWARG: step},
        ).last_hidden_state
        last = hidden[torch.arange(n, device=self.device), (lengths - 1).to(self.device)]
        as_tensor = lambda values, dtype: torch.tensor(values, dtype=dtype, device=self.device)  # noqa: E731
        tokens = sample(
            self.lm_head(last),
            as_tensor([p.temperature for p in pieces], torch.float32),
            as_tensor([p.top_p for p in pieces], torch.float32),
            as_tensor([p.seed & SEED_MASK for p in pieces], torch.int64),
            torch.zeros(n, dtype=torch.int64, device=self.device),
            self.keys,
            any_sampled=any(p.temperature > 0 for p in pieces),
            any_top_p=any(p.top_p < 1 for p in pieces),
        )
        return tokens.tolist()
