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
request path, and the classifier's work after responses runs in a child process of the lowest
priority (``safety.scanproc``; ``deferred_scans: thread`` keeps it in a nice-19 thread), so on
a busy machine it takes what the request path leaves; past ``max_backlog`` waiting texts the
classifier is skipped for a text and its record says so (see ``AsyncSafety``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .guard import GuardClient, GuardUnavailable
from .policy import TenantPolicy
from .scanproc import ScanProcess
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
    """One low-priority thread for the classifier's work after responses (``deferred_scans: thread``)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="safety-later", initializer=_lowest_priority)


RunBatch = Callable[[list[str], bool], Awaitable[list[list[Hit]]]]


class VerdictCache:
    """The classifier's hits of recently seen texts, keyed by a hash of the text (an LRU of
    ``size`` entries): a system prompt or template sent with every request is classified once.
    The hits span the whole text and depend on nothing else, so a hit of the cache is exact."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._hits: OrderedDict[bytes, tuple[bool, list[Hit]]] = OrderedDict()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes, harm: bool) -> list[Hit] | None:
        got = self._hits.get(key)
        if got is None or (harm and not got[0]):  # scanned without the harm head: no answer for harm
            return None
        self._hits.move_to_end(key)
        return got[1]

    def put(self, key: bytes, harm: bool, hits: list[Hit]) -> None:
        if self.size <= 0:
            return
        self._hits[key] = (harm, hits)
        self._hits.move_to_end(key)
        while len(self._hits) > self.size:
            self._hits.popitem(last=False)


class ClassifierBatcher:
    """Collects texts from concurrent requests and classifies them in one call of ``run``
    (default: the engine's classifier in ``executor``, the loop's default one when None);
    texts in ``cache`` are answered from it."""

    def __init__(
        self,
        engine: "SafetyEngine",
        max_batch: int = 32,
        executor: ThreadPoolExecutor | None = None,
        *,
        run: RunBatch | None = None,
        cache: VerdictCache | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.executor = executor
        self.run = run or self._in_thread
        self.cache = cache or VerdictCache(0)
        self._pending: list[tuple[str, bytes, bool, asyncio.Future[list[Hit]]]] = []
        self._task: asyncio.Task[None] | None = None
        self.queued = 0  # texts handed in and not answered yet
        self.batches = 0  # forward passes run (for tests and benchmarks)
        self.texts = 0
        self.cached = 0  # texts answered from the cache

    async def scan(self, text: str, harm: bool) -> list[Hit]:
        key = self.cache.key(text)
        hits = self.cache.get(key, harm)
        if hits is not None:
            self.cached += 1
            return hits
        fut: asyncio.Future[list[Hit]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, key, harm, fut))
        self.queued += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        try:
            return await fut
        finally:
            self.queued -= 1

    async def _in_thread(self, texts: list[str], harm: bool) -> list[list[Hit]]:
        clf = self.engine.classifier
        if clf is None:
            return [[] for _ in texts]
        return await asyncio.get_running_loop().run_in_executor(self.executor, clf.scan_many, texts, harm)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            texts = [t for t, _, _, _ in batch]
            harm = any(h for _, _, h, _ in batch)
            try:
                results = await self.run(texts, harm)
            except Exception as exc:  # noqa: BLE001 - each waiting request gets the error
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.texts += len(texts)
            for (_, key, _, fut), hits in zip(batch, results, strict=True):
                self.cache.put(key, harm, hits)
                if not fut.done():  # the request may have been cancelled meanwhile
                    fut.set_result(hits)
                    # One waiter woken per loop iteration, with I/O polled between: a batch
                    # of ~30 deferred scans landing at once would otherwise run all 30
                    # records' work (decide, publish, submit) before any socket is read.
                    await asyncio.sleep(0)


OverloadPolicy = Literal["skip", "wait"]
# Why the classifier did not read a text whose flag-only scans were left for later (the
# record's ``safety_unscanned``): its queue was full (``skip``), its process died or it
# raised, or the gateway stopped first.
Unscanned = Literal["overload", "scan_failed", "shutdown"]


@dataclass(frozen=True, slots=True)
class Later:
    """The flag-only scans of one text, left for after the response."""

    runtime: "AsyncSafety"
    text: str
    policy: TenantPolicy
    direction: Direction
    plan: "Plan"
    unscanned: Unscanned | None = None  # "overload": the classifier is left out of these scans

    async def run(self, *, later: bool = True) -> tuple[list["Finding"], Unscanned | None]:
        """(the flag-only findings, why the classifier did not read the text or None).
        ``later``: the classifier's deferred runner (after the response), else the request path's.
        The rule scanners' findings are there whatever happened to the classifier."""
        plan, unscanned = self.plan, self.unscanned
        if unscanned is not None:
            plan = dataclasses.replace(plan, classify=frozenset())
        try:
            hits = await self.runtime.hits(self.text, plan, self.direction, later=later)
        except Exception as exc:  # the record is written without the model's findings
            if not plan.classify and not plan.guard:
                raise
            log.warning("safety: a deferred classifier scan failed (%s); the record says so", exc)
            plan, unscanned = dataclasses.replace(plan, classify=frozenset(), guard=frozenset()), "scan_failed"
            hits = await self.runtime.hits(self.text, plan, self.direction)
        verdict = self.runtime.engine.decide(self.text, hits, self.policy, self.direction)
        # A plan made for later holds no redact or block rule that applies to its scanners.
        return [f if f.action == "flag" else Finding(f.hit, "flag") for f in verdict.findings], unscanned

    async def findings(self, *, later: bool = True) -> list["Finding"]:
        return (await self.run(later=later))[0]


