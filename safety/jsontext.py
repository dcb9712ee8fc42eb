"""Redaction inside JSON text (tool-call arguments, tool results) that keeps it valid JSON.

A hit's span is cut to the string literals it overlaps, widened so that it never splits an
escape sequence (``\\n``, ``\\u00e9``), and a number it touches is replaced whole by a quoted
marker. Structure (quotes, colons, brackets) is never replaced. Works on a prefix of a JSON
text too (a streamed argument), since literals are found from the start of the text.
"""

from __future__ import annotations

import json
import re
from typing import Sequence

from .spans import redact, redaction_label
from .types import Hit

_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.S)  # a prefix may end inside an escape
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,4}|.|\Z)", re.S)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _pieces(text: str, hits: Sequence[Hit]) -> list[tuple[int, int, Hit, bool]]:
    """(start, end, hit, quoted) replacements: parts of literals, and whole numbers (quoted)."""
    literals = [
        (m.start(), m.end(), m.group().endswith('"') and m.end() - m.start() > 1) for m in _LITERAL.finditer(text)
    ]
    out: list[tuple[int, int, Hit, bool]] = []
    pos = 0
    for a, b, _ in [*literals, (len(text), len(text), False)]:  # numbers lie between literals
        for m in _NUMBER.finditer(text, pos, a):
            out.extend((m.start(), m.end(), h, True) for h in hits if h.start < m.end() and h.end > m.start())
        pos = b
    for a, b, closed in literals:
        inner_a, inner_b = a + 1, b - 1 if closed else b
        for h in hits:
            s, e = max(h.start, inner_a), min(h.end, inner_b)
            if s >= e:
                continue
            for m in _ESCAPE.finditer(text, inner_a, inner_b):
                if m.start() < s < m.end():
                    s = m.start()
                if m.start() < e < m.end():
                    e = m.end()
            out.append((s, e, h, False))
    return out


def redact_json(text: str, hits: Sequence[Hit], start: int = 0, end: int | None = None) -> str:
    """``text[start:end]`` with the hits replaced by ``[REDACTED:TYPE]`` so that the JSON stays
    valid; ``text`` is everything from the start of the JSON, hits index it."""
    end = len(text) if end is None else end
    spans = sorted((max(s, start), min(e, end), h, q) for s, e, h, q in _pieces(text, hits) if e > start and s < end)
    out: list[str] = []
    pos = start
    i = 0
    while i < len(spans):
        s, e, best, quoted = spans[i]
        i += 1
        while i < len(spans) and spans[i][0] < e:  # merge overlapping pieces
            e = max(e, spans[i][1])
            best = spans[i][2] if spans[i][2].score > best.score else best
            i += 1
        s = max(s, pos)
        out.append(text[pos:s])
        marker = f"[REDACTED:{redaction_label(best)}]"
        out.append(f'"{marker}"' if quoted else marker)
        pos = max(pos, e)
    out.append(text[pos:end])
    return "".join(out)


def redact_json_text(text: str, hits: Sequence[Hit]) -> str:
    """A whole JSON text redacted and still valid JSON (plain redaction when it is not JSON)."""
    if not is_json(text):
        return redact(text, hits)
    out = redact_json(text, hits)
    return out if is_json(out) else json.dumps(redact(text, hits))  # never seen; still valid JSON
