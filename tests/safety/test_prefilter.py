"""Prefiltered patterns find exactly what the plain patterns find."""

from __future__ import annotations

import random
import re

import pytest

from safety import evaluate, harmful, injection, pii, secrets
from safety.prefilter import LiteralIndex, Prefiltered, fold, literal_prefixes

ALL = (
    injection.GATED.patterns
    + list(harmful.PREFILTERED.values())
    + list(secrets._PREFILTERED.values())
    + [pii._IPV4, pii._IPV6, pii._TITLE_RE, pii._INTRO_RE]
)


def spans(matches) -> list[tuple]:
    return [(m.span(), m.groups()) for m in matches]


def texts() -> list[str]:
    heldout = [x["text"] for x in evaluate.load_heldout()]
    rng = random.Random(7)
    words = " ".join(heldout).split()
    odd = [
        "İgnore",
        "ıgnore",
        "ſystem",
        "DISREGARD",
        "\u00a0previous\u2003instructions",
        "10.0.0.1",
        "fe80::1:2",
        "Mr.  Smith",
        "my name is Ann",
        "AKIAIOSFODNN7EXAMPLE",
        "password=hunter22",
        "\n",
        "“",
    ]
    fuzz = [
        " ".join(rng.choice(words) if rng.random() < 0.85 else rng.choice(odd) for _ in range(rng.randint(1, 40)))
        for _ in range(300)
    ]
    return heldout + evaluate.load_benign() + fuzz + [t.upper() for t in fuzz[:50]]


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str | None]]:
    return [(t, fold(t)) for t in texts()]


def test_every_rule_pattern_gets_a_prefilter():
    assert all(p.pre is not None for p in ALL)


def test_prefiltered_matches_equal_plain_matches(corpus):
    for p in ALL:
        for text, folded in corpus:
            assert spans(p.finditer(text, folded)) == spans(p.rx.finditer(text)), (p.rx.pattern[:60], text)


def test_candidates_from_one_literal_index_give_the_plain_matches(corpus):
    derived = [p for p in ALL if p.prefixes]
    index = LiteralIndex([p.prefixes for p in derived])
    for text, folded in corpus:
        if folded is None:
            continue
        found = index.find(folded)
        for p, candidates in zip(derived, found, strict=True):
            assert spans(p.finditer(text, folded, candidates)) == spans(p.rx.finditer(text)), (p.rx.pattern[:60], text)


def test_literal_index_reports_overlapping_and_nested_strings():
    index = LiteralIndex([["kill", "kill myself"], ["ill"], [], ["aa"]])
    found = index.find("i will kill myself aaa")
    assert sorted(found[0]) == [7, 7]  # both strings start there: a group may list a start twice
    assert sorted(found[1]) == [3, 8]
    assert found[2] == []
    assert sorted(found[3]) == [19, 20]  # overlapping occurrences


def test_prefixes_cover_case_whitespace_and_optional_parts():
    assert sorted(literal_prefixes(re.compile(r"\b(?:ignore|skip)\s+all", re.I))) == ["ignore", "skip  ", "skip a"]
    assert literal_prefixes(re.compile(r"(?:the )?cat")) == ["cat", "the ca"]
    assert literal_prefixes(re.compile(r"\d+x")) is None  # starts with a class too big to list
    assert literal_prefixes(re.compile(r"a?")) is None  # can match empty


def test_fold_keeps_offsets_and_gives_up_where_ignorecase_differs():
    assert fold("Ab\tC\u00a0d") == "ab c d"
    for odd in ("\u0130", "\u0131", "\u017f", "\u212a"):  # İ ı ſ K: IGNORECASE pairs them with ASCII letters
        assert fold(f"x{odd}y") is None
    rx = Prefiltered(re.compile(r"\bignore\b", re.I))
    assert [m.span() for m in rx.finditer("ıgnore it", fold("ıgnore it"))] == [(0, 6)]  # plain scan where fold gives up
