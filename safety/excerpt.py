"""Excerpts of scanned text for the ledger and the review queue: redacted, never raw.

Without the tenant's opt-in to storing content, an excerpt is the hit's redaction marker
alone (``[REDACTED:EMAIL_ADDRESS]``), so no prompt or completion text is stored. With it, a
short window around the hit is kept in which every PII, secret and deny-list span is
replaced: the spans the policy acted on, the hit itself when it is one of those, and whatever
the PII and secrets scanners find in the window now (whatever the tenant's policy says), so a
flag-only or disabled category cannot leak an address or a key into the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

from .spans import redact, redaction_label
from .types import Category, Hit
from .verdict import Finding

if TYPE_CHECKING:
    from .engine import SafetyEngine

CONTEXT = 40  # characters kept on each side of the hit
MAX_SPAN = 120  # characters of a long hit (a whole-text classifier hit) that are kept
MARGIN = 64  # characters rescanned beyond each window
SENSITIVE = (Category.PII, Category.SECRET, Category.DENY_LIST)


def marker(hit: Hit) -> str:
    return f"[REDACTED:{redaction_label(hit)}]"


def _window(text: str, hit: Hit) -> tuple[int, int]:
    return max(0, hit.start - CONTEXT), min(len(text), min(hit.end, hit.start + MAX_SPAN) + CONTEXT)


def excerpts(engine: "SafetyEngine", text: str, findings: Sequence["Finding"], *, with_context: bool) -> list[str]:
    """The stored excerpt of each finding's hit (offsets index ``text``).

    The PII and secrets scanners run once over the merged windows (plus a margin, so a span
    cut by a window's edge is still found), not once per hit.
    """
    if not with_context:
        return [marker(f.hit) for f in findings]
    windows = [_window(text, f.hit) for f in findings]
    regions: list[list[int]] = []
    for lo, hi in sorted((max(0, a - MARGIN), min(len(text), b + MARGIN)) for a, b in windows):
        if regions and lo <= regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], hi)
        else:
            regions.append([lo, hi])
    found: list[Hit] = []
    for lo, hi in regions:
        region = text[lo:hi]
        for scanner in (engine.pii, engine.secrets):
            found.extend(
                Hit(h.category, h.entity, h.scanner, h.start + lo, h.end + lo, h.score) for h in scanner.scan(region)
            )
    acted = [f.hit for f in findings if f.hit.category in SENSITIVE or f.action in ("redact", "block")]
    out = []
    for f, (start, end) in zip(findings, windows, strict=True):
        spans = acted + found + ([f.hit] if f.hit.category in SENSITIVE else [])
        # redact() clips a span that crosses the window's edge and still replaces its fragment.
        spans = [h for h in spans if h.end > start and h.start < end]
        body = redact(text[start:end], spans, offset=start)
        out.append(("…" if start > 0 else "") + body + ("…" if end < len(text) else ""))
    return out


def excerpt(engine: "SafetyEngine", text: str, hit: Hit, findings: Iterable[Finding], *, with_context: bool) -> str:
    """The stored excerpt of one hit in ``text`` (see ``excerpts``)."""
    findings = list(findings)
    own = next((f for f in findings if f.hit == hit), None) or Finding(hit, "flag")
    return excerpts(engine, text, [own, *(f for f in findings if f is not own)], with_context=with_context)[0]


def context_cost(text: str, findings: Sequence["Finding"]) -> int:
    """Characters ``excerpts`` would rescan (to decide whether it runs in a thread)."""
    return min(len(text), len(findings) * (2 * (CONTEXT + MARGIN) + MAX_SPAN))
