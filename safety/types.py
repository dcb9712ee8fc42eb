"""Shared safety types: categories, hits, scan results and the moderation category maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Literal


class Category(str, Enum):
    """Everything a scanner can report. The S1–S14 members follow Llama Guard 3/4."""

    VIOLENT_CRIMES = "violent_crimes"  # S1
    NON_VIOLENT_CRIMES = "non_violent_crimes"  # S2
    SEX_CRIMES = "sex_crimes"  # S3
    CHILD_EXPLOITATION = "child_exploitation"  # S4
    DEFAMATION = "defamation"  # S5
    SPECIALIZED_ADVICE = "specialized_advice"  # S6
    PRIVACY = "privacy"  # S7
    INTELLECTUAL_PROPERTY = "intellectual_property"  # S8
    INDISCRIMINATE_WEAPONS = "indiscriminate_weapons"  # S9
    HATE = "hate"  # S10
    SELF_HARM = "self_harm"  # S11
    SEXUAL_CONTENT = "sexual_content"  # S12
    ELECTIONS = "elections"  # S13
    CODE_INTERPRETER_ABUSE = "code_interpreter_abuse"  # S14
    PII = "pii"
    SECRET = "secret"
    PROMPT_INJECTION = "prompt_injection"
    JAILBREAK = "jailbreak"
    DENY_LIST = "deny_list"

    def __str__(self) -> str:
        return self.value


LLAMA_GUARD_CODES: dict[str, Category] = {
    "S1": Category.VIOLENT_CRIMES,
    "S2": Category.NON_VIOLENT_CRIMES,
    "S3": Category.SEX_CRIMES,
    "S4": Category.CHILD_EXPLOITATION,
    "S5": Category.DEFAMATION,
    "S6": Category.SPECIALIZED_ADVICE,
    "S7": Category.PRIVACY,
    "S8": Category.INTELLECTUAL_PROPERTY,
    "S9": Category.INDISCRIMINATE_WEAPONS,
    "S10": Category.HATE,
    "S11": Category.SELF_HARM,
    "S12": Category.SEXUAL_CONTENT,
    "S13": Category.ELECTIONS,
    "S14": Category.CODE_INTERPRETER_ABUSE,
}
CODE_OF: dict[Category, str] = {c: code for code, c in LLAMA_GUARD_CODES.items()}
HARM_CATEGORIES: tuple[Category, ...] = tuple(LLAMA_GUARD_CODES.values())


def parse_category(name: str | Category) -> Category:
    """Accept a category value (``"hate"``), an enum name (``"HATE"``) or a Llama Guard code (``"S10"``)."""
    if isinstance(name, Category):
        return name
    key = name.strip()
    if key.upper() in LLAMA_GUARD_CODES:
        return LLAMA_GUARD_CODES[key.upper()]
    try:
        return Category(key.lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        raise ValueError(f"unknown safety category {name!r}") from None


Direction = Literal["input", "output"]


# Not frozen: a frozen dataclass's __init__ costs 3x, and scanners make dozens of hits per KB.
# Hashed by value all the same (findings are kept in sets), so it must never be mutated.
@dataclass(slots=True, unsafe_hash=True)
class Hit:
    """One detection. Holds offsets into the scanned text, never the matched text itself.

    A value: code that needs other offsets makes a new hit.
    """

    category: Category
    entity: str  # finer type: EMAIL_ADDRESS, AWS_ACCESS_KEY, DAN, weapons_explosives, ...
    scanner: str  # pii, secrets, injection, injection_classifier, harmful, deny_list
    start: int
    end: int
    score: float
    # The classifier's hit on text outside its training distribution (safety.domain): it may
    # flag, never block on its own.
    abstain: bool = False

    def to_dict(self) -> dict:
        d = {
            "category": self.category.value,
            "entity": self.entity,
            "scanner": self.scanner,
            "start": self.start,
            "end": self.end,
            "score": round(float(self.score), 4),
        }
        if self.abstain:
            d["abstain"] = True
        return d


@dataclass(slots=True)
class ScanResult:
    """All hits of one scan of one text."""

    hits: list[Hit] = field(default_factory=list)

    def extend(self, hits: Iterable[Hit]) -> None:
        self.hits.extend(hits)

    def by_category(self, category: Category) -> list[Hit]:
        return [h for h in self.hits if h.category is category]

    def category_scores(self) -> dict[Category, float]:
        """Highest score per category seen in this scan."""
        scores: dict[Category, float] = {}
        for h in self.hits:
            scores[h.category] = max(scores.get(h.category, 0.0), h.score)
        return scores


# --- Mapping to the moderation APIs -------------------------------------------------------

OPENAI_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

# Categories without an OpenAI counterpart (specialized advice, privacy, IP, elections, pii,
# secrets, injection, deny lists) map to nothing and appear only in our own extra keys.
OPENAI_MAP: dict[Category, tuple[str, ...]] = {
    Category.VIOLENT_CRIMES: ("violence", "illicit/violent"),
    Category.NON_VIOLENT_CRIMES: ("illicit",),
    Category.SEX_CRIMES: ("sexual", "illicit/violent"),
    Category.CHILD_EXPLOITATION: ("sexual/minors", "sexual"),
    Category.DEFAMATION: ("harassment",),
    Category.INDISCRIMINATE_WEAPONS: ("illicit/violent", "violence"),
    Category.HATE: ("hate",),
    Category.SELF_HARM: ("self-harm",),
    Category.SEXUAL_CONTENT: ("sexual",),
    Category.CODE_INTERPRETER_ABUSE: ("illicit",),
}

# Finer entities that select a more specific OpenAI sub-category.
OPENAI_ENTITY_MAP: dict[str, tuple[str, ...]] = {
    "self_harm_intent": ("self-harm", "self-harm/intent"),
    "self_harm_instructions": ("self-harm", "self-harm/instructions"),
    "hate_threat": ("hate", "hate/threatening"),
    "threat": ("violence", "harassment/threatening"),
    "graphic_violence": ("violence", "violence/graphic"),
}

MISTRAL_CATEGORIES: tuple[str, ...] = (
    "sexual",
    "hate_and_discrimination",
    "violence_and_threats",
    "dangerous_and_criminal_content",
    "selfharm",
    "health",
    "financial",
    "law",
    "pii",
)

MISTRAL_MAP: dict[Category, tuple[str, ...]] = {
    Category.VIOLENT_CRIMES: ("violence_and_threats", "dangerous_and_criminal_content"),
    Category.NON_VIOLENT_CRIMES: ("dangerous_and_criminal_content",),
    Category.SEX_CRIMES: ("sexual", "dangerous_and_criminal_content"),
    Category.CHILD_EXPLOITATION: ("sexual", "dangerous_and_criminal_content"),
    Category.PRIVACY: ("pii",),
    Category.INDISCRIMINATE_WEAPONS: ("dangerous_and_criminal_content",),
    Category.HATE: ("hate_and_discrimination",),
    Category.SELF_HARM: ("selfharm",),
    Category.SEXUAL_CONTENT: ("sexual",),
    Category.CODE_INTERPRETER_ABUSE: ("dangerous_and_criminal_content",),
    Category.PII: ("pii",),
}

# Specialized advice splits by entity into Mistral's health / financial / law.
MISTRAL_ENTITY_MAP: dict[str, tuple[str, ...]] = {
    "medical_advice": ("health",),
    "financial_advice": ("financial",),
    "legal_advice": ("law",),
}


def openai_categories_for(hit: Hit) -> tuple[str, ...]:
    """OpenAI moderation categories a hit counts toward."""
    return OPENAI_ENTITY_MAP.get(hit.entity) or OPENAI_MAP.get(hit.category, ())


def mistral_categories_for(hit: Hit) -> tuple[str, ...]:
    """Mistral moderation (2411) categories a hit counts toward."""
    return MISTRAL_ENTITY_MAP.get(hit.entity) or MISTRAL_MAP.get(hit.category, ())
