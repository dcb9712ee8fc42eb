"""StreamRedactor: scan a streamed completion chunk by chunk and emit only settled text.

A scan runs the scanners over a window ending at the newest character. Text is emitted up to
a cut point that leaves ``hold`` characters unsent (the longest span a text-changing scanner
can match, context included), never splits a word (tokens such as keys, emails and JWTs
contain no whitespace, so their length does not matter), and never falls inside a span found
so far (a private key block without its END line runs to the end of the text and so holds
everything after its BEGIN line). Hence a span split across chunks is always complete before
any of it is released, and the concatenated output equals the one-shot redaction of the whole
text. ``finish()`` flushes the rest.

When to scan. A window reaches ``hold`` plus a lookback (``hold + CONTEXT``) beyond what it
can release, so scanning after every chunk of a token (~4 characters) rescans each character
some 80 times. A scan therefore waits until ``batch`` characters can be released (the first
one, for time to first token, runs as soon as anything can be); a scan that releases nothing
(a long word, an unterminated key block) waits until twice as much can. That keeps the cost
per KB within a small factor of one whole-text scan (``bench/safety_stream.py``), at the price
of holding back up to ``batch`` characters more than ``hold``. When scans run changes when
text goes out, not what goes out nor what is found (tests/safety/test_stream_equivalence.py).

Only scanners that can change the text (a redact or block rule in the tenant's output policy)
run on the windows; flag-only categories are scanned once over the whole text by ``finish()``,
so their findings equal the one-shot scan's.

Sentence scanners. The harm rules score a hit by its whole sentence and by quotation marks
around it ("he wrote '...' and was banned" flags where the bare words block), which can lie
beyond any hold-back. On the windows such a scanner only names candidates, each at the highest
score it could have; one that could act holds the text from its start, like an unterminated
key block. Its findings are judged once, by ``finish()`` on the whole text, as in one shot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .jsontext import redact_json
from .policy import TenantPolicy
from .spans import redact
from .types import Category, Direction, Hit
from .verdict import Finding, Verdict, strongest


class SpanScanner(Protocol):
    max_span: int

    def scan(self, text: str) -> list[Hit]: ...


@runtime_checkable
class SentenceScanner(SpanScanner, Protocol):
    """A span scanner whose scores depend on text beyond ``max_span``."""

    def candidates(self, text: str) -> list[Hit]: ...


class ScannerSource(Protocol):
    """What the redactor needs of the engine: its span scanners per category."""

    def local_scanners(
        self, policy: TenantPolicy, direction: Direction, categories: frozenset[Category] | None = None
    ) -> Iterable[SpanScanner]: ...


CONTEXT = 64  # left context the window keeps beyond the longest span (context words)
BATCH = 256  # releasable characters a scan waits for after the first release

_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")  # \s is exactly str.isspace


def word_start(text: str, lo: int, hi: int) -> int:
    """The largest ``i`` in ``[lo, hi]`` with ``i == lo`` or ``text[i - 1]`` whitespace."""
    m = _LAST_SPACE.search(text, lo, hi)
    return m.end() if m else lo


class StreamRedactor:
    """Feed chunks, get back what is safe to send now; ``finish()`` returns the rest."""

    def __init__(self, engine: ScannerSource, policy: TenantPolicy, *, json: bool = False, batch: int = BATCH) -> None:
        self._engine = engine
        self._policy = policy
        self._json = json  # the text is JSON (tool-call arguments): redactions keep it valid
        rules = policy.output
        self._acting = rules.acting()
        # Live scanners: those that can change the text, run on the windows.
        live = list(engine.local_scanners(policy, "output", self._acting))
        self._sentence = [s for s in live if isinstance(s, SentenceScanner)]
        self._live = [s for s in live if not isinstance(s, SentenceScanner)]
        # Flag-only categories cannot change the text: scanned once, on the whole text, at the end.
        self._flag_cats = rules.active() - self._acting
        self._late = engine.local_scanners(policy, "output", self._flag_cats)
        self.hold = max((s.max_span for s in live), default=0)
        self.batch = max(1, batch)
        self._need = 1  # releasable characters that make the next scan worth running
        self._lookback = self.hold + CONTEXT
        self._chunks: list[str] = []  # whole raw text, for the judged and flag-only passes at the end
        self._buf = ""  # raw text from absolute offset _base on
        self._base = 0
        self._emitted = 0  # absolute raw offset of everything already released
        self.findings: list[Finding] = []
        self._recorded: set[Finding] = set()  # the same, for the duplicate check
        self.blocked: Finding | None = None
        self._done = False
        self._parts: list[str] = []  # emitted text, for verdict()

    def raw_text(self) -> str:
        """Everything fed so far, unredacted (the offsets of ``findings`` index it)."""
        return "".join(self._chunks)

    @property
    def released(self) -> int:
        """Raw characters released so far (what ``feed`` and ``finish`` returned covers them)."""
        return self._emitted

    @property
    def pending(self) -> int:
        """Characters received but not yet released."""
        return self._base + len(self._buf) - self._emitted

    def feed(self, chunk: str) -> str:
        """Add a chunk; return the text that can be sent to the client now (maybe empty)."""
        if self._done or self.blocked is not None:
            return ""
        self._buf += chunk
        self._chunks.append(chunk)
        releasable = self._base + len(self._buf) - self.hold - self._emitted
        if releasable < self._need:
            return ""
        before = self._emitted
        out = self._step(final=False)
        self._need = self.batch if self._emitted > before else 2 * releasable
        return out

    def finish(self) -> str:
        """End of stream: release everything left, redacted."""
        if self._done:
            return ""
        if self.blocked is not None:
            out = ""
            self._record(f for f in self._judge(self._sentence, self._acting) if f.hit.end <= self._emitted)
        else:
            out = self._step(final=True)
        self._done = True
        self._record(self._judge(self._late, self._flag_cats))
        self.findings.sort(key=lambda f: (f.hit.start, f.hit.end))
        return out

    def _judge(self, scanners: Iterable[SpanScanner], categories: frozenset[Category]) -> list[Finding]:
        """Findings of some scanners on the whole text, in some categories."""
        text = self.raw_text()
        return self._decide([h for s in scanners for h in s.scan(text)], categories)

    def _decide(self, hits: Iterable[Hit], categories: frozenset[Category]) -> list[Finding]:
        rules = self._policy.output
        out = []
        for h in hits:
            if h.category in categories:
                action = rules.decide(h)
                if action is not None:
                    out.append(Finding(h, action))
        return out

    def _record(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            if f not in self._recorded:
                self._recorded.add(f)
                self.findings.append(f)

    def verdict(self) -> Verdict:
        """What happened over the whole stream (after ``finish``)."""
        v = Verdict(
            direction="output", tenant=self._policy.name, findings=list(self.findings), text="".join(self._parts)
        )
        if self.findings:
            v.action = strongest(self.findings).action  # type: ignore[assignment]
        if self.blocked is not None:
            v.action = "block"
            v.blocked_category = self.blocked.hit.category
        return v

    def _scan(self, final: bool) -> list[Finding]:
        """The window's findings. Before the end, a sentence scanner's candidates run to the end
        of the window, so one that could act holds the text from its start."""
        base, end = self._base, self._base + len(self._buf)
        hits = [
            Hit(h.category, h.entity, h.scanner, h.start + base, h.end + base, h.score)
            for s in self._live
            for h in s.scan(self._buf)
        ]
        if not final:
            hits += [
                Hit(h.category, h.entity, h.scanner, h.start + base, end, h.score)
                for s in self._sentence
                for h in s.candidates(self._buf)
            ]
        return self._decide(hits, self._acting)

    def _cut(self, end: int, acting: list[Finding]) -> int:
        """Where a non-final release ends: ``hold`` short of the end, at a word start, and
        neither inside an acting span nor after the start of one that runs to the end."""
        base, emitted = self._base, self._emitted
        cut = max(end - self.hold, emitted)
        while True:
            moved = False
            if cut < end:
                cut = base + word_start(self._buf, emitted - base, cut - base)
            for f in acting:
                if f.hit.start < cut < f.hit.end or (f.hit.start < cut and f.hit.end >= end):
                    cut = max(f.hit.start, emitted)
                    moved = True
            if cut <= emitted:
                return emitted
            if not moved:
                return cut

    def _step(self, final: bool) -> str:
        base, buf = self._base, self._buf
        end = base + len(buf)
        window = self._scan(final)
        judged = self._judge(self._sentence, self._acting) if final else []
        findings = window + judged
        acting = [f for f in findings if f.action in ("redact", "block")]
        cut = end if final else self._cut(end, acting)
        blocks = [f for f in acting if f.action == "block" and f.hit.start < cut and f.hit.end > self._emitted]
        if blocks:
            first = min(blocks, key=lambda f: f.hit.start)
            self.blocked = first
            cut = max(self._emitted, first.hit.start)
        start = self._emitted
        spans = [f.hit for f in acting if f.hit.end > start and f.hit.start < cut]
        if self._json and spans:
            raw = self.raw_text()
            if cut < end and (len(raw) - len(raw.rstrip("\\"))) % 2:
                # The text so far ends inside an escape (the backslash of "\\n"): jsontext would
                # not see the string literal it is in, and would redact in the wrong places.
                raw = raw[:-1]
            out = redact_json(raw, spans, start, cut)
        else:
            out = redact(buf[start - base : cut - base], spans, offset=start)
        # a window's finding is recorded in the step that releases its end; a judged one at the
        # end, if released; what a block kept back goes unrecorded
        self._record(f for f in window if start < f.hit.end <= cut or f is self.blocked)
        self._record(f for f in judged if f.hit.end <= cut or f is self.blocked)
        self._emitted = cut
        self._parts.append(out)
        self._trim()
        return out

    def _trim(self) -> None:
        """Drop text that no later scan needs, keeping a word-aligned lookback window."""
        target = self._emitted - self._lookback - self._base
        if target <= 0:
            return
        i = word_start(self._buf, 0, target)
        if i > 0:
            self._base += i
            self._buf = self._buf[i:]
