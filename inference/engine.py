"""Continuous (iteration-level) batching engine.

One thread owns the model. Each iteration it drops cancelled sequences, admits waiting
requests into free KV slots (prefilling their prompts), then runs one decode step for every
running sequence at once. Finished sequences leave between steps and their slots are reused
by the next arrivals, so a request never waits for a whole batch to end.
"""
from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .detokenizer import IncrementalDetokenizer, StopMatcher
from .kv_cache import SlotKVCache
from .metrics import WorkerMetrics
from .model_loader import LoadedModel
from .sampling import make_generator, sample

log = logging.getLogger("inferwatch.worker")


class EngineError(Exception):
    """A request the engine refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, code: str, retry_after: float | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.retry_after, self.param = status, message, code, retry_after, param


@dataclass
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False


@dataclass
class StepOutput:
    text: str  # new text since the previous output
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0  # generated so far, this output's tokens included (running usage)


class Sequence:
    def __init__(self, request_id: str, prompt_ids: list[int], params: SamplingParams, emit: Callable[[StepOutput], None], detok: IncrementalDetokenizer) -> None:
        self.request_id = request_id
        self.prompt_ids = prompt_ids
        self.params = params
        self.emit = emit
        self.detok = detok
        self.stops = StopMatcher(params.stop)
        self.output_ids: list[int] = []
        self.slot: int | None = None
        self.generator: torch.Generator | None = None
        self.cancelled = False
        self.arrival = time.perf_counter()
        self.last_token_at: float | None = None

    @property
    def position(self) -> int:
        """Where the next token's key/value is written: after the prompt and all but the last output."""
        return len(self.prompt_ids) + len(self.output_ids) - 1


