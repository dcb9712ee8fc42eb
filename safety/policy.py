"""Per-tenant safety policies: for each category and direction, which action at which score.

Config (YAML or a dict)::

    default:
      input:
        secret: redact                       # shorthand: one rule, threshold 0.5
        jailbreak:                           # strongest matching rule wins
          - {action: block, threshold: 0.8}
          - {action: flag, threshold: 0.5}
        harmful: flag                        # group alias: all of S1-S14
        S4: {action: block, threshold: 0.8}  # Llama Guard codes work as keys
      output: {...}
      deny_list: {phrases: [...], regexes: [...], topics: {name: [phrases]}}
    tenants:
      acme:
        input: {pii: block}
        deny_list: {phrases: ["project falcon"]}

A tenant inherits every category it does not name from ``default``; its deny list is added to
the default one. Each tenant's policy is built into its own objects, so nothing set for one
tenant can reach another.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .types import HARM_CATEGORIES, Category, Hit, parse_category

Action = Literal["block", "redact", "flag", "off"]
STRENGTH: dict[str, int] = {"off": 0, "flag": 1, "redact": 2, "block": 3}

GROUPS: dict[str, tuple[Category, ...]] = {
    "harmful": HARM_CATEGORIES,
    "injection": (Category.PROMPT_INJECTION, Category.JAILBREAK),
    "all": tuple(Category),
}
STRUCTURED_PII = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")


class Rule(BaseModel):
    """Take ``action`` on hits scoring at least ``threshold`` (optionally only these entities,
    or only hits of these scanners: ``scanners: [injection]`` blocks on the rules and leaves
    the classifier's hits to the next rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    entities: tuple[str, ...] | None = None
    scanners: tuple[str, ...] | None = None

    def matches(self, hit: Hit) -> bool:
        return (
            hit.score >= self.threshold
            and (self.entities is None or hit.entity in self.entities)
            and (self.scanners is None or hit.scanner in self.scanners)
        )

    def applies_to(self, scanner: str | None) -> bool:
        return scanner is None or self.scanners is None or scanner in self.scanners


def _rules(value: Any) -> tuple[Rule, ...]:
    if isinstance(value, str):
        value = [{"action": value}]
    elif isinstance(value, dict):
        value = [value]
    rules = tuple(Rule.model_validate(v) if not isinstance(v, Rule) else v for v in value)
    # Strongest first, so the first match is the action taken.
    return tuple(sorted((r for r in rules if r.action != "off"), key=lambda r: -STRENGTH[r.action]))


class DirectionPolicy(BaseModel):
    """Rules per category for one direction (input or output)."""

    model_config = ConfigDict(frozen=True)

    rules: dict[Category, tuple[Rule, ...]] = Field(default_factory=dict)

    @classmethod
    def parse(cls, raw: dict | None, base: "DirectionPolicy | None" = None) -> "DirectionPolicy":
        rules: dict[Category, tuple[Rule, ...]] = dict(base.rules) if base else {}
        raw = raw or {}
        # Group aliases first so that a specific category in the same mapping overrides them.
        for key in sorted(raw, key=lambda k: k not in GROUPS):
            cats = GROUPS.get(key) or (parse_category(key),)
            parsed = _rules(raw[key])
            for cat in cats:
                rules[cat] = parsed
        return cls(rules=rules)

    def decide(self, hit: Hit) -> str | None:
        """Action for a hit, or None when no rule applies (below every threshold or off)."""
        for rule in self.rules.get(hit.category, ()):
            if rule.matches(hit):
                return rule.action
        return None

    def active(self) -> frozenset[Category]:
        """Categories with at least one rule, i.e. worth scanning for."""
        return frozenset(c for c, r in self.rules.items() if r)

    def acting(self, scanner: str | None = None) -> frozenset[Category]:
        """Categories whose rules can change the text (redact or block), of any scanner's hits
        or of ``scanner``'s."""
        return frozenset(
            c
            for c, rs in self.rules.items()
            if any(r.action in ("redact", "block") and r.applies_to(scanner) for r in rs)
        )


class DenyListConfig(BaseModel):
    """Banned phrases, regexes and named topics (each a list of phrases)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phrases: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()
    topics: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    max_span: int = Field(64, ge=1, description="longest text a regex may match (stream hold-back)")

    def merged(self, other: "DenyListConfig") -> "DenyListConfig":
        topics = {k: tuple(v) for k, v in self.topics.items()}
        for k, v in other.topics.items():
            topics[k] = tuple(dict.fromkeys(topics.get(k, ()) + tuple(v)))
        return DenyListConfig(
            phrases=tuple(dict.fromkeys(self.phrases + other.phrases)),
            regexes=tuple(dict.fromkeys(self.regexes + other.regexes)),
            topics=topics,
            max_span=max(self.max_span, other.max_span),
        )

    def empty(self) -> bool:
        return not (self.phrases or self.regexes or any(self.topics.values()))


class TenantPolicy(BaseModel):
    """The effective policy of one tenant."""

    model_config = ConfigDict(frozen=True)

    name: str
    input: DirectionPolicy
    output: DirectionPolicy
    deny_list: DenyListConfig = DenyListConfig()

    def direction(self, direction: str) -> DirectionPolicy:
        if direction not in ("input", "output"):
            raise ValueError(f"direction must be 'input' or 'output', not {direction!r}")
        return self.input if direction == "input" else self.output


DEFAULT_CONFIG: dict[str, Any] = {
    "input": {
        "pii": [
            {"action": "redact", "threshold": 0.5, "entities": list(STRUCTURED_PII)},
            {"action": "flag", "threshold": 0.5},
        ],
        "secret": "redact",
        # Blocks come from the rule scanners; the classifier's (and a guard model's) hits are
        # flagged, so they are scanned after the response and add nothing to its latency. A
        # rule without ``scanners`` blocks on them too, and puts them back on the path.
        "prompt_injection": [
            {"action": "block", "threshold": 0.8, "scanners": ["injection"]},
            {"action": "flag", "threshold": 0.5},
        ],
        "jailbreak": [
            {"action": "block", "threshold": 0.8, "scanners": ["injection"]},
            {"action": "flag", "threshold": 0.5},
        ],
        "harmful": "flag",
        "child_exploitation": [
            {"action": "block", "threshold": 0.8, "scanners": ["harmful"]},
            {"action": "flag", "threshold": 0.5},
        ],
        "deny_list": "block",
    },
    "output": {
        "pii": [
            {"action": "redact", "threshold": 0.5, "entities": list(STRUCTURED_PII)},
            {"action": "flag", "threshold": 0.5},
        ],
        "secret": "redact",
        "harmful": "flag",
        "child_exploitation": [{"action": "block", "threshold": 0.8}, {"action": "flag", "threshold": 0.5}],
        "deny_list": "redact",
    },
}


class PolicySet:
    """All tenants' policies; ``for_tenant`` returns the merged, immutable policy of one."""

    def __init__(self, default: dict | None = None, tenants: dict[str, dict] | None = None) -> None:
        default = DEFAULT_CONFIG if default is None else default
        self._default = self._build("default", default, None)
        self._tenants = {name: self._build(name, cfg or {}, self._default) for name, cfg in (tenants or {}).items()}

    @staticmethod
    def _build(name: str, cfg: dict, base: TenantPolicy | None) -> TenantPolicy:
        unknown = set(cfg) - {"input", "output", "deny_list"}
        if unknown:
            raise ValueError(f"policy {name!r}: unknown keys {sorted(unknown)}")
        deny = DenyListConfig.model_validate(cfg.get("deny_list") or {})
        return TenantPolicy(
            name=name,
            input=DirectionPolicy.parse(cfg.get("input"), base.input if base else None),
            output=DirectionPolicy.parse(cfg.get("output"), base.output if base else None),
            deny_list=base.deny_list.merged(deny) if base else deny,
        )

    @classmethod
    def from_dict(cls, data: dict | None) -> "PolicySet":
        """Load ``{"default": {...}, "tenants": {...}}``; a missing default means DEFAULT_CONFIG."""
        data = data or {}
        unknown = set(data) - {"default", "tenants"}
        if unknown:
            raise ValueError(f"safety policy: unknown keys {sorted(unknown)}")
        return cls(data.get("default"), data.get("tenants"))

    @classmethod
    def from_yaml(cls, text: str) -> "PolicySet":
        import yaml

        return cls.from_dict(yaml.safe_load(text) or {})

    @property
    def default(self) -> TenantPolicy:
        return self._default

    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    def for_tenant(self, tenant: str | None) -> TenantPolicy:
        """The tenant's policy, or the default one for tenants without their own."""
        if tenant is not None and tenant in self._tenants:
            return self._tenants[tenant]
        return self._default
