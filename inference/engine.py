"""Continuous (iteration-level) batching engine.

One thread owns the model. Each iteration it drops cancelled sequences, admits waiting
requests into free KV slots, runs one prefill step over at most `prefill_token_budget` prompt
tokens (long prompts are read in chunks over several iterations, so a decode step never waits
for more than one chunk), then one decode step for every running sequence at once. Finished
sequences leave between steps and their slots are reused by the next arrivals, so a request
never waits for a whole batch to end. What a step produced reaches each event loop in one
hand-off per step, not one per token.

With `async_output` (vLLM's async output processing) step N+1 is launched before the host reads
step N's tokens: rows continuing from step N take their input token on the device, so detokenizing,
stop checks and streaming overlap the next step. A sequence that finishes (stop, length, EOS,
cancellation) when step N is read still has a row in step N+1: that overshoot token is dropped,
never counted nor streamed, so a request sees exactly the tokens of the synchronous engine.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .buckets import pick
from .detokenizer import IncrementalDetokenizer, StopMatcher
from .kv_cache import KVCache, plan_cache, slot_length
from .metrics import WorkerMetrics
from .model_loader import LoadedModel
from .runner import POSITION, ModelRunner, PrefillPiece

log = logging.getLogger("inferwatch.worker")


class EngineError(Exception):
    """A request the engine refuses; `status` is the HTTP status to answer with."""

    def __init__(
        self, status: int, message: str, code: str, retry_after: float | None = None, param: str | None = None
    ) -> None:
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
    def __init__(
        self,
        request_id: str,
        prompt_ids: list[int],
        params: SamplingParams,
        handle: "RequestHandle",
        detok: IncrementalDetokenizer,
    ) -> None:
        self.request_id = request_id
        self.prompt_ids = prompt_ids
        self.params = params
        self.handle = handle
        self.detok = detok
        self.stops = StopMatcher(params.stop)
        self.output_ids: list[int] = []
        self.slot: int | None = None
        self.prefilled = 0  # prompt tokens already in the KV cache
        # unseeded requests draw a seed here: the sampler's noise is always a function of (seed, counter)
        self.seed = params.seed if params.seed is not None else random.getrandbits(52)
        self.cancelled = False
        self.in_flight = 0  # launched decode steps holding a token of this sequence, not yet read (0 or 1 here)
        self.arrival = time.perf_counter()
        self.last_token_at: float | None = None

    @property
    def held_slot(self) -> int:
        """The KV slot of a prefilling or running sequence (each holds one until it is released)."""
        assert self.slot is not None, f"{self.request_id} holds no KV slot"
        return self.slot

    @property
    def position(self) -> int:
        """Where the next token's key/value is written: after the prompt and all but the last output."""
        return len(self.prompt_ids) + len(self.output_ids) - 1