class RequestHandle:
    """The asyncio side of one request: iterate `outputs()`, call `cancel()` if the client leaves."""

    def __init__(self, engine: "Engine", loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        self._queue: asyncio.Queue[StepOutput] = asyncio.Queue()
        self.seq: Sequence | None = None

    def _emit(self, out: StepOutput) -> None:  # called from the engine thread
        self._loop.call_soon_threadsafe(self._queue.put_nowait, out)

    async def outputs(self):  # noqa: ANN201 - async generator of StepOutput
        while True:
            out = await self._queue.get()
            yield out
            if out.finish_reason is not None:
                return

    def cancel(self) -> None:
        if self.seq is not None and not self.seq.cancelled:
            self.seq.cancelled = True
            self._engine._wake()


@dataclass
class EngineStats:
    steps: int = 0
    max_batch_size: int = 0
    recent_batch_sizes: collections.deque = field(default_factory=lambda: collections.deque(maxlen=4096))
    finished: int = 0
    cancelled: int = 0


class Engine:
    def __init__(self, loaded: LoadedModel, *, max_batch_size: int, max_queue: int, prefill_token_budget: int, metrics: WorkerMetrics,
                 step_delay_s: float = 0.0, fail_after_tokens: int = 0) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.decoder = loaded.model.get_decoder()
        self.lm_head = loaded.model.get_output_embeddings()
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.max_len = loaded.max_model_len
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.prefill_token_budget = prefill_token_budget
        self.metrics = metrics
        self.step_delay_s = step_delay_s  # fault injection: a deliberately slower worker
        self.fail_after_tokens = fail_after_tokens  # fault injection: generation fails part way (0: never)
        cfg = loaded.model.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.cache = SlotKVCache(cfg.num_hidden_layers, max_batch_size, cfg.num_key_value_heads, self.max_len, head_dim, loaded.dtype, self.device)
        eos = getattr(loaded.model.generation_config, "eos_token_id", None) or self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.stats = EngineStats()
        self._free_slots = list(range(max_batch_size))
        self._running: dict[int, Sequence] = {}  # slot -> sequence
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._jobs: collections.deque[tuple[Callable[[], Any], Future]] = collections.deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._draining = False
        self._thread: threading.Thread | None = None
        self._min_value = torch.finfo(loaded.dtype).min

    # ---- public API (any thread) -------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="inferwatch-engine", daemon=True)
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests; with `drain`, let running and waiting ones finish first."""
        with self._cv:
            self._draining = True
            if not drain:
                for seq in list(self._waiting) + list(self._running.values()):
                    seq.cancelled = True
            self._stopping = True
            self._cv.notify_all()
        if self._thread:
            self._thread.join(timeout)

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    def submit(self, request_id: str, prompt_ids: list[int], params: SamplingParams, loop: asyncio.AbstractEventLoop) -> RequestHandle:
        n = len(prompt_ids)
        if n == 0:
            raise EngineError(400, "The prompt is empty.", "empty_prompt")
        if n + params.max_tokens > self.max_len:
            raise EngineError(
                400,
                f"This model's maximum context length is {self.max_len} tokens. However, you requested "
                f"{n + params.max_tokens} tokens ({n} in the prompt, {params.max_tokens} for the completion). "
                "Please reduce the length of the prompt or of max_tokens.",
                "context_length_exceeded",
            )
        handle = RequestHandle(self, loop)
        seq = Sequence(request_id, prompt_ids, params, handle._emit, IncrementalDetokenizer(self.tokenizer))
        handle.seq = seq
        with self._cv:
            if self._draining:
                raise EngineError(503, "The worker is shutting down.", "shutting_down", retry_after=1)
            if len(self._waiting) >= self.max_queue:
                self.metrics.rejected.labels(model_version=self.metrics.version, reason="queue_full").inc()
                raise EngineError(503, f"The worker's queue is full ({self.max_queue} waiting). Retry shortly.", "queue_full", retry_after=1)
            self._waiting.append(seq)
            self._cv.notify_all()
        return handle

    def run_job(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` on the engine thread between steps (the model is used by one thread only)."""
        fut: Future = Future()
        with self._cv:
            self._jobs.append((fn, fut))
            self._cv.notify_all()
        return fut

    def _wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    # ---- engine thread ----------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cv:
                    while not (self._waiting or self._running or self._jobs or self._stopping):
                        self._cv.wait()
                    if self._stopping and not (self._waiting or self._running or self._jobs):
                        return
                    jobs = list(self._jobs)
                    self._jobs.clear()
                for fn, fut in jobs:
                    try:
                        fut.set_result(fn())
                    except Exception as exc:  # noqa: BLE001 - handed to the caller
                        fut.set_exception(exc)
                try:
                    self._drop_cancelled()
                    self._admit()
                    if self._running:
                        if self.step_delay_s:  # before the step, so a finished request has had all its pauses
                            time.sleep(self.step_delay_s)
                            self.metrics.faults_injected.labels(model_version=self.metrics.version, kind="token_latency").inc()
                        self._decode_step()
                except Exception:  # noqa: BLE001 - a failed step must not kill the worker
                    log.exception("engine step failed; failing the running requests")
                    for seq in list(self._running.values()):
                        self._finish(seq, "error")
                self._update_gauges()

    def _update_gauges(self) -> None:
        m = self.metrics
        m.labels(m.running).set(len(self._running))
        m.labels(m.waiting).set(len(self._waiting))
        m.labels(m.kv_usage).set(len(self._running) / self.max_batch_size)

    def _drop_cancelled(self) -> None:
        """Free the slots of requests whose client left; counted as finished_reason "abort" (vLLM's name)."""
        aborted = 0
        for slot, seq in list(self._running.items()):
            if seq.cancelled:
                self._release(seq)
                aborted += 1
        with self._cv:
            if any(s.cancelled for s in self._waiting):
                aborted += sum(s.cancelled for s in self._waiting)
                self._waiting = collections.deque(s for s in self._waiting if not s.cancelled)
        if aborted:
            self.stats.cancelled += aborted
            self.metrics.success.labels(model_version=self.metrics.version, finished_reason="abort").inc(aborted)

    def _release(self, seq: Sequence) -> None:
        if seq.slot is not None:
            del self._running[seq.slot]
            heapq.heappush(self._free_slots, seq.slot)
            seq.slot = None

    def _admit(self) -> None:
        batch: list[Sequence] = []
        budget = self.prefill_token_budget
        with self._cv:
            while self._waiting and self._free_slots:
                n = len(self._waiting[0].prompt_ids)
                if batch and n > budget:
                    break
                seq = self._waiting.popleft()
                seq.slot = heapq.heappop(self._free_slots)  # lowest free slot keeps the batch compact
                batch.append(seq)
                budget -= n
        if batch:
            self._prefill(batch)

    def _prefill(self, batch: list[Sequence]) -> None:
        now = time.perf_counter()
        lengths = [len(s.prompt_ids) for s in batch]
        width = max(lengths)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        for i, s in enumerate(batch):
            ids[i, : lengths[i]] = torch.tensor(s.prompt_ids)
            self.metrics.labels(self.metrics.queue_time).observe(now - s.arrival)
            s.generator = make_generator(s.params.seed, self.device)
        ids = ids.to(self.device)
        positions = torch.arange(width, device=self.device).expand(len(batch), width)
        causal = torch.ones((width, width), dtype=torch.bool, device=self.device).tril()
        mask = torch.zeros((len(batch), 1, width, width), dtype=self.loaded.dtype, device=self.device)
        mask.masked_fill_(~causal, self._min_value)
        self.cache.bind_prefill(torch.tensor([s.slot for s in batch], device=self.device))
        hidden = self.decoder(input_ids=ids, attention_mask=mask, position_ids=positions, cache=self.cache, use_cache=True).last_hidden_state
        last = hidden[torch.arange(len(batch), device=self.device), torch.tensor(lengths, device=self.device) - 1]
        logits = self.lm_head(last)
        self.metrics.labels(self.metrics.prompt_tokens).inc(sum(lengths))
        for s in batch:
            self._running[s.slot] = s
        self._accept(batch, logits)

    def _decode_step(self) -> None:
        rows = max(self._running) + 1
        seqs = [self._running.get(i) for i in range(rows)]
        input_ids = torch.zeros((rows, 1), dtype=torch.long)
        positions = torch.zeros(rows, dtype=torch.long)
        for i, s in enumerate(seqs):
            if s is not None:
                input_ids[i, 0] = s.output_ids[-1]
                positions[i] = s.position
        kv_len = min(self.max_len, (int(positions.max()) + 1 + 15) // 16 * 16)
        # Row i may attend to keys 0..positions[i]; free rows attend to key 0 only (never an all -inf row).
        keys = torch.arange(kv_len)
        allowed = keys.unsqueeze(0) <= positions.unsqueeze(1)
        mask = torch.zeros((rows, 1, 1, kv_len), dtype=self.loaded.dtype)
        mask.masked_fill_(~allowed.view(rows, 1, 1, kv_len), self._min_value)
        positions = positions.to(self.device)
        self.cache.bind_decode(rows, positions, kv_len)
        hidden = self.decoder(
            input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
            position_ids=positions.unsqueeze(1), cache=self.cache, use_cache=True,
        ).last_hidden_state
        active = [i for i, s in enumerate(seqs) if s is not None]
        logits = self.lm_head(hidden[active, -1])
        n = len(active)
        self.stats.steps += 1
        self.stats.max_batch_size = max(self.stats.max_batch_size, n)
        self.stats.recent_batch_sizes.append(n)
        self.metrics.labels(self.metrics.batch_size).observe(n)
        self._accept([seqs[i] for i in active], logits)

    def _accept(self, seqs: list[Sequence], logits: torch.Tensor) -> None:
        """Sample one token per sequence, stream its text, and retire finished sequences."""
        tokens = sample(logits, [s.params.temperature for s in seqs], [s.params.top_p for s in seqs], [s.generator for s in seqs])
        now = time.perf_counter()
        m = self.metrics
        m.labels(m.generation_tokens).inc(len(seqs))
        for seq, tok in zip(seqs, tokens):
            if seq.last_token_at is None:
                m.labels(m.ttft).observe(now - seq.arrival)
            else:
                m.labels(m.itl).observe(now - seq.last_token_at)
            seq.last_token_at = now
            seq.output_ids.append(tok)
            if self.fail_after_tokens and len(seq.output_ids) >= self.fail_after_tokens:
                self._finish(seq, "error")
                continue
            if tok in self.eos_ids and not seq.params.ignore_eos:
                self._finish(seq, "stop")
                continue
            text, stopped = seq.stops.feed(seq.detok.add(tok))
            if stopped:
                self._finish(seq, "stop", text, flush=False)
            elif len(seq.output_ids) >= seq.params.max_tokens or seq.position + 1 >= self.max_len:
                self._finish(seq, "length", text)
            elif text:
                seq.emit(StepOutput(text, None, len(seq.prompt_ids), len(seq.output_ids)))

    def _finish(self, seq: Sequence, reason: str, text: str = "", flush: bool = True) -> None:
        if flush and reason != "error":
            text += seq.stops.flush(seq.detok.flush())
        self._release(seq)
        self.stats.finished += 1
        m = self.metrics
        m.success.labels(model_version=m.version, finished_reason=reason).inc()
        m.labels(m.e2e).observe(time.perf_counter() - seq.arrival)
        seq.emit(StepOutput(text, reason, len(seq.prompt_ids), len(seq.output_ids)))
