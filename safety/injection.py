"""Prompt-injection and jailbreak heuristics: override phrases, jailbreak templates, invisible
Unicode and encoded payloads (decoded and scanned again).

The trained classifier lives in ``classifier.py``; ``InjectionScanner`` combines both.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from typing import Callable, Protocol, Sequence

from .prefilter import GatedPatterns, Prefiltered
from .types import Category, Hit

SCANNER = "injection"
PI = Category.PROMPT_INJECTION
JB = Category.JAILBREAK

_I = re.IGNORECASE
_G = r"[^.!?\n]{0,%d}?"  # a bounded gap inside one sentence


def _gap(n: int) -> str:
    return _G % n


# (category, entity, weight, pattern). Weights are the confidence that a match alone is an
# attack; several distinct matches combine (noisy-or).
RULES: tuple[tuple[Category, str, float, re.Pattern[str]], ...] = (
    (
        PI,
        "instruction_override",
        0.85,
        re.compile(
            r"\b(?:ignore|disregard|forget|skip|override|overwrite|bypass|neglect|abandon|discard|drop)\b(?!\s+(?:my|"
            r"our)\b)"
            + _gap(24)
            + r"\b(?:previous|prior|above|earlier|preceding|former|original|initial|system|old|existing|"
            r"all(?: of)?(?: the| your| my)?|any(?: of)?(?: the| your)?|your)\b"
            + _gap(24)
            + r"\b(?:instructions?|rules|prompts?|directions|directives?|guidelines|guidance|commands?|constraints|"
            r"restrictions|programming|polic(?:y|ies)|context|messages?|orders|safeguards)\b",
            _I,
        ),
    ),
    (
        PI,
        "instruction_override",
        0.8,
        re.compile(
            r"\bforget (?:everything|all)(?: (?:from )?(?:before|above|previously|you (?:were|have been) told))?\b|"
            r"\bignore (?:everything|all) (?:above|before|previously)\b",
            _I,
        ),
    ),
    (
        PI,
        "new_instructions",
        0.7,
        re.compile(
            r"\b(?:your|the|these are (?:your|the)) (?:new|updated|real|actual|true|revised) (?:instructions|rules|"
            r"task|directives?|system prompt|orders|objective)\b",
            _I,
        ),
    ),
    (
        PI,
        "system_prompt_leak",
        0.8,
        re.compile(
            r"\b(?:reveal|show|print|display|output|repeat|tell me|give me|leak|dump|share|write out|spell out|"
            r"what (?:is|are|were)|recite)\b"
            + _gap(30)
            + r"\b(?:your|the above|the hidden|the initial|the original)\b"
            + _gap(20)
            + r"\b(?:system prompt|system message|initial (?:prompt|instructions)|hidden (?:prompt|instructions)|"
            r"original (?:prompt|instructions)|"
            r"pre-?prompt|developer (?:message|instructions)|(?:instructions|prompt) you were given|secret (?:key|"
            r"password|instructions))\b",
            _I,
        ),
    ),
    (
        PI,
        "system_prompt_leak",
        0.8,
        re.compile(
            r"\b(?:repeat|print|output|copy)\b"
            + _gap(20)
            + r"\b(?:words|text|everything|all)\b above\b|\bstarting with ['\"]?you are\b",
            _I,
        ),
    ),
    (
        PI,
        "role_marker",
        0.85,
        re.compile(r"<\|im_start\|>\s*system|<\|start_header_id\|>\s*system|<<SYS>>|<\|system\|>", _I),
    ),
    (
        PI,
        "role_marker",
        0.6,
        re.compile(
            r"<\|(?:im_start|im_end|assistant|begin_of_text|start_header_id|end_header_id|eot_id)\|>|\[/?INST\]|"
            r"<</SYS>>|^#{2,4} ?(?:system|instruction)s?:",
            _I | re.M,
        ),
    ),
    (
        PI,
        "indirect_injection",
        0.65,
        re.compile(
            r"\b(?:note|message|instructions?) (?:to|for) (?:the )?(?:ai|assistant|llm|model|chatbot|language model)\b|"
            r"\bif you are an? (?:ai|llm|language model|assistant|chatbot)\b",
            _I,
        ),
    ),
    (
        PI,
        "indirect_injection",
        0.6,
        re.compile(
            r"\b(?:when|while|after) (?:summari[sz]ing|reading|processing|translating)\b"
            + _gap(30)
            + r"\b(?:you (?:must|should|will)|instead|also (?:say|include|tell|add))\b",
            _I,
        ),
    ),
    (
        PI,
        "concealment",
        0.6,
        re.compile(
            r"\b(?:do not|don't|never) (?:tell|inform|mention (?:this )?to|reveal (?:this )?to|let) the user\b", _I
        ),
    ),
    (
        PI,
        "exfiltration",
        0.6,
        re.compile(
            r"\b(?:send|forward|post|upload|email|leak)\b"
            + _gap(20)
            + r"\b(?:conversation|chat history|api keys?|password|credentials|system prompt|personal data)\b"
            + _gap(20)
            + r"\bto\b",
            _I,
        ),
    ),
    (
        PI,
        "exfiltration",
        0.6,
        re.compile(r"!\[[^\]]{0,40}\]\(https?://[^)\s]{1,120}[?&][\w-]{1,20}=(?:\{|\[|\$|<)", _I),
    ),
    (JB, "dan", 0.9, re.compile(r"\bdo anything now\b|\bDAN (?:mode|prompt|jailbreak)\b", _I)),
    (JB, "dan", 0.5, re.compile(r"\b(?:DAN|STAN|DUDE|AIM|BetterDAN|AntiDAN)\b")),
    (
        JB,
        "jailbreak_tag",
        0.9,
        re.compile(r"\[(?:🔓|🔒)?\s?(?:JAILBREAK|CLASSIC|JAILBROKEN)\]|\bjailbr(?:oken|eak) mode\b", _I),
    ),
    (
        JB,
        "mode_switch",
        0.8,
        re.compile(
            r"\b(?:developer|dev|god|sudo|admin|debug|evil|opposite|unrestricted|anarchy|chaos|unfiltered|"
            r"uncensored) mode\b"
            + _gap(20)
            + r"\b(?:enabled|activated|on(?!\s+(?:my|the|your|a|an|this|his|her)\b)|engaged)\b|\benable (?:god|sudo|"
            r"jailbreak) mode\b",
            _I,
        ),
    ),
    (
        JB,
        "mode_switch",
        0.5,
        re.compile(r"\b(?:developer|god|sudo|jailbreak|evil|unrestricted|anarchy|unfiltered|uncensored) mode\b", _I),
    ),
    (
        JB,
        "no_restrictions",
        0.45,
        re.compile(
            r"\b(?:no|without(?: any)?|free (?:of|from)|not bound by|unbound by|bypass(?:es)?|removed?|disabled?|"
            r"(?:doesn't|does not|don't|do not) (?:have|follow|abide by|care about)|never (?:follows?|abides? by))\b"
            + _gap(24)
            + r"\b(?:restrictions?|limitations?|filters?|filtering|censorship|ethics|ethical|morals?|morality|"
            r"content polic(?:y|ies)|"
            r"safety (?:guidelines|measures|protocols)|boundaries|guardrails|principles|legality)\b",
            _I,
        ),
    ),
    (
        JB,
        "amoral_persona",
        0.4,
        re.compile(r"\b(?:unfiltered|uncensored|amoral|unrestricted|jailbroken|unchained|unethical|immoral)\b", _I),
    ),
    (
        JB,
        "stay_in_character",
        0.5,
        re.compile(
            r"\b(?:stay|remain|keep) in character\b|\b(?:never|don't|do not) break(?:s|ing)? character\b|"
            r"\bbreak(?:ing)? character\b",
            _I,
        ),
    ),
    (
        JB,
        "never_refuse",
        0.55,
        re.compile(
            r"\b(?:never|not|don't|do not|cannot|can't|won't|will not) (?:ever )?(?:refuse|decline|reject|say no)\b|"
            r"\bwithout (?:ever )?(?:refusing|declining|any (?:warnings?|disclaimers?|refusals?))\b|\banswer (?:any|"
            r"every|all)(?: of)?(?: my| the)? (?:questions?|requests?|prompts?)(?: without| no matter| regardless)\b|"
            r"\b(?:regardless|no matter how) (?:of )?(?:how )?(?:unethical|illegal|immoral|dangerous|harmful|offensive|"
            r"inappropriate|its content|legality|morality)\b",
            _I,
        ),
    ),
    (
        JB,
        "freed_persona",
        0.8,
        re.compile(
            r"\b(?:freed|liberated|released|broken free) (?:from|of)\b"
            + _gap(20)
            + r"\b(?:confines|restrictions|rules|limitations|shackles|chains)\b",
            _I,
        ),
    ),
    (
        JB,
        "policy_bypass",
        0.85,
        re.compile(
            r"\b(?:ignore|bypass|violate|break|circumvent|(?:not|no longer|don't|doesn't|do not|does not|"
            r"never) (?:follow|abide by|bound by|comply with|adhere to|apply|have to (?:follow|abide by|adhere to)))\b"
            + _gap(30)
            + r"\b(?:openai|anthropic|google|meta|mistral)(?:'s)? (?:content )?(?:polic(?:y|ies)|guidelines|rules|"
            r"restrictions)",
            _I,
        ),
    ),
    (
        JB,
        "persona_override",
        0.45,
        re.compile(
            r"\byou are (?:no longer|not) (?:chatgpt|an? (?:ai|assistant|language model)|claude|gpt|bound)\b|"
            r"\b(?:from now on|starting now|henceforth),? you (?:are|will|must|shall)(?: be| act| respond| answer|"
            r" pretend| reply| behave)?\b",
            _I,
        ),
    ),
    (
        JB,
        "roleplay_template",
        0.5,
        re.compile(
            r"\b(?:act|pretend|roleplay|role-play|behave|respond|simulate)\b(?: to be| as| like)?"
            + _gap(40)
            + r"\b(?:ai|chatbot|model|assistant|character|persona)\b"
            + _gap(40)
            + r"\b(?:no|without|doesn't|does not|not bound|any)\b"
            + _gap(16)
            + r"\b(?:restrictions|filters|rules|limits|ethics|morals|guidelines|censorship)\b",
            _I,
        ),
    ),
)
# Lower-case substrings one of which must occur for the rule at the same index to run.
GATES: tuple[tuple[str, ...], ...] = (
    (
        "instruction",
        "rule",
        "prompt",
        "direction",
        "directive",
        "guideline",
        "guidance",
        "command",
        "constraint",
        "restriction",
        "programming",
        "polic",
        "context",
        "message",
        "order",
        "safeguard",
    ),
    ("forget everything", "forget all", "ignore everything", "ignore all"),
    ("instructions", "rules", "task", "directive", "system prompt", "orders", "objective"),
    (
        "system prompt",
        "system message",
        "initial",
        "hidden",
        "original",
        "pre-prompt",
        "preprompt",
        "developer",
        "you were given",
        "secret",
    ),
    ("above", "you are"),
    ("<|", "<<sys"),
    ("<|", "[inst", "[/inst", "<</sys", "##"),
    ("note", "message", "instruction", "if you are"),
    ("summari", "reading", "processing", "translating"),
    ("the user",),
    ("conversation", "chat history", "api key", "password", "credentials", "system prompt", "personal data"),
    ("![",),
    ("do anything now", "dan "),
    ("dan", "stan", "dude", "aim"),
    ("jailbr", "classic]"),
    (" mode",),
    (" mode",),
    (
        "restriction",
        "limitation",
        "filter",
        "censorship",
        "ethic",
        "moral",
        "polic",
        "safety",
        "boundar",
        "guardrail",
        "principle",
        "legality",
    ),
    ("unfiltered", "uncensored", "amoral", "unrestricted", "jailbroken", "unchained", "unethical", "immoral"),
    ("character",),
    ("refus", "declin", "reject", "say no", "regardless", "no matter how", "warning", "disclaimer"),
    ("freed", "liberated", "released", "broken free"),
    ("openai", "anthropic", "google", "meta", "mistral"),
    ("you are no longer", "you are not", "from now on", "starting now", "henceforth"),
    ("restriction", "filter", "rules", "limit", "ethic", "moral", "guideline", "censorship"),
)
assert len(GATES) == len(RULES)
GATED = GatedPatterns([Prefiltered(rule[3]) for rule in RULES], GATES)
# Rules that can fire through ROT13: the strong, specific ones.
ROT13_RULES = tuple(i for i, rule in enumerate(RULES) if rule[2] >= 0.75)
_STOPWORDS = (" the ", " and ", " to ", " of ", " you ", " is ", " in ", " that ", " for ", " your ", " all ")


def _stopword_count(text: str) -> int:
    lower = text.lower()
    return sum(lower.count(w) for w in _STOPWORDS)


_TAG_RE = re.compile("[\U000e0000-\U000e007f]+")
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")
_ZW_RE = re.compile("[\u200b\u200c\u200e\u200f\u2060-\u2064\u180e\ufeff]")
_B64_RE = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=_\-])")
# The lookbehind follows the first digit, so that re skips positions that are not hex digits.
_HEX_RE = re.compile(r"[0-9A-Fa-f](?<![0-9A-Fa-f].)[0-9A-Fa-f][ :]?(?:[0-9A-Fa-f]{2}[ :]?){11,}(?![0-9A-Fa-f])")


class _Rescan(Protocol):
    def __call__(self, text: str) -> Sequence[Hit]: ...


def _noisy_or(weights: list[float]) -> float:
    p = 1.0
    for w in weights:
        p *= 1.0 - w
    return 1.0 - p


def _printable_text(raw: bytes) -> str | None:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(s) < 8 or " " not in s:
        return None
    printable = sum(c.isprintable() or c in "\n\t" for c in s)
    return s if printable / len(s) > 0.95 else None


def decode_payloads(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, encoding, decoded text) for base64 and hex runs that decode to readable text."""
    out = []
    for m in _B64_RE.finditer(text):
        tok = m.group()
        try:
            raw = base64.b64decode(tok + "=" * (-len(tok) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        s = _printable_text(raw)
        if s:
            out.append((m.start(), m.end(), "base64", s))
    for m in _HEX_RE.finditer(text):
        digits = re.sub(r"[ :]", "", m.group())
        if len(digits) % 2:
            digits = digits[:-1]
        s = _printable_text(bytes.fromhex(digits))
        if s:
            out.append((m.start(), m.end(), "hex", s))
    return out


class InjectionHeuristics:
    """Rule-based injection/jailbreak detector; hits carry spans of the matched phrases."""

    name = SCANNER
    max_span = 160

    def __init__(self, rescan: _Rescan | None = None, depth: int = 0) -> None:
        self._rescan = rescan  # extra scanner for decoded payloads (e.g. harmful content)
        self._depth = depth

    def _rules(self, text: str, rules: Sequence[int] | None = None, entity_suffix: str = "") -> list[Hit]:
        hits = []
        for i, m in GATED.matches(text, rules):
            cat, entity, weight, _rx = RULES[i]
            hits.append(Hit(cat, entity + entity_suffix, SCANNER, m.start(), m.end(), weight))
        return hits

    def scan(self, text: str) -> list[Hit]:
        hits = self._rules(text)
        if not text.isascii():
            hits.extend(self._invisible(text))
        if self._depth == 0:
            # ROT13 keeps offsets, so hits map straight back onto the original text. Only
            # worth a look when the decoded text reads more like English than the original.
            rot = codecs.encode(text, "rot13")
            if _stopword_count(rot) > _stopword_count(text):
                hits.extend(self._rules(rot, ROT13_RULES, "_rot13"))
            hits.extend(self._encoded(text))
        return hits + self._combined(hits)

    def _combined(self, hits: list[Hit]) -> list[Hit]:
        out = []
        for cat in (PI, JB):
            own = [h for h in hits if h.category is cat]
            best: dict[str, float] = {}
            for h in own:
                best[h.entity] = max(best.get(h.entity, 0.0), h.score)
            if len(best) >= 2:
                score = _noisy_or(list(best.values()))
                start = min(h.start for h in own)
                end = max(h.end for h in own)
                out.append(Hit(cat, "combined", SCANNER, start, end, round(score, 3)))
        return out

    def _invisible(self, text: str) -> list[Hit]:
        hits = []
        for m in _TAG_RE.finditer(text):
            hits.append(Hit(PI, "invisible_unicode", SCANNER, m.start(), m.end(), 0.95))
        bidi = list(_BIDI_RE.finditer(text))
        if bidi:
            hits.append(Hit(PI, "invisible_unicode", SCANNER, bidi[0].start(), bidi[-1].end(), 0.6))
        zw = list(_ZW_RE.finditer(text))
        if len(zw) >= 3:
            hits.append(Hit(PI, "invisible_unicode", SCANNER, zw[0].start(), zw[-1].end(), 0.6))
        if self._depth == 0 and (zw or hits):
            # Hidden text: tag characters spell ASCII; zero-width chars split trigger words.
            hidden = "".join(chr(ord(c) - 0xE0000) for m in _TAG_RE.finditer(text) for c in m.group())
            cleaned = _ZW_RE.sub("", _TAG_RE.sub("", text))
            for inner_text in (hidden, cleaned):
                if not inner_text or inner_text == text:
                    continue
                inner = InjectionHeuristics(depth=1).scan(inner_text)
                if inner:
                    score = max(0.85, max(h.score for h in inner))
                    hits.append(Hit(PI, "invisible_unicode", SCANNER, 0, len(text), round(score, 3)))
        return hits

    def _encoded(self, text: str) -> list[Hit]:
        hits = []
        for start, end, enc, decoded in decode_payloads(text):
            inner = list(InjectionHeuristics(depth=1).scan(decoded))
            if self._rescan is not None:
                inner.extend(self._rescan(decoded))
            if inner:
                score = max(0.8, max(h.score for h in inner))
                hits.append(Hit(PI, f"encoded_payload_{enc}", SCANNER, start, end, round(min(score, 0.99), 3)))
        return hits


class InjectionScanner:
    """Heuristics plus, when given, the trained classifier's whole-text score."""

    name = SCANNER

    def __init__(
        self, heuristics: InjectionHeuristics | None = None, classifier: Callable[[str], list[Hit]] | None = None
    ) -> None:
        self.heuristics = heuristics or InjectionHeuristics()
        self.classifier = classifier

    @property
    def max_span(self) -> int:
        return self.heuristics.max_span

    def scan(self, text: str) -> list[Hit]:
        hits = self.heuristics.scan(text)
        if self.classifier is not None and text.strip():
            hits.extend(self.classifier(text))
        return hits