def with_later(verdict: "Verdict", findings: list["Finding"]) -> "Verdict":
    """A verdict with the flag-only findings of its ``Later`` added."""
    verdict.findings = sorted(verdict.findings + findings, key=lambda f: (f.hit.start, f.hit.end))
    if verdict.action == "allow" and verdict.findings:
        verdict.action = "flag"
    return verdict


class AsyncSafety:
    """``await scan(text, tenant, direction)`` with the engine's result, off the loop when long.

    The classifier's deferred scans run in ``scan_process`` (``safety.scanproc``: its own GIL,
    nice 19) when one is given, else in a nice-19 thread of this process. When more than
    ``max_backlog`` texts wait for them, ``overload`` decides: ``skip`` (the default) leaves
    the classifier out of that text's scans and marks the record ``safety_unscanned:
    overload``; ``wait`` makes the request wait for its own scans (backpressure). Skip is the
    default because these scans can only flag: a platform team would rather lose some flags,
    counted, than have the whole tenant's latency follow the classifier's queue when the
    machine is short of CPU. Identical texts (a system prompt on every request) are
    classified once while they stay among the last ``cache_size``.
    """

    def __init__(
        self,
        engine: "SafetyEngine",
        *,
        inline_max_chars: int = 2048,
        max_batch: int = 32,
        max_hits: int = 100,
        classify_output: bool = False,
        guard: GuardClient | None = None,
        max_backlog: int = 256,
        overload: OverloadPolicy = "skip",
        scan_process: ScanProcess | None = None,
        cache_size: int = 0,
    ) -> None:
        self.engine = engine
        self.max_backlog = max_backlog  # texts waiting for the classifier after responses, at most
        self.overload = overload
        self.guard = guard
        self.classify_output = classify_output
        self.max_hits = max_hits
        self.inline_max_chars = inline_max_chars
        cache = VerdictCache(cache_size)
        self.batcher = ClassifierBatcher(engine, max_batch, cache=cache)
        self.scan_process = scan_process
        if scan_process is not None:
            self.later_batcher = ClassifierBatcher(engine, max_batch, run=scan_process.scan_many, cache=cache)
        else:  # the same model, in a thread of the lowest priority
            self.later_batcher = ClassifierBatcher(engine, max_batch, background_executor(), cache=cache)

    def classifier_here(self) -> bool:
        """Whether this process needs the model itself: there is no scan process, or a tenant's
        policy acts before an answer (a block or redact rule) on the classifier's hits or on a
        guard model's, which the classifier gives when the guard cannot. Otherwise the model
        loads here only for ``/v1/moderations``."""
        if not self.engine.use_classifier:
            return False
        if self.scan_process is None:
            return True
        for tenant in [None, *self.engine.policies.tenants()]:
            for d in ("input", "output"):
                now, _ = self.engine.split(self.policy(tenant), d, classifier=self.classifies(d), guard=self.guards(d))
                if now.classify or now.guard:
                    return True
        return False

    def warm_up(self) -> None:
        """Load the classifier where it runs (the scan process; this process too when
        ``classifier_here``) and touch every rule scanner once; blocking (seconds)."""
        if self.scan_process is not None:
            self.scan_process.start(wait_s=300)
        here = self.classifier_here()
        if here:
            self.engine.warm_up()
        for tenant in [None, *self.engine.policies.tenants()]:
            for direction in ("input", "output"):
                self.engine.scan("warm up: mail a@example.com", tenant, direction, classifier=here)

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

    def guards(self, direction: Direction) -> bool:
        """Whether scans of this direction ask the guard model (where the policy wants harm)."""
        return self.guard is not None and self.guard.wants(direction)

    async def scan(self, text: str, tenant: str | None, direction: Direction) -> "Verdict":
        """The whole verdict now, the flag-only scans included."""
        verdict, later = await self.scan_split(text, tenant, direction)
        return verdict if later is None else with_later(verdict, await later.findings())

    async def scan_split(self, text: str, tenant: str | None, direction: Direction) -> tuple["Verdict", "Later | None"]:
        """The verdict of what can change or stop the text (``SafetyEngine.split``), and the
        flag-only rest as a ``Later`` to run after the response (None when there is none)."""
        policy = self.policy(tenant)
        now, after = self.engine.split(
            policy, direction, classifier=self.classifies(direction), guard=self.guards(direction)
        )
        verdict = self.engine.decide(text, await self.hits(text, now, direction), policy, direction)
        if after.empty:
            return verdict, None
        if after.classify and self.later_batcher.queued >= self.max_backlog:
            # the classifier is that far behind; either way the work after responses, and the
            # records waiting for it, stay bounded
            if self.overload == "skip":
                return verdict, Later(self, text, policy, direction, after, unscanned="overload")
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
        if self.scan_process is not None:
            await asyncio.to_thread(self.scan_process.close)

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
