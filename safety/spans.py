"""Span helpers: overlap resolution and redaction."""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable, Sequence

from .types import Category, Hit


def resolve_overlaps(hits: Iterable[Hit]) -> list[Hit]:
    """Keep the best of overlapping hits (higher score, then longer), sorted by start."""
    ranked = sorted(hits, key=lambda h: (-h.score, -(h.end - h.start), h.start))
    if any(h.end <= h.start for h in ranked):  # empty spans: the plain pairwise check
        kept: list[Hit] = []
        for h in ranked:
            if all(h.end <= k.start or h.start >= k.end for k in kept):
                kept.append(h)
        return sorted(kept, key=lambda h: h.start)
    # Kept spans never overlap, so sorted by start their ends rise too: a new span overlaps
    # one of them only if it overlaps the last one starting before its end.
    starts: list[int] = []
    ends: list[int] = []
    by_start: list[Hit] = []
    for h in ranked:
        i = bisect_left(starts, h.end)
        if i and ends[i - 1] > h.start:
            continue
        starts.insert(i, h.start)
        ends.insert(i, h.end)
        by_start.insert(i, h)
    return by_start


def redaction_label(hit: Hit) -> str:
    """TYPE in ``[REDACTED:TYPE]``: the entity for PII and secrets, else the category."""
    if hit.category in (Category.PII, Category.SECRET):
        return hit.entity.upper()
    return hit.category.value.upper()


def redact(text: str, hits: Sequence[Hit], offset: int = 0) -> str:
    """Replace each hit's span with ``[REDACTED:TYPE]``; overlapping spans merge into one.

    ``offset`` is the absolute position of ``text[0]`` when hits carry absolute offsets.
    """
    spans = sorted(
        ((max(h.start - offset, 0), min(h.end - offset, len(text)), h) for h in hits if h.end > h.start),
        key=lambda s: (s[0], -s[1]),
    )
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(spans):
        start, end, best = spans[i]
        i += 1
        while i < len(spans) and spans[i][0] < end:  # merge overlapping spans
            end = max(end, spans[i][1])
            if spans[i][2].score > best.score:
                best = spans[i][2]
            i += 1
        if start >= len(text) or end <= 0:
            continue
        out.append(text[pos:start])
        out.append(f"[REDACTED:{redaction_label(best)}]")
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)
