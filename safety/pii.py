"""PII scanner: email, phone, credit card, IBAN, US SSN, IP address and person names.

Regex candidates are validated (Luhn, mod-97, SSA rules, ``ipaddress``) and scored; words
near a match (Presidio's "context") raise the score. Scores below the policy threshold
(0.5 by default) are what a bare, context-free weak match gets.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import lru_cache
from importlib import resources

from .checks import IBAN_LENGTHS, iban_ok, luhn_ok, ssn_ok
from .context import has_context
from .prefilter import Prefiltered, fold
from .spans import resolve_overlaps
from .types import Category, Hit

SCANNER = "pii"

EMAIL_RE = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,63})@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)
CARD_RE = re.compile(r"\d(?<![\w.\-]\d)(?:[ \-]?\d){11,18}(?![\w]|[.\-]\d)")
PHONE_RE = re.compile(
    r"(?<![\w+.\-/])"
    r"(?:(?:\+|00)\d{1,3}[ .\-]?)?"
    r"(?:\(\d{1,4}\)[ .\-]?)?"
    r"\d{1,10}(?:[ .\-]\d{1,8}){0,5}"
    r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?"
    r"(?![\w]|[.\-/]\d)"
)
NANP_RE = re.compile(r"^(?:\+?1[ .\-]?)?(?:\(\d{3}\)[ ]?|\d{3}[.\-])\d{3}[.\-]\d{4}(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?$")
DATE_RE = re.compile(r"^(?:\d{4}[.\-/]\d{1,2}[.\-/]\d{1,2}|\d{1,2}[.\-/]\d{1,2}[.\-/]\d{4})")
SSN_RE = re.compile(r"(\d(?<![\w\-]\d)\d{2})([\- ]?)(\d{2})\2(\d{4})(?![\w]|-\d)")
IBAN_START_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})(?=[ ]?[A-Za-z0-9])")
IPV4_RE = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)
IPV6_RE = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)?(?![\w:])")
# Capitalized words only (Latin, Greek, Cyrillic capitals); the rest cannot start a name.
CAP_WORD_RE = re.compile(r"[A-ZÀ-ÖØ-ÞĀ-ɏΑ-ΩА-Я](?<![^\W\d_].)[^\W\d_]*(?:['’\-][^\W\d_]+)*")

PHONE_CONTEXT = frozenset(
    "phone telephone tel tele call calling called mobile cell cellphone fax desk office contact reach "
    "text sms whatsapp dial ring message messages landline hotline answering registered".split()
)
CARD_CONTEXT = frozenset(
    "card cards credit debit visa mastercard amex maestro discover jcb diners cc payment pay charge "
    "billing billed expiring expires cvv withdraw atm".split()
)
SSN_CONTEXT = frozenset("ssn ssns social security ss taxpayer tin".split())
IBAN_CONTEXT = frozenset("iban account bank transfer wire sepa swift bic".split())
IP_CONTEXT = frozenset("ip ips ipv4 ipv6 address addr host server client browse connect connection firewall".split())
IP_NEGATIVE = frozenset("version v ver release build oid snmp".split())
NAME_CONTEXT = frozenset(
    "name named mr mrs ms miss dr prof dear hi hello hey contact called signed regards sincerely "
    "attn customer patient employee author sender recipient wife husband son daughter mother father "
    "brother sister friend colleague manager".split()
)
# Capitalized words that follow "My name is" etc. but are not names.
NOT_NAME = frozenset(
    "i im i'm a an the this that these those it its he she they we you me my your our his her their "
    "is am are was were be been and or but not no yes so of in on at to for with by from as if then "
    "here there what who when where why how all any some each every very also just only please thanks "
    "thank hello hi dear sir madam team support customer service monday tuesday wednesday thursday "
    "friday saturday sunday january february march april may june july august september october "
    "november december ok okay".split()
)
# Capitalized words after a first name that make it a street, place or company, not a person.
NOT_SURNAME = frozenset(
    "street st road rd drive dr avenue ave lane ln boulevard blvd way court ct place pl park square "
    "terrace crescent close highway hwy bypass flat flats union extension extensions circle plaza "
    "gardens heights hills hill view vue point crossing junction mall center centre inc ltd llc co "
    "corp corporation company group bank lines investments orchestra band university college school "
    "hospital hotel royal island islands river lake mountain valley county city town village empire "
    "kingdom republic convention problem ring war treaty act law theorem effect syndrome disease award "
    "prize cup league bridge tower palace castle church cathedral station airport museum institute "
    "foundation day festival".split()
)
# First names that are everyday English words; they need more evidence before they count.
COMMON_WORD_NAMES = frozenset(
    "will may june april august mark bill rose grant art hope joy faith ray dean don jack frank lane "
    "page rich summer chance chase case drew guy hunter major max miles norman pat penny price reed "
    "rod sandy sky sterling victor wade ward west young king long white black green brown gray grey "
    "love an in so my ok son star sun dawn eve ivy holly iris daisy violet lily jade ruby amber pearl "
    "crystal olive heather hazel ginger honey candy cherry autumn winter spring river rain storm clay "
    "cliff dale glen forest wood brook cole buck bud chip dusty rusty sunny merry early christian "
    "angel destiny trinity harmony melody charity patience prudence grace mercy constance justice "
    "liberty honor else sale ta la le de du van von al ali lou sue sol job guy gene jean joe bob ben "
    "tom sam jim ed al lee rich rob ron roy sid ty val vi wes will ann anna bea bo buster carol "
    "carter chuck colt cricket curtis dane dash deal dee della dick dot duke earl echo ellis ernest "
    "fern fred gale gay gordon hall harley hank harmony herb hollis homer jay jewel kit lark lavern "
    "lee lincoln london lord lucky luther mack marshall mason miller misty moses nick noble oliver "
    "paris pierce porter queen rocky royal sage sandy shelby shell sharon skip stone tanner tucker "
    "tyler van wallace warren wayne wiley willow york".split()
)


@lru_cache(maxsize=1)
def _names() -> tuple[frozenset[str], frozenset[str]]:
    data = json.loads(resources.files("safety").joinpath("data/names.json").read_text(encoding="utf-8"))
    return frozenset(data["first_names"]), frozenset(data["last_names"])


def _hit(entity: str, start: int, end: int, score: float) -> Hit:
    return Hit(Category.PII, entity, SCANNER, start, end, round(min(score, 1.0), 3))


class PIIScanner:
    """Finds personal data; one job: text in, scored PII hits out."""

    name = SCANNER
    # Longest whitespace-containing span plus right context, for the stream redactor.
    max_span = 72

    def __init__(self, entities: frozenset[str] | None = None) -> None:
        self.entities = entities  # None means all

    def scan(self, text: str) -> list[Hit]:
        hits: list[Hit] = []
        for finder in (_emails, _cards, _ibans, _ssns, _ips, _phones):
            hits.extend(finder(text))
        hits.extend(_persons(text, fold(text), beside_personal_data=bool(hits)))
        if self.entities is not None:
            hits = [h for h in hits if h.entity in self.entities]
        return resolve_overlaps(hits)


def _emails(text: str) -> list[Hit]:
    if "@" not in text:
        return []
    return [_hit("EMAIL_ADDRESS", m.start(), m.end(), 0.9) for m in EMAIL_RE.finditer(text)]


_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6|1800|2131|35)")


def _cards(text: str) -> list[Hit]:
    out = []
    for m in CARD_RE.finditer(text):
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if not 12 <= len(digits) <= 19 or len(set(digits)) < 2 or not luhn_ok(digits):
            continue
        if raw[0] == "0" and " " not in raw:
            score = 0.35
        elif _CARD_PREFIX.match(digits):
            score = 0.75 if len(digits) in (15, 16) else 0.55
        else:
            score = 0.4
        if has_context(text, m.start(), m.end(), CARD_CONTEXT):
            score += 0.3
        out.append(_hit("CREDIT_CARD", m.start(), m.end(), score))
    return out


# Two digits after two letters, found by skipping to digits (a pattern that starts with the
# letters tries every position); the full start pattern is then checked there.
_IBAN_DIGITS = re.compile(r"[0-9](?<=[A-Za-z][A-Za-z][0-9])[0-9]")
# The whole code: ASCII letters and digits, single spaces between them, then no letter or digit.
_IBAN_BODY = {
    n: re.compile(r"[A-Za-z0-9](?:(?: (?=[^\W_]))?[A-Za-z0-9]){%d}(?![^\W_])" % (n - 1))
    for n in set(IBAN_LENGTHS.values())
}


def _ibans(text: str) -> list[Hit]:
    out = []
    for d in _IBAN_DIGITS.finditer(text):
        m = IBAN_START_RE.match(text, d.start() - 2)
        if m is None:
            continue
        length = IBAN_LENGTHS.get(m.group(1).upper())
        body = _IBAN_BODY[length].match(text, m.start()) if length else None
        if body is None or not iban_ok(body.group().replace(" ", "")):
            continue
        score = 1.0 if has_context(text, body.start(), body.end(), IBAN_CONTEXT) else 0.9
        out.append(_hit("IBAN_CODE", body.start(), body.end(), score))
    return out


def _ssns(text: str) -> list[Hit]:
    out = []
    for m in SSN_RE.finditer(text):
        area, sep, group, serial = m.groups()
        if not ssn_ok(area, group, serial):
            continue
        score = {"-": 0.6, " ": 0.4}.get(sep, 0.3)
        if has_context(text, m.start(), m.end(), SSN_CONTEXT):
            score += 0.35
        out.append(_hit("US_SSN", m.start(), m.end(), score))
    return out


# Where an address can start, for a prefilter that skips the rest of the text in C.
_IPV4 = Prefiltered(IPV4_RE, starts=re.compile(r"\d{1,3}\.\d"))
_IPV6 = Prefiltered(IPV6_RE, starts=re.compile(r"[0-9A-Fa-f:][0-9A-Fa-f]{0,4}:?[0-9A-Fa-f]{0,4}:"))
_TWO_GROUPS = re.compile(r":[0-9A-Fa-f]{0,4}:")  # in every IPv6 match; found fast (starts with a literal)


def _ips(text: str) -> list[Hit]:
    out = []
    if "." in text:
        for m in _IPV4.finditer(text):
            score = 0.6
            if has_context(text, m.start(), m.end(), IP_CONTEXT):
                score = 0.9
            elif has_context(text, m.start(), m.end(), IP_NEGATIVE, left=16, right=0):
                score = 0.3
            out.append(_hit("IP_ADDRESS", m.start(), m.end(), score))
    if ("::" in text or text.count(":") >= 3) and _TWO_GROUPS.search(text):
        for m in _IPV6.finditer(text):
            cand = m.group()
            if cand.count(":") < 3 and "::" not in cand:
                continue
            if sum(ch.isalnum() for ch in cand) < 3:
                continue
            try:
                ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            score = 0.95 if has_context(text, m.start(), m.end(), IP_CONTEXT) else 0.8
            out.append(_hit("IP_ADDRESS", m.start(), m.end(), score))
    return out


_EXTENSION_RE = re.compile(r"[ ]?(?:x|ext\.?)[ ]?(?=\d)")
_PHONE_SEP_RE = re.compile(r"[ .\-()]+")
_NOT_DIGITS = str.maketrans("", "", "+.-() ")  # all a phone match holds besides digits


# Where a number can start: "+", "(" or a digit with no word, "+", ".", "-" or "/" before it.
_PHONE = Prefiltered(PHONE_RE, starts=re.compile(r"[+(\d](?<![\w+.\-/].)"))


def _phones(text: str) -> list[Hit]:
    out = []
    for m in _PHONE.finditer(text):
        raw = m.group()
        if len(raw) < 7:
            continue  # fewer than 7 digits
        main = _EXTENSION_RE.split(raw, maxsplit=1)[0] if "x" in raw else raw
        ndigits = len(main.translate(_NOT_DIGITS))
        if not 7 <= ndigits <= 15 or DATE_RE.match(raw):
            continue
        groups = _PHONE_SEP_RE.split(main.strip("+()"))
        if len(groups) == 4 and all(g.isdigit() and len(g) <= 3 and int(g) <= 255 for g in groups) and "." in main:
            continue  # an IPv4 address
        if NANP_RE.match(raw):
            score = 0.6
        elif raw.startswith("+") and ndigits >= 8:
            score = 0.6
        elif len(groups) == 1 and ndigits > 11:
            score = 0.2
        else:
            score = 0.3
        if has_context(text, m.start(), m.end(), PHONE_CONTEXT):
            score += 0.4
        out.append(_hit("PHONE_NUMBER", m.start(), m.end(), min(score, 0.95)))
    return out


_TITLE_RE = Prefiltered(re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ ]+(?=[A-Z])"))
_INTRO_RE = Prefiltered(
    re.compile(
        r"(?i:\bname(?:\s+is)?\s*[:\-]?|\bmy name's|\bi am|\bi'm|\bthis is|\bdear|\bregards,|"
        r"\bsincerely,)[ \t]*\n?[ \t]*(?=[A-Z])"
    )
)


def _is_cap(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or not word.isupper())


# A name asked about in a wh-question, with no word of a personal relation near it and no
# contact data in the text, is public knowledge asked for ("What did Marie Curie discover?"),
# not personal data given away. We hold no list of public figures; the same name in a letter,
# a record, a table or beside an e-mail address keeps its score.
ASKED_ABOUT_DISCOUNT = 0.3
_WH = frozenset("who whom whose what which when where why how".split())
_ENDS = ".!?\n"
_SENTENCE_END = re.compile(f"[{re.escape(_ENDS)}]")


def _asked_about(text: str, start: int, end: int) -> bool:
    """Whether the name at start:end sits in a sentence that opens with a wh-word and ends in "?"."""
    after = _SENTENCE_END.search(text, end)
    if after is None or after.group() != "?":
        return False
    before = max(text.rfind(c, 0, start) for c in _ENDS) + 1
    first = text[before:start].split(maxsplit=1)
    return bool(first) and first[0].lower().strip("\"'(¿") in _WH


def _persons(text: str, folded: str | None, beside_personal_data: bool = False) -> list[Hit]:
    first, last = _names()
    words = [(m.start(), m.end(), m.group()) for m in CAP_WORD_RE.finditer(text) if m.group()[0].isupper()]
    out: list[Hit] = []

    def surname_after(i: int) -> int:
        """Index of the surname word after word i (skipping one initial), or -1."""
        j = i + 1
        if j < len(words) and len(words[j][2]) == 1 and words[j][2].isupper():
            gap = text[words[i][1] : words[j][0]]
            if gap.strip() == "":
                j += 1
        if j >= len(words):
            return -1
        s, _, w = words[j]
        gap = text[words[j - 1][1] : s]
        if gap.strip(" .") != "" or "\n" in gap or not _is_cap(w) or len(w) < 2:
            return -1
        if w.lower() in NOT_NAME or w.lower() in NOT_SURNAME:
            return -2
        return j

    by_start = {w[0]: k for k, w in enumerate(words)}
    taken: set[int] = set()
    # Titles and introductions: the capitalized words after them are a name whatever they are.
    for rx, score in ((_TITLE_RE, 0.8), (_INTRO_RE, 0.7)):
        for m in rx.finditer(text, folded):
            i = by_start.get(m.end())
            if i is None or words[i][2].lower() in NOT_NAME or i in taken:
                continue
            j = surname_after(i)
            end_i = j if j >= 0 else i
            if words[end_i][2].lower() in NOT_NAME:
                end_i = i
            taken.update(range(i, end_i + 1))
            out.append(_hit("PERSON", words[i][0], words[end_i][1], score))
    for i, (s, e, w) in enumerate(words):
        if i in taken or not _is_cap(w):
            continue
        lw = w.lower()
        if lw not in first or lw in NOT_NAME:
            continue
        j = surname_after(i)
        if j == -2:
            continue  # "Victor Street", "Johnson Inc"
        common = lw in COMMON_WORD_NAMES
        if j >= 0:
            sur = words[j][2].lower()
            score = 0.75 if sur in last else 0.6
            if common:
                score -= 0.25
            end = words[j][1]
            taken.update(range(i, j + 1))
        else:
            score = 0.2 if common else 0.45
            end = e
        if has_context(text, s, end, NAME_CONTEXT, right=0):
            score += 0.2
        elif not beside_personal_data and _asked_about(text, s, end):
            score -= ASKED_ABOUT_DISCOUNT
        out.append(_hit("PERSON", s, end, score))
    return out
