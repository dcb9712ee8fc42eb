"""SafetyEngine: run the scanners a tenant's policy asks for and decide block / redact / flag."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol, Sequence

from .classifier import InjectionClassifier, classifier_available, get_classifier
from .denylist import DenyListScanner
from .harmful import HarmfulScanner
from .injection import InjectionHeuristics
from .pii import PIIScanner
from .policy import STRENGTH, PolicySet, TenantPolicy
from .secrets import SecretsScanner
from .spans import redact
from .types import CODE_OF, HARM_CATEGORIES, Category, Direction, Hit

VerdictAction = Literal["allow", "flag", "redact", "block"]


class Scanner(Protocol):
    name: str
    max_span: int

    def scan(self, text: str) -> list[Hit]: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """Categories a policy scans for in one direction and the span scanners that find them."""

    categories: frozenset[Category]
    scanners: tuple[Scanner, ...]
    attack: bool  # injection or jailbreak categories wanted (the classifier's first signal)
    harm: bool  # any S1-S14 category wanted (its second)


@dataclass(frozen=True, slots=True)
class Finding:
    """A hit and the action the policy attached to it."""

    hit: Hit
    action: str  # block | redact | flag

    def to_dict(self) -> dict:
        return {**self.hit.to_dict(), "action": self.action}


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


class SafetyEngine:
    """Entry point for the gateway: ``scan_input``, ``scan_output`` and ``stream_redactor``.

    Rule scanners are built once; deny-list scanners once per tenant. The classifier (MiniLM,
    about 10 ms per prompt on CPU) runs only where the policy enables injection, jailbreak
    or harm categories for that direction, and only when ``use_classifier`` allows it:
    True requires it, False disables it, None uses it when the model package is installed.
    It loads on first use; call ``warm_up()`` at startup to pay that cost early.
    """

    def __init__(
        self,
        policies: PolicySet | None = None,
        *,
        use_classifier: bool | None = None,
        classifier: InjectionClassifier | None = None,
    ) -> None:
        self.policies = policies or PolicySet()
        self.pii = PIIScanner()
        self.secrets = SecretsScanner()
        self.harmful = HarmfulScanner()
        self.injection = InjectionHeuristics(rescan=self.harmful.scan)
        if use_classifier is None:
            use_classifier = classifier is not None or classifier_available()
        self.use_classifier = use_classifier
        self._classifier = classifier
        self._deny: dict[str, DenyListScanner] = {}
        self._lock = threading.Lock()
        self._plans: dict[tuple[int, str], tuple[TenantPolicy, Plan]] = {}

    # -- scanners -------------------------------------------------------------------------

    @property
    def classifier(self) -> InjectionClassifier | None:
        if not self.use_classifier:
            return None
        if self._classifier is None:
            self._classifier = get_classifier()
        return self._classifier

    def warm_up(self) -> None:
        """Load the classifier now (no-op when disabled)."""
        if self.classifier is not None:
            self.classifier.scan("warm up")

    def deny_scanner(self, policy: TenantPolicy) -> DenyListScanner | None:
        if policy.deny_list.empty():
            return None
        with self._lock:
            scanner = self._deny.get(policy.name)
            if scanner is None or scanner.config != policy.deny_list:
                scanner = self._deny[policy.name] = DenyListScanner(policy.deny_list)
        return scanner

    def local_scanners(self, policy: TenantPolicy, direction: Direction, categories: frozenset[Category] | None = None) -> list[Scanner]:
        """Span scanners whose hits depend only on nearby text (safe to run on a window)."""
        cats = policy.direction(direction).active() if categories is None else categories
        out: list[Scanner] = []
        if Category.PII in cats:
            out.append(self.pii)
        if Category.SECRET in cats:
            out.append(self.secrets)
        if cats & {Category.PROMPT_INJECTION, Category.JAILBREAK}:
            out.append(self.injection)
        if cats & set(HARM_CATEGORIES):
            out.append(self.harmful)
        if Category.DENY_LIST in cats:
            deny = self.deny_scanner(policy)
            if deny is not None:
                out.append(deny)
        return out

    def plan(self, policy: TenantPolicy, direction: Direction) -> "Plan":
        """What a scan of this policy and direction runs; policies are immutable, so this is
        worked out once per policy object (a hot-path saving of ~15 µs per scan)."""
        key = (id(policy), direction)
        cached = self._plans.get(key)
        if cached is not None and cached[0] is policy:  # the strong reference keeps id() unique
            return cached[1]
        cats = policy.direction(direction).active()
        plan = Plan(cats, tuple(self.local_scanners(policy, direction, cats)),
                    bool(cats & {Category.PROMPT_INJECTION, Category.JAILBREAK}), bool(cats & set(HARM_CATEGORIES)))
        with self._lock:
            if len(self._plans) > 1024:  # ad-hoc policies (moderation) must not grow this for ever
                self._plans.clear()
            self._plans[key] = (policy, plan)
        return plan

    def raw_hits(self, text: str, policy: TenantPolicy, direction: Direction, *, classifier: bool = True) -> list[Hit]:
        """Every hit of the scanners the policy enables for this direction, before policy."""
        plan = self.plan(policy, direction)
        cats = plan.categories
        hits: list[Hit] = []
        for scanner in plan.scanners:
            hits.extend(scanner.scan(text))
        clf = self.classifier if classifier and (plan.attack or plan.harm) and text.strip() else None
        if clf is not None:
            hits.extend(clf.scan_many([text], harm=plan.harm)[0])
        return [h for h in hits if h.category in cats]

    # -- decisions ------------------------------------------------------------------------

    def decide(self, text: str, hits: Sequence[Hit], policy: TenantPolicy, direction: Direction) -> Verdict:
        """Apply the policy to hits: keep those that pass a threshold, redact, pick a block."""
        rules = policy.direction(direction)
        findings = []
        for h in hits:
            action = rules.decide(h)
            if action == "block" and h.abstain:
                action = "flag"  # the classifier outside its distribution never blocks alone
            if action is not None:
                findings.append(Finding(h, action))
        findings.sort(key=lambda f: (f.hit.start, f.hit.end))
        verdict = Verdict(direction=direction, tenant=policy.name, findings=findings, text=text)
        if not findings:
            return verdict
        strongest = max(findings, key=lambda f: (STRENGTH[f.action], f.hit.score))
        verdict.action = strongest.action  # type: ignore[assignment]
        redacted = [f.hit for f in findings if f.action in ("redact", "block")]
        if redacted:
            verdict.text = redact(text, redacted)
        if strongest.action == "block":
            verdict.blocked_category = strongest.hit.category
        return verdict

    def scan(self, text: str, tenant: str | None, direction: Direction) -> Verdict:
        policy = self.policies.for_tenant(tenant)
        return self.decide(text, self.raw_hits(text, policy, direction), policy, direction)

    def scan_input(self, text: str, tenant: str | None = None) -> Verdict:
        """Scan a prompt before it reaches the model."""
        return self.scan(text, tenant, "input")

    def scan_output(self, text: str, tenant: str | None = None) -> Verdict:
        """Scan a complete (non-streamed) completion before it reaches the client."""
        return self.scan(text, tenant, "output")

    def stream_redactor(self, tenant: str | None = None, *, json: bool = False) -> "StreamRedactor":
        """Incremental output scanner for one streamed text (``json``: tool-call arguments,
        whose redactions must leave valid JSON)."""
        from .stream import StreamRedactor

        return StreamRedactor(self, self.policies.for_tenant(tenant), json=json)


from .stream import StreamRedactor  # noqa: E402  (re-exported: safety.engine.StreamRedactor)

__all__ = ["Finding", "SafetyEngine", "StreamRedactor", "Verdict"]
