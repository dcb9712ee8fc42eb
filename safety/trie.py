"""Regex alternations factored into a character trie.

Python's ``re`` tries each branch of ``(?:how to|how do i|help me|...)`` in turn at every
position; a trie-shaped pattern (``h(?:ow(?:\\s+to|\\s+do\\s+i)|elp\\s+me)``) rejects most
positions on the first character, which makes long phrase lists cheap.
"""

from __future__ import annotations

import re
from typing import Iterable

_REGEXY = re.compile(r"[\[\]()?*+{}|\\^$]")


def _emit(node: dict, literal: bool = False) -> str:
    end = node.get("", False)
    branches = []
    for ch in sorted(k for k in node if k != ""):
        piece = r"\s+" if ch == " " and not literal else re.escape(ch)
        branches.append(piece + _emit(node[ch], literal))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if end:
        # An optional tail: "(?:...)?" needs a group even when there is a single branch.
        return f"(?:{body})?" if len(branches) > 1 or len(branches[0]) > 1 else f"{body}?"
    return body


def phrase_alt(phrases: Iterable[str], literal: bool = False) -> str:
    """Non-capturing alternation matching any phrase (spaces match any whitespace run).

    Phrases that already contain regex syntax are kept as separate branches, unless
    ``literal`` says every phrase is plain text.
    """
    trie: dict = {}
    extra = []
    for p in phrases:
        p = p.lower() if literal else p.strip().lower()
        if not p:
            continue
        if not literal and _REGEXY.search(p):
            extra.append(p.replace(" ", r"\s+"))
            continue
        node = trie
        for ch in p if literal else re.sub(r"\s+", " ", p):
            node = node.setdefault(ch, {})
        node[""] = True
    parts = ([_emit(trie, literal)] if trie else []) + extra
    return "(?:" + "|".join(parts) + ")"
