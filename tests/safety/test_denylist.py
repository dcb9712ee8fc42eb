from __future__ import annotations

from safety.denylist import DenyListScanner
from safety.policy import DenyListConfig
from safety.types import Category


def scan(cfg: dict, text: str) -> list[tuple[str, str]]:
    return [(h.entity, text[h.start : h.end]) for h in DenyListScanner(DenyListConfig(**cfg)).scan(text)]


def test_phrase_case_insensitive_whole_words():
    cfg = {"phrases": ["project falcon"]}
    assert scan(cfg, "News about PROJECT   Falcon leaked") == [("phrase", "PROJECT   Falcon")]
    assert scan(cfg, "projectfalcon and project falconry") == []


def test_topics_and_regexes():
    cfg = {"topics": {"competitors": ["Globex", "Initech Corp"]}, "regexes": [r"\bTICKET-\d{4}\b"]}
    hits = scan(cfg, "Compare us with initech corp and see TICKET-1234")
    assert ("topic:competitors", "initech corp") in hits
    assert ("regex", "TICKET-1234") in hits


def test_hits_are_deny_list_category_with_full_score():
    hits = DenyListScanner(DenyListConfig(phrases=["x-ray"])).scan("an X-ray image")
    assert hits and hits[0].category is Category.DENY_LIST and hits[0].score == 1.0


def test_max_span_covers_longest_phrase():
    scanner = DenyListScanner(DenyListConfig(phrases=["a" * 100]))
    assert scanner.max_span >= 100
