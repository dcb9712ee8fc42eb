"""Per-tenant deny lists: banned phrases, named topics (lists of phrases) and regexes."""

from __future__ import annotations

import re

from .policy import DenyListConfig
from .types import Category, Hit

SCANNER = "deny_list"


def _phrase_pattern(phrase: str) -> str:
    # Whole words, any run of whitespace between them, case-insensitive.
    words = [re.escape(w) for w in phrase.split()]
    body = r"\s+".join(words)
    left = r"\b" if phrase[:1].isalnum() else ""
    right = r"\b" if phrase[-1:].isalnum() else ""
    return f"{left}{body}{right}"


class DenyListScanner:
    """Compiled deny list of one tenant; every hit scores 1.0 (an exact policy match)."""

    name = SCANNER

    def __init__(self, config: DenyListConfig) -> None:
        self.config = config
        groups: list[tuple[str, str]] = [("phrase", p) for p in config.phrases if p.strip()]
        for topic, phrases in config.topics.items():
            groups.extend((f"topic:{topic}", p) for p in phrases if p.strip())
        self._phrases: list[tuple[str, re.Pattern[str]]] = []
        if groups:
            # One alternation per entity keeps the scan to a few passes however long the list.
            by_entity: dict[str, list[str]] = {}
            for entity, phrase in groups:
                by_entity.setdefault(entity, []).append(_phrase_pattern(phrase))
            for entity, pats in by_entity.items():
                pats.sort(key=len, reverse=True)  # longest first, so the longer phrase wins
                self._phrases.append((entity, re.compile("|".join(pats), re.IGNORECASE)))
        self._regexes = [re.compile(r, re.IGNORECASE) for r in config.regexes]
        longest = max((len(p) for _, p in groups), default=0)
        self.max_span = max(longest + 8, config.max_span if config.regexes else 0, 1)

    def scan(self, text: str) -> list[Hit]:
        hits = []
        for entity, rx in self._phrases:
            for m in rx.finditer(text):
                hits.append(Hit(Category.DENY_LIST, entity, SCANNER, m.start(), m.end(), 1.0))
        for rx in self._regexes:
            for m in rx.finditer(text):
                if m.end() > m.start():
                    hits.append(Hit(Category.DENY_LIST, "regex", SCANNER, m.start(), m.end(), 1.0))
        return hits
