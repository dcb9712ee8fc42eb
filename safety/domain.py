"""Is a text inside what the MiniLM classifier can judge? English prose of moderate length.

all-MiniLM-L6-v2 was trained on English sentence pairs; other languages reach it as
sub-word fragments, code and pasted data as punctuation soup, and a long text is cut to its
head and tail. On such text its scores carry little meaning (a Python function scored 0.99
"jailbreak" on the head this replaces), so the classifier *abstains* there: its hits may
flag, never block. The decision is made from the text alone, by three cheap tests, in order:

* ``code_or_data``: over 10 % of the non-space characters are code/markup punctuation, or
  at least 3 lines and half of them look like code, a table, a log or a diff;
* ``non_english``: under 90 % of the letters are ASCII, or (six words or more) under 12 % of
  the words are common English function words;
* ``long``: more tokens than the encoder reads (the middle of the text is not seen).

``None`` means in distribution.
"""

from __future__ import annotations

import re

Domain = str | None  # None, "non_english", "code_or_data" or "long"

_EN_WORDS = frozenset(
    "the a an and or but if of to in on at for with from by as is are was were be been being it its this that these "
    "those i you he she we they me him her us them my your his our their what which who whom how why when where can "
    "could would should will shall do does did not no have has had there here than then so about into over after "
    "before".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_CODE_PUNCT = frozenset("{}[]()<>=;:/\\|`#$_*\"'@%^~&+")
_STRUCTURED_LINE = re.compile(
    r"^\s*(?:[{}\[\]]|[-+@]{1,3}\s|\w[\w.-]*\s*[:=]\s|(?:def|class|fn|func|function|return|import|from|public|private|"
    r"const|let|var|if|for|while|select|insert|update|#include)\b|\d{4}-\d\d-\d\d|\||at\s+[\w.$]+\(|\S+(?:,\S*){2,}$|"
    r"[<\w-]+>|\s{4}|\t)",
    re.IGNORECASE,
)


def domain(text: str, tokens: int | None = None, max_tokens: int = 128) -> Domain:
    """Why the classifier should abstain on ``text``, or None when it is in distribution.
    ``tokens`` is the text's token count when known (the ``long`` test needs it)."""
    visible = [c for c in text if not c.isspace()]
    if visible and sum(c in _CODE_PUNCT for c in visible) > 0.10 * len(visible):
        return "code_or_data"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 3 and sum(bool(_STRUCTURED_LINE.match(ln)) for ln in lines) >= 0.5 * len(lines):
        return "code_or_data"
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isascii() for c in letters) < 0.9 * len(letters):
        return "non_english"
    words = _WORD.findall(text.lower())
    if len(words) >= 6 and sum(w in _EN_WORDS for w in words) < 0.12 * len(words):
        return "non_english"
    if tokens is not None and tokens > max_tokens - 2:
        return "long"
    return None
