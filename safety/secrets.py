"""Secrets scanner: vendor API keys and tokens, private key blocks, JWTs, high-entropy strings."""

from __future__ import annotations

import base64
import binascii
import re

from .checks import class_transitions, shannon_entropy
from .prefilter import Prefiltered, fold
from .spans import resolve_overlaps
from .types import Category, Hit

SCANNER = "secrets"

# (entity, pattern, score, group holding the secret)
PATTERNS: tuple[tuple[str, re.Pattern[str], float, int], ...] = (
    (
        "AWS_ACCESS_KEY",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"),
        0.95,
        0,
    ),
    (
        "AWS_SECRET_KEY",
        re.compile(r"(?i)aws.{0,24}?(?:secret|private).{0,24}?['\"=:\s]+([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
        0.9,
        1,
    ),
    ("GITHUB_TOKEN", re.compile(r"(?<![\w])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}(?![\w])"), 0.95, 0),
    ("GITHUB_TOKEN", re.compile(r"(?<![\w])github_pat_[A-Za-z0-9_]{60,255}(?![\w])"), 0.95, 0),
    ("SLACK_TOKEN", re.compile(r"(?<![\w])xox[abposr]-(?:[A-Za-z0-9]+-){1,4}[A-Za-z0-9]{4,}(?![\w-])"), 0.95, 0),
    (
        "SLACK_WEBHOOK",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]{20,120}"),
        0.9,
        0,
    ),
    (
        "OPENAI_API_KEY",
        re.compile(r"(?<![\w-])sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_\-]{20,200}(?![\w-])"),
        0.9,
        0,
    ),
    (
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
        1.0,
        0,
    ),
    ("JWT", re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}(?![\w-])"), 0.9, 0),
    (
        "PASSWORD",
        re.compile(
            r"(?i)(?<![\w])(?:password|passwd|pwd|passphrase|api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)"
            r"[\"']?\s{0,3}(?:=|:|=>)\s{0,3}[\"']?([^\s\"'`,;()<>{}\[\]]{6,128})"
        ),
        0.7,
        1,
    ),
)
# Values after "password =" that are code or placeholders, not secrets.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:\*+|x+|\.\.\.|none|null|nil|true|false|undefined|changeme|password|secret|example|"
    r"your[_-]?\w*|<\w+>|\$\{?\w+\}?|%\(?\w+\)?s?|os\.environ.*|getenv.*|env\..*|process\.env.*|settings\..*|config\..*|self\..*|"
    r"input|prompt|required|optional|string|str|int)$"
)

_PREFILTERED = {id(rx): Prefiltered(rx) for _, rx, _, _ in PATTERNS}

_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{20,}={0,2}(?![A-Za-z0-9+/=_\-])")
_HEX_RE = re.compile(r"^[0-9a-fA-F\-]+$")


def _decodes_to_text(token: str) -> bool:
    """True when a base64 token decodes to readable text (an encoded message, not a key)."""
    t = token.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(t + "=" * (-len(t) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) < 8:
        return False
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(c.isprintable() or c in "\n\t" for c in s)
    return printable / len(s) > 0.95 and " " in s


def entropy_threshold(length: int) -> float:
    """Bits per character a random-looking token of this length must reach.

    Random base62 strings average about 4.0 bits at 20 chars and 4.8 at 40; the cap keeps
    long tokens from needing near-maximal entropy.
    """
    import math

    return min(4.3, 0.8 * math.log2(length))


def high_entropy_tokens(text: str) -> list[Hit]:
    """Tokens that look like random keys: mixed classes, high entropy, frequent class switches."""
    out = []
    for m in _TOKEN_RE.finditer(text):
        tok = m.group().rstrip("=")
        if len(tok) < 20 or _HEX_RE.match(tok):  # hex ids, hashes, UUIDs are not flagged
            continue
        has_lower = any(c.islower() for c in tok)
        has_upper = any(c.isupper() for c in tok)
        has_digit = any(c.isdigit() for c in tok)
        if not (has_lower and has_upper and has_digit):
            continue
        if "/" in tok and all(part.isalpha() for part in tok.split("/") if part):
            continue  # a path such as foo/Bar/baz
        ent = shannon_entropy(tok)
        if ent < entropy_threshold(len(tok)) or class_transitions(tok) < 0.35 or _decodes_to_text(tok):
            continue
        score = min(0.85, 0.6 + 0.15 * (ent - entropy_threshold(len(tok))))
        out.append(
            Hit(Category.SECRET, "HIGH_ENTROPY_STRING", SCANNER, m.start(), m.start() + len(tok), round(score, 3))
        )
    return out


class SecretsScanner:
    """Finds credentials; vendor patterns win over the generic entropy detector on overlap."""

    name = SCANNER
    max_span = 64  # whitespace-containing spans ("password = x") plus margin; BEGIN blocks held apart
    unbounded_start = "-----BEGIN"  # a private key block may run until its END line

    def __init__(self, entropy: bool = True) -> None:
        self.entropy = entropy

    def scan(self, text: str) -> list[Hit]:
        hits: list[Hit] = []
        folded = fold(text)
        for entity, rx, score, group in PATTERNS:
            for m in _PREFILTERED[id(rx)].finditer(text, folded):
                start, end = m.span(group)
                if entity == "PASSWORD" and _PLACEHOLDER.match(m.group(1)):
                    continue
                if entity == "OPENAI_API_KEY" and not any(c.isdigit() for c in m.group()):
                    continue
                hits.append(Hit(Category.SECRET, entity, SCANNER, start, end, score))
        if self.entropy:
            hits.extend(high_entropy_tokens(text))
        return resolve_overlaps(hits)
