"""Running scans from an event loop: the gateway's side of the engine.

Rule scanners cost about 0.1 ms plus 1 µs per character, so a rule-only scan of a short text
runs on the event loop (a thread hop costs about as much); longer texts go to a thread. The
classifier (MiniLM, ~15 ms for one text on one CPU core, ~3 ms per text in a batch of 32)
never runs on the event loop: concurrent requests' texts are batched into one forward pass
by ``ClassifierBatcher`` (while one batch runs, the next one fills up, so an idle gateway
adds no wait and a busy one gets the batch speed-up). By default the classifier reads
prompts only: completions get the rule scanners, streamed or not, so a completion gets the
same verdict either way (``classify_output`` adds it for non-streamed ones).

Only what can change or stop a text runs before the answer (``scan_split``): a finding whose
action can only be ``flag`` needs no answer first, so those scans come back as a ``Later``
that the gateway runs after the response is sent and before the record is written. With the
default policy (the classifier's hits flag; rule hits block) the classifier is never on the
request path, and the classifier's work after responses runs in a thread of the lowest
priority (nice 19), so on a busy machine it takes what the request path leaves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .guard import GuardClient, GuardUnavailable
from .policy import TenantPolicy
from .types import Direction, Hit

from .verdict import Finding

if TYPE_CHECKING:
    from .engine import Plan, SafetyEngine
    from .verdict import Verdict

log = logging.getLogger(__name__)


def default_classifier_threads() -> int:
    """Torch intra-op threads for the classifier: a quarter of the cores, 1 to 4.

    More threads than free cores makes torch's spinning workers fight the event loop (on a
    busy 2-core machine a single forward pass went from 15 ms to 200 ms with 2 threads).
    """
    return max(1, min(4, (os.cpu_count() or 1) // 4))


def _lowest_priority() -> None:
    """Thread initializer: nice 19 for this thread alone (Linux keeps nice values per thread),
    so on a busy machine the event loop and the scans on the request path run first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: same priority as the rest
        pass


def background_executor() -> ThreadPoolExecutor:
    """One low-priority thread for the classifier's work after responses."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="safety-later", initializer=_lowest_priority)


class ClassifierBatcher:
    """Collects texts from concurrent requests and classifies them in one thread call (in
    ``executor``, default: the loop's default one)."""

    def __init__(self, engine: "SafetyEngine", max_batch: int = 32, executor: ThreadPoolExecutor | None = None) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.executor = executor
        self._pending: list[tuple[str, bool, asyncio.Future[list[Hit]]]] = []
        self._task: asyncio.Task[None] | None = None
        self.queued = 0  # texts handed in and not answered yet
        self.batches = 0  # forward passes run (for tests and benchmarks)
        self.texts = 0

    async def scan(self, text: str, harm: bool) -> list[Hit]:
        fut: asyncio.Future[list[Hit]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, harm, fut))
        self.queued += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        try:
            return await fut
        finally:
            self.queued -= 1

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            texts = [t for t, _, _ in batch]
            harm = any(h for _, h, _ in batch)
            try:
                clf = self.engine.classifier
                results: list[list[Hit]]
                if clf is None:
                    results = [[] for _ in texts]
                else:
                    loop = asyncio.get_running_loop()
                    results = await loop.run_in_executor(self.executor, clf.scan_many, texts, harm)
            except Exception as exc:  # noqa: BLE001 - each waiting request gets the error
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.texts += len(texts)
            for (_, _, fut), hits in zip(batch, results, strict=True):
                if not fut.done():  # the request may have been cancelled meanwhile
                    fut.set_result(hits)


@dataclass(frozen=True, slots=True)
class Later:
    """The flag-only scans of one text, left for after the response."""

    runtime: "AsyncSafety"
    text: str
    policy: TenantPolicy
    direction: Direction
    plan: "Plan"

    async def findings(self, *, later: bool = True) -> list["Finding"]:
        """``later``: the classifier's low-priority thread (after the response), else its own."""
        hits = await self.runtime.hits(self.text, self.plan, self.direction, later=later)
        verdict = self.runtime.engine.decide(self.text, hits, self.policy, self.direction)
        # A plan made for later holds no redact or block rule that applies to its scanners.
        return [f if f.action == "flag" else Finding(f.hit, "flag") for f in verdict.findings]


def with_later(verdict: "Verdict", findings: list["Finding"]) -> "Verdict":
    """A verdict with the flag-only findings of its ``Later`` added."""
    verdict.findings = sorted(verdict.findings + findings, key=lambda f: (f.hit.start, f.hit.end))
    if verdict.action == "allow" and verdict.findings:
        verdict.action = "flag"
    return verdict


