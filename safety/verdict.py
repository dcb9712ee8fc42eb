"""What a scan concludes: a ``Finding`` (a hit and the action the policy attached to it) and
the ``Verdict`` over one text. The engine and the stream redactor both produce them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from .policy import STRENGTH
from .types import CODE_OF, Category, Direction, Hit

VerdictAction = Literal["allow", "flag", "redact", "block"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A hit and the action the policy attached to it."""

    hit: Hit
    action: str  # block | redact | flag

    def to_dict(self) -> dict:
        return {**self.hit.to_dict(), "action": self.action}


def strongest(findings: Sequence[Finding]) -> Finding:
    """The finding that decides a verdict: the strongest action, then the highest score."""
    return max(findings, key=lambda f: (STRENGTH[f.action], f.hit.score))


@dataclass(slots=True)
class Verdict:
    """Outcome of one scan: what was found, what was done, and the text to pass on."""

    direction: Direction
    tenant: str
    findings: list[Finding] = field(default_factory=list)
    action: VerdictAction = "allow"
    text: str = ""  # redacted text (the original when nothing was redacted)
    blocked_category: Category | None = None

    @property
    def hits(self) -> list[Hit]:
        return [f.hit for f in self.findings]

    @property
    def blocked(self) -> bool:
        return self.action == "block"

    def block_message(self) -> str | None:
        """Human-readable reason for a block, naming the category."""
        if self.blocked_category is None:
            return None
        cat = self.blocked_category
        code = CODE_OF.get(cat)
        name = f"{cat.value} ({code})" if code else cat.value
        return f"{'Prompt' if self.direction == 'input' else 'Completion'} blocked by content policy: {name}"

    def error_body(self) -> dict | None:
        """OpenAI-format error body for a block (the gateway answers it with HTTP 400)."""
        if not self.blocked:
            return None
        return {
            "error": {
                "message": self.block_message(),
                "type": "invalid_request_error",
                "param": "messages" if self.direction == "input" else None,
                "code": "content_policy_violation",
                "category": self.blocked_category.value if self.blocked_category else None,
            }
        }

    def metric_labels(self) -> list[tuple[str, str, str]]:
        """(direction, category, action) per finding, for ``inferwatch_safety_hits_total``."""
        return [(self.direction, f.hit.category.value, f.action) for f in self.findings]

    def to_dict(self) -> dict:
        return {
            "direction": self.direction,
            "tenant": self.tenant,
            "action": self.action,
            "blocked_category": self.blocked_category.value if self.blocked_category else None,
            "findings": [f.to_dict() for f in self.findings],
        }