class RequestHandle:
    """The asyncio side of one request: iterate `outputs()`, call `cancel()` if the client leaves."""

    def __init__(self, engine: "Engine", loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self.loop = loop
        self.queue: asyncio.Queue[StepOutput] = asyncio.Queue()
        self.seq: Sequence | None = None

    async def outputs(self):
        while True:
            out = await self.queue.get()
            yield out
            if out.finish_reason is not None:
                return

    def cancel(self) -> None:
        if self.seq is not None and not self.seq.cancelled:
            self.seq.cancelled = True
            self._engine._wake()


def _deliver(items: list[tuple[asyncio.Queue, StepOutput]]) -> None:  # on the event loop
    for queue, out in items:
        queue.put_nowait(out)


@dataclass
class EngineStats:
    steps: int = 0
    prefill_steps: int = 0
    max_batch_size: int = 0
    recent_batch_sizes: collections.deque = field(default_factory=lambda: collections.deque(maxlen=4096))
    finished: int = 0
    cancelled: int = 0


class Engine:
    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_batch_size: int,
        max_queue: int,
        prefill_token_budget: int,
        metrics: WorkerMetrics,
        step_delay_s: float = 0.0,
        fail_after_tokens: int = 0,
        use_graphs: bool = True,
        compile_layers: bool = False,
        cache_bytes: int | None = None,
        async_output: bool = True,
    ) -> None:
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.device = torch.device(loaded.device)
        self.max_len = loaded.max_model_len
        self.max_queue = max_queue
        self.prefill_token_budget = prefill_token_budget
        self.metrics = metrics
        self.step_delay_s = step_delay_s  # fault injection: a deliberately slower worker
        self.fail_after_tokens = fail_after_tokens  # fault injection: generation fails part way (0: never)
        cfg = loaded.model.config
        plan = plan_cache(
            cfg,
            loaded.dtype,
            self.device,
            max_batch_size=max_batch_size,
            length=slot_length(cfg, self.max_len, prefill_token_budget),
            available=cache_bytes,
        )
        self.cache = KVCache(cfg, plan, loaded.dtype, self.device)
        self.max_batch_size = plan.slots
        self.runner = ModelRunner(
            loaded.model, self.cache, self.device, loaded.dtype, use_graphs=use_graphs, compile_layers=compile_layers
        )
        eos = getattr(loaded.model.generation_config, "eos_token_id", None) or self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.async_output = async_output
        self._inflight: tuple[int, list[tuple[int, Sequence]]] | None = None  # launched step: ticket, rows
        self.stats = EngineStats()
        self.warmup_graphs = 0
        self._free_slots = list(range(plan.slots))
        self._running: dict[int, Sequence] = {}  # slot -> sequence
        self._prefilling: list[Sequence] = []  # holding a slot, prompt partly in the cache
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._outbox: list[tuple[Sequence, StepOutput]] = []
        self._jobs: collections.deque[tuple[Callable[[], Any], Future]] = collections.deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._draining = False
        self._thread: threading.Thread | None = None

    # ---- public API (any thread) -------------------------------------------------------

    def start(self) -> None:
        """Start the engine thread; on CUDA it captures the decode graphs before taking any request."""
        self._thread = threading.Thread(target=self._loop, name="inferwatch-engine", daemon=True)
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests; with `drain`, let running and waiting ones finish first."""
        with self._cv:
            self._draining = True
            if not drain:
                for seq in list(self._waiting) + self._prefilling + list(self._running.values()):
                    seq.cancelled = True
            self._stopping = True
            self._cv.notify_all()
        if self._thread:
            self._thread.join(timeout)

    @property
    def num_running(self) -> int:
        return len(self._running) + len(self._prefilling)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    def submit(
        self, request_id: str, prompt_ids: list[int], params: SamplingParams, loop: asyncio.AbstractEventLoop
    ) -> RequestHandle:
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
        seq = Sequence(request_id, prompt_ids, params, handle, IncrementalDetokenizer(self.tokenizer))
        handle.seq = seq
        with self._cv:
            if self._draining:
                raise EngineError(503, "The worker is shutting down.", "shutting_down", retry_after=1)
            if len(self._waiting) >= self.max_queue:
                self.metrics.rejected.labels(model_version=self.metrics.version, reason="queue_full").inc()
                raise EngineError(
                    503,
                    f"The worker's queue is full ({self.max_queue} waiting). Retry shortly.",
                    "queue_full",
                    retry_after=1,
                )
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
            self.warmup_graphs = self.runner.capture()
            if self.warmup_graphs:
                log.info("captured %d decode graphs", self.warmup_graphs)
            while True:
                with self._cv:
                    while not (self._waiting or self._prefilling or self._running or self._jobs or self._stopping):
                        self._cv.wait()
                    if self._stopping and not (self._waiting or self._prefilling or self._running or self._jobs):
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
                    if self._prefilling:
                        self._prefill_step()
                    if self._running:
                        self._decode_step()
                except Exception:
                    log.exception("engine step failed; failing the running requests")
                    self._abandon_inflight()
                    for seq in self._prefilling + list(self._running.values()):
                        self._finish(seq, "error")
                self._flush()
                self._update_gauges()

    def _flush(self) -> None:
        """Hand this step's outputs to their event loops: one call per loop, not one per token."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue, StepOutput]]] = {}
        for seq, out in self._outbox:
            by_loop.setdefault(seq.handle.loop, []).append((seq.handle.queue, out))
        self._outbox = []
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the loop has closed: nobody is reading these outputs
                pass

    def _update_gauges(self) -> None:
        m = self.metrics
        m.labels(m.running).set(self.num_running)
        m.labels(m.waiting).set(len(self._waiting))
        m.labels(m.kv_usage).set(self.num_running / self.max_batch_size)

    def _drop_cancelled(self) -> None:
        """Free the slots of requests whose client left; counted as finished_reason "abort" (vLLM's name)."""
        aborted = 0
        for seq in self._prefilling + list(self._running.values()):
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
        if seq.slot is None:
            return
        if self._running.get(seq.slot) is seq:
            del self._running[seq.slot]
        else:
            self._prefilling.remove(seq)
        self.runner.clear_row(seq.slot)
        heapq.heappush(self._free_slots, seq.slot)
        seq.slot = None

    def _admit(self) -> None:
        now = time.perf_counter()
        queue_time = self.metrics.labels(self.metrics.queue_time)
        with self._cv:
            while self._waiting and self._free_slots:
                seq = self._waiting.popleft()
                seq.slot = heapq.heappop(self._free_slots)  # lowest free slot keeps the batch compact
                self._prefilling.append(seq)
                queue_time.observe(now - seq.arrival)

    def _prefill_step(self) -> None:
        """Up to `prefill_token_budget` prompt tokens, oldest first; a prompt may be split over steps."""
        budget, chosen = self.prefill_token_budget, []
        for seq in self._prefilling:
            if budget <= 0:
                break
            n = min(len(seq.prompt_ids) - seq.prefilled, budget)
            chosen.append((seq, n))
            budget -= n
        pieces = [
            PrefillPiece(
                s.held_slot,
                s.prefilled,
                s.prompt_ids[s.prefilled : s.prefilled + n],
                s.params.temperature,
                s.params.top_p,
                s.seed,
            )
            for s, n in chosen
        ]
        tokens = self.runner.prefill(pieces)
        self.stats.prefill_steps += 1
        self.metrics.labels(self.metrics.prompt_tokens).inc(self.prefill_token_budget - budget)
        done = []
        for (seq, n), tok in zip(chosen, tokens, strict=True):
            seq.prefilled += n
            if seq.prefilled == len(seq.prompt_ids):
                self._prefilling.remove(seq)
                self._running[seq.held_slot] = seq
                done.append((seq, tok))
        self._accept(done)

    def _decode_step(self) -> None:
        """Launch a step for every running sequence, then read the previous step (async) or this one."""
        r = self.runner
        slots = list(self._running)
        for slot in slots:
            seq = self._running[slot]
            r.set_row(
                slot,
                token=seq.output_ids[-1],
                position=seq.position + seq.in_flight,
                counter=len(seq.output_ids) + seq.in_flight,
                seed=seq.seed,
                temperature=seq.params.temperature,
                top_p=seq.params.top_p,
                carry=seq.in_flight > 0,
            )
            seq.in_flight += 1
        b = pick(r.batch_buckets, max(slots) + 1)
        w = r.window(int(r.inputs[POSITION, slots].max()))
        launched = (r.launch(b, w), [(slot, self._running[slot]) for slot in slots])
        previous, self._inflight = self._inflight, launched
        if previous is not None:
            self._read_step(*previous)
        if not self.async_output or not self._running:  # nothing left to overlap with: read it now
            self._read_step(*launched)
            self._inflight = None

    def _abandon_inflight(self) -> None:
        """Wait for a launched step's copies before its host buffers are used again; drop its tokens."""
        pending, self._inflight = self._inflight, None
        if pending is None:
            return
        try:
            self.runner.wait(pending[0])
        except Exception:  # the device failed too: the next launch reports it
            log.exception("engine: the abandoned step did not complete")
        for _, seq in pending[1]:
            seq.in_flight -= 1

    def _read_step(self, ticket: int, rows: list[tuple[int, Sequence]]) -> None:
        """Accept a launched step's tokens for the rows whose sequence still runs (the others overshot)."""
        out = self.runner.wait(ticket)
        for _, seq in rows:
            seq.in_flight -= 1
        results = [(seq, int(out[slot])) for slot, seq in rows if self._running.get(slot) is seq]
        if not results:
            return
        if self.step_delay_s:  # before the step's tokens are accepted, and only for a step that delivers any
            time.sleep(self.step_delay_s)
            self.metrics.faults_injected.labels(model_version=self.metrics.version, kind="token_latency").inc()
        n = len(results)
        self.stats.steps += 1
        self.stats.max_batch_size = max(self.stats.max_batch_size, n)
        self.stats.recent_batch_sizes.append(n)
        self.metrics.labels(self.metrics.batch_size).observe(n)
        self._accept(results)

    def _accept(self, results: list[tuple[Sequence, int]]) -> None:
        """Record one new token per sequence, stream its text, and retire finished sequences."""
        now = time.perf_counter()
        m = self.metrics
        ttft, itl = m.labels(m.ttft), m.labels(m.itl)
        m.labels(m.generation_tokens).inc(len(results))
        for seq, tok in results:
            if seq.last_token_at is None:
                ttft.observe(now - seq.arrival)
            else:
                itl.observe(now - seq.last_token_at)
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
                continue
            if len(seq.output_ids) >= seq.params.max_tokens or seq.position + 1 >= self.max_len:
                self._finish(seq, "length", text)
                continue
            if text:
                self._outbox.append((seq, StepOutput(text, None, len(seq.prompt_ids), len(seq.output_ids))))

    def _finish(self, seq: Sequence, reason: str, text: str = "", flush: bool = True) -> None:
        if flush and reason != "error":
            text += seq.stops.flush(seq.detok.flush())
        self._release(seq)
        self.stats.finished += 1
        m = self.metrics
        m.success.labels(model_version=m.version, finished_reason=reason).inc()
        m.labels(m.e2e).observe(time.perf_counter() - seq.arrival)
        self._outbox.append((seq, StepOutput(text, reason, len(seq.prompt_ids), len(seq.output_ids))))