class AsyncSafety:
    """``await scan(text, tenant, direction)`` with the engine's result, off the loop when long."""

    def __init__(
        self,
        engine: "SafetyEngine",
        *,
        inline_max_chars: int = 2048,
        classifier_threads: int | None = None,
        max_batch: int = 32,
        max_hits: int = 100,
        classify_output: bool = False,
        guard: GuardClient | None = None,
        max_backlog: int = 256,
    ) -> None:
        self.engine = engine
        self.max_backlog = max_backlog  # texts waiting for the classifier after responses, at most
        self.guard = guard
        self.classify_output = classify_output
        self.max_hits = max_hits
        self.inline_max_chars = inline_max_chars
        self.classifier_threads = classifier_threads
        self.batcher = ClassifierBatcher(engine, max_batch)
        # scans after the response: the same model, in a thread of the lowest priority
        self.later_batcher = ClassifierBatcher(engine, max_batch, background_executor())

    def warm_up(self) -> None:
        """Load the classifier (if used) and touch every scanner once; blocking (seconds)."""
        if self.engine.use_classifier:
            import torch

            torch.set_num_threads(self.classifier_threads or default_classifier_threads())
        self.engine.warm_up()
        for tenant in [None, *self.engine.policies.tenants()]:
            self.engine.scan_input("warm up: mail a@example.com", tenant)
            self.engine.scan_output("warm up: mail a@example.com", tenant)

    def policy(self, tenant: str | None) -> TenantPolicy:
        return self.engine.policies.for_tenant(tenant)

    def wants(self, tenant: str | None, direction: Direction) -> bool:
        """Whether the tenant's policy scans this direction at all."""
        return bool(self.policy(tenant).direction(direction).active())

    def rewrites(self, tenant: str | None, direction: Direction) -> bool:
        """Whether the policy can change the text (a redact or block rule): then nothing that
        repeats the raw text, such as token logprobs, may be passed on."""
        return bool(self.policy(tenant).direction(direction).acting())

    def classifies(self, direction: Direction) -> bool:
        """Whether scans of this direction run the classifier (where the policy wants it)."""
        return self.engine.use_classifier and (direction == "input" or self.classify_output)

    async def scan(self, text: str, tenant: str | None, direction: Direction) -> "Verdict":
        """The whole verdict now, the flag-only scans included."""
        verdict, later = await self.scan_split(text, tenant, direction)
        return verdict if later is None else with_later(verdict, await later.findings())

    async def scan_split(self, text: str, tenant: str | None, direction: Direction) -> tuple["Verdict", "Later | None"]:
        """The verdict of what can change or stop the text (``SafetyEngine.split``), and the
        flag-only rest as a ``Later`` to run after the response (None when there is none)."""
        policy = self.policy(tenant)
        guard = self.guard is not None and self.guard.wants(direction)
        now, after = self.engine.split(policy, direction, classifier=self.classifies(direction), guard=guard)
        verdict = self.engine.decide(text, await self.hits(text, now, direction), policy, direction)
        if after.empty:
            return verdict, None
        if after.classify and self.later_batcher.queued >= self.max_backlog:
            # the classifier is that far behind: this request waits for its own scans (backpressure),
            # so the work after responses, and the records waiting for it, stay bounded
            return with_later(verdict, await Later(self, text, policy, direction, after).findings(later=False)), None
        return verdict, Later(self, text, policy, direction, after)

    async def hits(self, text: str, plan: "Plan", direction: Direction, *, later: bool = False) -> list[Hit]:
        """A plan's hits: the span scanners on the loop for short texts, else in a thread;
        the classifier through a batcher (``later``: the low-priority one); the guard model,
        or the classifier's harm head when the guard gives no verdict."""
        batcher = self.later_batcher if later else self.batcher
        if len(text) <= self.inline_max_chars:
            hits = self.engine.span_hits(text, plan)
        else:
            hits = await asyncio.to_thread(self.engine.span_hits, text, plan)
        if not text.strip():
            return hits
        if plan.classify:
            hits += [h for h in await batcher.scan(text, plan.harm) if h.category in plan.classify]
        if plan.guard and self.guard is not None:
            try:
                hits += [h for h in await self.guard.scan(text, direction) if h.category in plan.guard]
            except GuardUnavailable as exc:
                log.warning("%s; the local heads answer instead", exc)
                if self.engine.use_classifier:
                    hits += [h for h in await batcher.scan(text, True) if h.category in plan.guard]
        return hits

    async def aclose(self) -> None:
        if self.guard is not None:
            await self.guard.close()
        if self.later_batcher.executor is not None:
            self.later_batcher.executor.shutdown(wait=False)

    async def excerpts(self, text: str, findings: Sequence["Finding"], with_context: bool) -> list[str]:
        """Redacted excerpts of the findings (see ``safety.excerpt``), in a thread when the
        rescan of their context is long."""
        from .excerpt import context_cost, excerpts

        findings = list(findings)[: self.max_hits]
        if with_context and context_cost(text, findings) > self.inline_max_chars:
            return await asyncio.to_thread(excerpts, self.engine, text, findings, with_context=True)
        return excerpts(self.engine, text, findings, with_context=with_context)

    async def moderate(self, inputs: Sequence[str], tenant: str | None) -> dict:
        """``POST /v1/moderations`` body; every scanner runs, in a thread (the classifier
        takes a request's inputs as one batch)."""
        from .moderation import moderate

        return await asyncio.to_thread(moderate, self.engine, list(inputs), tenant)
