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
request path.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
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


class ClassifierBatcher:
    """Collects texts from concurrent requests and classifies them in one thread call."""

    def __init__(self, engine: "SafetyEngine", max_batch: int = 32) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._pending: list[tuple[str, bool, asyncio.Future[list[Hit]]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # forward passes run (for tests and benchmarks)
        self.texts = 0

    async def scan(self, text: str, harm: bool) -> list[Hit]:
        fut: asyncio.Future[list[Hit]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, harm, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            texts = [t for t, _, _ in batch]
            harm = any(h for _, h, _ in batch)
            try:
                clf = self.engine.classifier
                results = await asyncio.to_thread(clf.scan_many, texts, harm) if clf is not None else [[] for _ in texts]
            except Exception as exc:  # noqa: BLE001 - each waiting request gets the error
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.texts += len(texts)
            for (_, _, fut), hits in zip(batch, results):
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

    async def findings(self) -> list["Finding"]:
        hits = await self.runtime.hits(self.text, self.plan, self.direction)
        verdict = self.runtime.engine.decide(self.text, hits, self.policy, self.direction)
        # A plan made for later holds no redact or block rule that applies to its scanners.
        return [f if f.action == "flag" else Finding(f.hit, "flag") for f in verdict.findings]


class AsyncSafety:
    """``await scan(text, tenant, direction)`` with the engine's result, off the loop when long."""

    def __init__(self, engine: "SafetyEngine", *, inline_max_chars: int = 2048, classifier_threads: int | None = None,
                 max_batch: int = 32, max_hits: int = 100, classify_output: bool = False,
                 guard: GuardClient | None = None) -> None:
        self.engine = engine
        self.guard = guard
        self.classify_output = classify_output
        self.max_hits = max_hits
        self.inline_max_chars = inline_max_chars
        self.classifier_threads = classifier_threads
        self.batcher = ClassifierBatcher(engine, max_batch)

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
        if later is not None:
            verdict.findings = sorted(verdict.findings + await later.findings(), key=lambda f: (f.hit.start, f.hit.end))
            if verdict.action == "allow" and verdict.findings:
                verdict.action = "flag"
        return verdict

    async def scan_split(self, text: str, tenant: str | None, direction: Direction) -> tuple["Verdict", "Later | None"]:
        """The verdict of what can change or stop the text (``SafetyEngine.split``), and the
        flag-only rest as a ``Later`` to run after the response (None when there is none)."""
        policy = self.policy(tenant)
        guard = self.guard is not None and self.guard.wants(direction)
        now, after = self.engine.split(policy, direction, classifier=self.classifies(direction), guard=guard)
        verdict = self.engine.decide(text, await self.hits(text, now, direction), policy, direction)
        return verdict, (None if after.empty else Later(self, text, policy, direction, after))

    async def hits(self, text: str, plan: "Plan", direction: Direction) -> list[Hit]:
        """A plan's hits: the span scanners on the loop for short texts, else in a thread;
        the classifier through the batcher; the guard model, or the classifier's harm head
        when the guard gives no verdict."""
        if len(text) <= self.inline_max_chars:
            hits = self.engine.span_hits(text, plan)
        else:
            hits = await asyncio.to_thread(self.engine.span_hits, text, plan)
        if not text.strip():
            return hits
        if plan.classify:
            hits += [h for h in await self.batcher.scan(text, plan.harm) if h.category in plan.classify]
        if plan.guard and self.guard is not None:
            try:
                hits += [h for h in await self.guard.scan(text, direction) if h.category in plan.guard]
            except GuardUnavailable as exc:
                log.warning("%s; the local heads answer instead", exc)
                if self.engine.use_classifier:
                    hits += [h for h in await self.batcher.scan(text, True) if h.category in plan.guard]
        return hits

    async def aclose(self) -> None:
        if self.guard is not None:
            await self.guard.close()

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
