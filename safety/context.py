"""Context words near a match, the way Presidio raises a recognizer's score."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+")

LEFT_WINDOW = 40  # characters before a match searched for context words
RIGHT_WINDOW = 16  # characters after it (e.g. "416 60 039 office")


def words_near(text: str, start: int, end: int, left: int = LEFT_WINDOW, right: int = RIGHT_WINDOW) -> set[str]:
    """Lower-cased words within ``left`` chars before and ``right`` chars after ``text[start:end]``."""
    before = text[max(0, start - left) : start]
    after = text[end : end + right]
    if start - left > 0:
        # Drop a word cut in half by the window edge.
        before = before.split(None, 1)[-1] if " " in before else before
    return {w.lower() for w in _WORD.findall(before)} | {w.lower() for w in _WORD.findall(after)}


def has_context(text: str, start: int, end: int, vocabulary: frozenset[str], **window: int) -> bool:
    """True when any word of ``vocabulary`` appears near the match."""
    return not vocabulary.isdisjoint(words_near(text, start, end, **window))
