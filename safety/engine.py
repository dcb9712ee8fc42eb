"""SafetyEngine: run the scanners a tenant's policy asks for and decide block / redact / flag."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, Sequence

from .classifier import SCANNER as CLASSIFIER
from .classifier import InjectionClassifier, classifier_available, get_classifier
from .denylist import DenyListScanner
from .guard import SCANNER as GUARD
from .harmful import HarmfulScanner, harm_scanner
from .injection import InjectionHeuristics
from .pii import PIIScanner
from .policy import PolicySet, TenantPolicy
from .secrets import SecretsScanner
from .spans import redact
from .stream import StreamRedactor
from .types import HARM_CATEGORIES, Category, Direction, Hit
from .verdict import Finding, Verdict, VerdictAction, strongest


class Scanner(Protocol):
    name: str
    max_span: int

    def scan(self, text: str) -> list[Hit]: ...


ATTACK = frozenset({Category.PROMPT_INJECTION, Category.JAILBREAK})
HARM = frozenset(HARM_CATEGORIES)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one scan runs: the span scanners and the categories their hits count for, and
    the categories the classifier's and the guard model's hits count for (empty: it does not run)."""

    categories: frozenset[Category]
    scanners: tuple[Scanner, ...]
    classify: frozenset[Category] = frozenset()
    guard: frozenset[Category] = frozenset()  # harm, from a guard model (the classifier's harm head its fallback)

    @property
    def attack(self) -> bool:
        """Injection or jailbreak wanted of the classifier (its first signal)."""
        return bool(self.classify & ATTACK)

    @property
    def harm(self) -> bool:
        """Any S1-S14 category wanted of the classifier (its second)."""
        return bool(self.classify & HARM)

    @property
    def empty(self) -> bool:
        return not self.categories and not self.classify and not self.guard


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
        classifier_threads: int | None = None,
    ) -> None:
        self.policies = policies or PolicySet()
        self.pii = PIIScanner()
        self.secrets = SecretsScanner()
        self.harmful = HarmfulScanner()
        self.injection = InjectionHeuristics(rescan=self.harmful.scan)
        if use_classifier is None:
            use_classifier = classifier is not None or classifier_available()
        self.use_classifier = use_classifier
        self.classifier_threads = classifier_threads  # torch's, set when the model loads here
        self._classifier = classifier
        self._deny: dict[str, DenyListScanner] = {}
        self._lock = threading.Lock()
        self._plans: dict[tuple[int, str, bool, bool], tuple[TenantPolicy, tuple[Plan, Plan]]] = {}

    # -- scanners -------------------------------------------------------------------------

    @property
    def classifier(self) -> InjectionClassifier | None:
        if not self.use_classifier:
            return None
        if self._classifier is None:
            if self.classifier_threads:
                import torch

                torch.set_num_threads(self.classifier_threads)
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

    def local_scanners(
        self, policy: TenantPolicy, direction: Direction, categories: frozenset[Category] | None = None
    ) -> list[Scanner]:
        """Span scanners. Their hits depend on the text within ``max_span``, except the harm
        rules' scores, which read the whole sentence (``stream.SentenceScanner``)."""
        cats = policy.direction(direction).active() if categories is None else categories
        out: list[Scanner] = []
        if Category.PII in cats:
            out.append(self.pii)
        if Category.SECRET in cats:
            out.append(self.secrets)
        if cats & {Category.PROMPT_INJECTION, Category.JAILBREAK}:
            out.append(self.injection)
        if cats & HARM:
            out.append(self.harmful if HARM <= cats else harm_scanner(frozenset(cats & HARM)))
        if Category.DENY_LIST in cats:
            deny = self.deny_scanner(policy)
            if deny is not None:
                out.append(deny)
        return out

    def split(
        self, policy: TenantPolicy, direction: Direction, *, classifier: bool, guard: bool = False
    ) -> tuple[Plan, Plan]:
        """(before the answer, after it). Before: what can change or stop the text, i.e. the
        span scanners of categories with a redact or block rule, and the classifier (or guard
        model) when such a rule applies to its hits. After: the rest, whose findings can only
        be flagged, so they need no answer before the response. Policies are immutable, so
        this is worked out once per policy object (a hot-path saving of ~15 µs per scan)."""
        key = (id(policy), direction, classifier, guard)
        cached = self._plans.get(key)
        if cached is not None and cached[0] is policy:  # the strong reference keeps id() unique
            return cached[1]
        rules = policy.direction(direction)
        cats, acting = rules.active(), rules.acting()
        by_guard = cats & HARM if guard else frozenset()
        classify = (cats & (ATTACK | HARM) if classifier else frozenset()) - by_guard
        clf_now = bool(classify & rules.acting(CLASSIFIER))
        # the classifier's harm head answers when the guard cannot, so either one's block rule counts
        guard_now = bool(by_guard & (rules.acting(GUARD) | rules.acting(CLASSIFIER)))
        split = (
            Plan(
                acting,
                tuple(self.local_scanners(policy, direction, acting)),
                classify if clf_now else frozenset(),
                by_guard if guard_now else frozenset(),
            ),
            Plan(
                cats - acting,
                tuple(self.local_scanners(policy, direction, cats - acting)),
                frozenset() if clf_now else classify,
                frozenset() if guard_now else by_guard,
            ),
        )
        with self._lock:
            if len(self._plans) > 1024:  # ad-hoc policies (moderation) must not grow this for ever
                self._plans.clear()
            self._plans[key] = (policy, split)
        return split

    def span_hits(self, text: str, plan: Plan) -> list[Hit]:
        """The hits of a plan's span scanners (the classifier's are the caller's)."""
        return [h for scanner in plan.scanners for h in scanner.scan(text) if h.category in plan.categories]

    def raw_hits(self, text: str, policy: TenantPolicy, direction: Direction, *, classifier: bool = True) -> list[Hit]:
        """Every hit of the scanners the policy enables for this direction, before policy."""
        hits: list[Hit] = []
        for plan in self.split(policy, direction, classifier=classifier and self.use_classifier):
            hits.extend(self.span_hits(text, plan))
            clf = self.classifier if plan.classify and text.strip() else None
            if clf is not None:
                hits.extend(h for h in clf.scan_many([text], harm=plan.harm)[0] if h.category in plan.classify)
        return hits

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
        top = strongest(findings)
        verdict.action = top.action  # type: ignore[assignment]
        redacted = [f.hit for f in findings if f.action in ("redact", "block")]
        if redacted:
            verdict.text = redact(text, redacted)
        if top.action == "block":
            verdict.blocked_category = top.hit.category
        return verdict

    def scan(self, text: str, tenant: str | None, direction: Direction, *, classifier: bool = True) -> Verdict:
        policy = self.policies.for_tenant(tenant)
        return self.decide(text, self.raw_hits(text, policy, direction, classifier=classifier), policy, direction)

    def scan_input(self, text: str, tenant: str | None = None) -> Verdict:
        """Scan a prompt before it reaches the model."""
        return self.scan(text, tenant, "input")

    def scan_output(self, text: str, tenant: str | None = None) -> Verdict:
        """Scan a complete (non-streamed) completion before it reaches the client."""
        return self.scan(text, tenant, "output")

    def stream_redactor(self, tenant: str | None = None, *, json: bool = False) -> "StreamRedactor":
        """Incremental output scanner for one streamed text (``json``: tool-call arguments,
        whose redactions must leave valid JSON)."""
        return StreamRedactor(self, self.policies.for_tenant(tenant), json=json)


__all__ = ["Finding", "SafetyEngine", "StreamRedactor", "Verdict", "VerdictAction"]
