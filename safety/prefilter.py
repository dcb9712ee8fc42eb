"""Literal-prefix prefilters: the same matches as ``pattern.finditer(text)``, found faster.

Python's ``re`` tries a pattern at every position unless it starts with a literal or a
character class; a leading ``\\b``, lookbehind or case-insensitive word list defeats that, so
each rule regex costs 15–90 µs per KB even where it finds nothing. ``Prefiltered`` works out,
from the parsed pattern, the strings every match must start with (``ignore``, ``disregard``,
``akia``...), finds those with one literal search, and runs the full pattern only there
(``pattern.match(text, pos)`` sees the text before ``pos``, so lookbehinds and ``\\b`` behave
as in a full scan). Matches are exactly those of ``finditer``: no match can start where no
prefix does, and candidates are tried left to right.

Prefixes are searched in folded text (``fold``): lower-cased, every whitespace character a
space, so that ``\\s`` and case-insensitive letters become plain literals. A candidate found
there is only a place to try the real pattern, so folding may over-report but must never
miss: it is used only where each character lower-cases to one character and
``re.IGNORECASE`` pairs no character with a letter that its lower case is not (``İ ı ſ K``);
other texts get the full pattern.

A scanner with many rules finds their gate words and prefixes in one pass (``GatedPatterns``,
over an Aho-Corasick ``LiteralIndex``) and hands each rule its candidate starts; one regex
search per rule cost 5–12 µs per KB even where it found nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import ahocorasick

from .trie import phrase_alt

if TYPE_CHECKING:  # typeshed types re's private modules under their deprecated public aliases
    import sre_constants as C
    import sre_parse as _parser
else:
    from re import _constants as C  # the parsed-pattern opcodes (re's own, stable since 3.11)
    from re import _parser

MAX_PREFIX = 6  # characters of each prefix (longer prefixes, fewer false candidates)
MAX_PREFIXES = 3000
MAX_CLASS = 12  # a character class with up to this many members is expanded into literals
MAX_MISSES = 12  # candidates that failed before one full pass is cheaper than more of them

_UNSAFE_FOLD = re.compile("[\u0130\u0131\u017f\u212a]")
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # what \s matches
_ASCII_SPACE = str.maketrans({c: " " for c in _SPACES if c.isascii()})
_ANY_SPACE = str.maketrans({c: " " for c in _SPACES})


def fold(text: str) -> str | None:
    """Text lower-cased, whitespace as spaces, same offsets; None where that is not exact."""
    if text.isascii():
        return text.lower().translate(_ASCII_SPACE)
    lower = text.lower()
    if len(lower) != len(text) or _UNSAFE_FOLD.search(text):
        return None
    return lower.translate(_ANY_SPACE)


class _Unknown(Exception):
    """The pattern goes on with something that is not a short list of literals."""


def _char(code: int, icase: bool) -> str:
    ch = chr(code)
    if ch.isspace():
        return " "
    if icase and not ch.isascii() and ch.lower() != ch.upper():
        raise _Unknown  # a non-ASCII cased letter: its IGNORECASE partners are not just lower()
    return ch.lower()


def _class(items: list, icase: bool) -> set[str]:
    chars: set[str] = set()
    for op, av in items:
        if op is C.LITERAL:
            chars.add(_char(av, icase))
        elif op is C.RANGE and av[1] - av[0] < MAX_CLASS:
            chars.update(_char(c, icase) for c in range(av[0], av[1] + 1))
        elif op is C.CATEGORY and av in (C.CATEGORY_SPACE, C.CATEGORY_UNI_SPACE):
            chars.add(" ")
        else:  # NEGATE, other categories (\d, \w, ...), big ranges
            raise _Unknown
        if len(chars) > MAX_CLASS:
            raise _Unknown
    return chars


def _item(op, av, icase: bool, flags: int) -> set[tuple[str, bool]]:
    """(prefix, whole) pairs one parsed item can start with; ``whole`` when it is all of it."""
    if op is C.LITERAL:
        return {(_char(av, icase), True)}
    if op is C.IN:
        return {(c, True) for c in _class(av, icase)}
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
        return {("", True)}  # zero-width: a condition, not a character
    if op is C.SUBPATTERN:
        _group, add, delete, sub = av
        f = (flags | add) & ~delete
        return _seq(sub.data, bool(f & re.IGNORECASE), f)
    if op is C.BRANCH:
        out: set[tuple[str, bool]] = set()
        for alt in av[1]:
            out |= _seq(alt.data, icase, flags)
        return out
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        lo, hi, sub = av
        if hi == 1:  # X? or X
            return _seq(sub.data, icase, flags) | ({("", True)} if lo == 0 else set())
        if lo == 0:  # absent, or a first repeat that more may follow
            return {("", True)} | {(s, False) for s, _ in _seq(sub.data, icase, flags)}
        # X{lo,hi} is X then X{lo-1,hi-1}: "\s+want" starts " want" or "  "
        rest = (op, (lo - 1, hi if hi is C.MAXREPEAT else hi - 1, sub))
        return _seq([*sub.data, rest], icase, flags)
    raise _Unknown  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, ...


def _seq(items, icase: bool, flags: int) -> set[tuple[str, bool]]:
    open_: set[str] = {""}  # prefixes that the following items extend
    done: set[str] = set()  # prefixes that end here (long enough, or what follows is unknown)
    for op, av in items:
        try:
            starts = _item(op, av, icase, flags)
        except _Unknown:
            done |= open_
            open_ = set()
            break
        nxt: set[str] = set()
        for s, whole in starts:
            for p in open_:
                t = p + s
                if len(t) >= MAX_PREFIX or not whole:
                    done.add(t[:MAX_PREFIX])
                else:
                    nxt.add(t)
        open_ = nxt
        if not open_:
            break
        if len(open_) + len(done) > MAX_PREFIXES:
            raise _Unknown
    return {(s, False) for s in done} | {(s, True) for s in open_}


def literal_prefixes(rx: re.Pattern[str]) -> list[str] | None:
    """Folded strings one of which starts every match of ``rx``, or None when there are none."""
    try:
        parsed = _parser.parse(rx.pattern, rx.flags)
        prefixes = {s for s, _ in _seq(parsed.data, bool(rx.flags & re.IGNORECASE), rx.flags)}
    except (_Unknown, RecursionError):
        return None
    if not prefixes or "" in prefixes:
        return None
    minimal: list[str] = []  # a prefix with a shorter one in the set adds no candidate
    for p in sorted(prefixes, key=len):
        if not any(p.startswith(q) for q in minimal):
            minimal.append(p)
    return minimal


class Prefiltered:
    """A compiled pattern and its prefilter; ``finditer`` returns what ``rx.finditer`` would.

    ``starts``, where given, replaces the derived prefixes: a pattern searched in the raw text
    that matches wherever a match of ``rx`` can start (``\\d{1,3}\\.\\d`` for an IPv4 address).
    """

    __slots__ = ("rx", "pre", "raw", "prefixes")

    def __init__(self, rx: re.Pattern[str], starts: re.Pattern[str] | None = None) -> None:
        self.rx = rx
        self.raw = starts is not None
        self.prefixes: list[str] | None = None if self.raw else literal_prefixes(rx)
        if starts is None and self.prefixes:
            starts = re.compile(phrase_alt(self.prefixes, literal=True))
        self.pre = starts

    def finditer(
        self, text: str, folded: str | None = None, candidates: list[int] | None = None
    ) -> list[re.Match[str]]:
        """Matches of the pattern in ``text``; ``folded`` is ``fold(text)``, made once per text.

        ``candidates``: where this pattern's prefixes occur in ``folded``, as a ``LiteralIndex``
        over ``self.prefixes`` found them (any order); then no prefilter search is run.
        """
        if candidates is not None and self.prefixes and folded is not None:
            return self._try(text, sorted(candidates) if len(candidates) > 1 else candidates)
        hay = text if self.raw else folded
        if self.pre is None or hay is None:
            return list(self.rx.finditer(text))
        search, match = self.pre.search, self.rx.match
        out: list[re.Match[str]] = []
        pos = misses = 0
        while (c := search(hay, pos)) is not None:
            start = c.start()
            m = match(text, start)
            if m is None:
                misses += 1
                if misses > MAX_MISSES:  # dense candidates: one ordinary pass is cheaper
                    out.extend(self.rx.finditer(text, start + 1))
                    break
                pos = start + 1
                continue
            out.append(m)
            pos = m.end()  # every match starts with a non-empty prefix, so it is not empty
        return out

    def _try(self, text: str, starts: list[int]) -> list[re.Match[str]]:
        """The pattern tried at each candidate start, left to right, as ``finditer`` would."""
        match = self.rx.match
        out = []
        pos = 0
        for start in starts:
            if start >= pos and (m := match(text, start)) is not None:
                out.append(m)
                pos = m.end()
        return out


class LiteralIndex:
    """Where the strings of each of many groups occur in a text, found in one pass.

    One Aho-Corasick automaton (pyahocorasick, in C) over every string of every group; a
    group is, say, one rule's gate words or one ``Prefiltered`` pattern's prefixes.
    """

    def __init__(self, groups: Sequence[Iterable[str]]) -> None:
        owners: dict[str, set[int]] = {}
        for i, strings in enumerate(groups):
            for s in strings:
                owners.setdefault(s, set()).add(i)
        self.size = len(groups)
        self._automaton = ahocorasick.Automaton()
        for s, ids in owners.items():
            self._automaton.add_word(s, (len(s) - 1, tuple(sorted(ids))))
        self._empty = not owners
        if owners:
            self._automaton.make_automaton()

    def find(self, hay: str) -> list[list[int]]:
        """Per group, the start offsets in ``hay`` where one of its strings occurs (unsorted)."""
        out: list[list[int]] = [[] for _ in range(self.size)]
        if self._empty:
            return out
        for end, (back, ids) in self._automaton.iter(hay):
            for i in ids:
                out[i].append(end - back)
        return out


class GatedPatterns:
    """Patterns that each run only where one of their gate words occurs.

    One ``LiteralIndex`` pass over the folded text finds every pattern's gate words and its
    candidate starts; ``gates[i]`` are lower-case substrings one of which any text that
    ``patterns[i]`` matches contains.
    """

    def __init__(self, patterns: Sequence[Prefiltered], gates: Sequence[Iterable[str]]) -> None:
        assert len(patterns) == len(gates)
        self.patterns = list(patterns)
        self._index = LiteralIndex([*gates, *(p.prefixes or () for p in self.patterns)])

    def matches(self, text: str, which: Iterable[int] | None = None) -> Iterator[tuple[int, re.Match[str]]]:
        """(pattern index, match) for the patterns ``which`` (default all), in that order."""
        folded = fold(text)
        found = self._index.find(folded if folded is not None else text.lower())
        n = len(self.patterns)
        for i in range(n) if which is None else which:
            if found[i]:
                for m in self.patterns[i].finditer(text, folded, found[n + i]):
                    yield i, m
