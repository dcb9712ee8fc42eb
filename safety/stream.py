"""StreamRedactor: scan a streamed completion chunk by chunk and emit only settled text.

After each chunk, the scanners run over a window ending at the newest character. Text is
emitted up to a cut point that leaves ``hold`` characters unsent (the longest span a
text-changing scanner can match, context included), never splits a word (tokens such as keys,
emails and JWTs contain no whitespace, so their length does not matter), and never falls
inside a span found so far (a private key block without its END line runs to the end of the
text and so holds everything after its BEGIN line). Hence a span split across chunks is
always complete before any of it is released, and the concatenated output equals the
one-shot redaction of the whole text. ``finish()`` flushes the rest.

Only scanners that can change the text (a redact or block rule in the tenant's output policy)
run on every chunk; flag-only categories are scanned once over the whole text by ``finish()``,
so their findings equal the one-shot scan's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .jsontext import redact_json
from .policy import TenantPolicy
from .spans import redact
from .types import HARM_CATEGORIES, Hit

if TYPE_CHECKING:
    from .engine import Finding, SafetyEngine, Verdict

CONTEXT = 64  # left context the window keeps beyond the longest span (context words)


class StreamRedactor:
    """Feed chunks, get back what is safe to send now; ``finish()`` returns the rest."""

    def __init__(self, engine: "SafetyEngine", policy: TenantPolicy, *, json: bool = False) -> None:
        from .harmful import HarmfulScanner

        self._engine = engine
        self._policy = policy
        self._json = json  # the text is JSON (tool-call arguments): redactions keep it valid
        rules = policy.output
        self._acting = rules.acting()
        # Live scanners: those that can change the text, run on a window after each chunk.
        live = engine.local_scanners(policy, "output", self._acting)
        harm = self._acting & set(HARM_CATEGORIES)
        self._live = [HarmfulScanner(harm) if s is engine.harmful else s for s in live]
        # Flag-only categories cannot change the text: scanned once, on the whole text, at the end.
        self._flag_cats = rules.active() - self._acting
        self._late = engine.local_scanners(policy, "output", self._flag_cats)
        self.hold = max((s.max_span for s in self._live), default=0)
        self._lookback = self.hold + CONTEXT
        self._chunks: list[str] = []  # whole raw text, for the final flag-only pass
        self._buf = ""  # raw text from absolute offset _base on
        self._base = 0
        self._emitted = 0  # absolute raw offset of everything already released
        self.findings: list[Finding] = []
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
        if self._base + len(self._buf) - self.hold <= self._emitted:
            return ""  # nothing could be released yet; skip the scan
        return self._step(final=False)

    def finish(self) -> str:
        """End of stream: release everything left, redacted."""
        if self._done:
            return ""
        if self.blocked is not None:
            self._done = True
            self._late_pass()
            return ""
        out = self._step(final=True)
        self._done = True
        self._late_pass()
        return out

    def _late_pass(self) -> None:
        from .engine import Finding

        if not self._late:
            return
        text = "".join(self._chunks)
        rules = self._policy.output
        for scanner in self._late:
            for h in scanner.scan(text):
                if h.category in self._flag_cats:
                    action = rules.decide(h)
                    if action is not None:
                        self.findings.append(Finding(h, action))
        self.findings.sort(key=lambda f: (f.hit.start, f.hit.end))

    def verdict(self) -> "Verdict":
        """What happened over the whole stream (after ``finish``)."""
        from .engine import Verdict

        v = Verdict(direction="output", tenant=self._policy.name, findings=list(self.findings), text="".join(self._parts))
        if self.findings:
            from .policy import STRENGTH

            strongest = max(self.findings, key=lambda f: (STRENGTH[f.action], f.hit.score))
            v.action = strongest.action  # type: ignore[assignment]
        if self.blocked is not None:
            v.action = "block"
            v.blocked_category = self.blocked.hit.category
        return v

    def _scan(self) -> list["Finding"]:
        from .engine import Finding

        rules = self._policy.output
        out = []
        for scanner in self._live:
            for h in scanner.scan(self._buf):
                if h.category not in self._acting:
                    continue
                h = Hit(h.category, h.entity, h.scanner, h.start + self._base, h.end + self._base, h.score)
                action = rules.decide(h)
                if action is not None:
                    out.append(Finding(h, action))
        return out

    def _step(self, final: bool) -> str:
        base, buf = self._base, self._buf
        end = base + len(buf)
        findings = self._scan()
        acting = [f for f in findings if f.action in ("redact", "block")]
        if final:
            cut = end
        else:
            cut = max(end - self.hold, self._emitted)
            moved = True
            while moved:
                moved = False
                while cut > self._emitted and not buf[cut - base - 1].isspace() and cut < end:
                    cut -= 1  # never split a word
                for f in acting:
                    if f.hit.start < cut < f.hit.end or (f.hit.start < cut and f.hit.end >= end and not final):
                        cut = max(f.hit.start, self._emitted)
                        moved = True
                if cut <= self._emitted:
                    cut = self._emitted
                    break
        blocks = [f for f in acting if f.action == "block" and f.hit.start < cut and f.hit.end > self._emitted]
        if blocks:
            first = min(blocks, key=lambda f: f.hit.start)
            self.blocked = first
            cut = max(self._emitted, first.hit.start)
        start = self._emitted
        spans = [f.hit for f in acting if f.hit.end > start and f.hit.start < cut]
        if self._json and spans:
            out = redact_json(self.raw_text(), spans, start, cut)
        else:
            out = redact(buf[start - base : cut - base], spans, offset=start)
        for f in findings:  # each finding is recorded in the step that releases its end
            if start < f.hit.end <= cut or (f is self.blocked):
                if f not in self.findings:
                    self.findings.append(f)
        self._emitted = cut
        self._parts.append(out)
        self._trim()
        return out

    def _trim(self) -> None:
        """Drop text that no later scan needs, keeping a word-aligned lookback window."""
        target = self._emitted - self._lookback - self._base
        if target <= 0:
            return
        i = target
        while i > 0 and not self._buf[i - 1].isspace():
            i -= 1
        if i > 0:
            self._base += i
            self._buf = self._buf[i:]
