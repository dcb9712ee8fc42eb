"""Safety layer: offline scanners, per-tenant policies, streaming redaction, moderation.

The gateway uses::

    engine = SafetyEngine(PolicySet.from_dict(config.get("safety")))
    verdict = engine.scan_input(prompt, tenant)      # Verdict: action, text, findings, error_body()
    redactor = engine.stream_redactor(tenant)        # feed(chunk) -> str, finish() -> str
    body = moderate(engine, inputs, tenant)          # POST /v1/moderations response body
"""

from .engine import Finding, SafetyEngine, Verdict
from .moderation import moderate, moderation_response
from .policy import DEFAULT_CONFIG, DenyListConfig, PolicySet, Rule, TenantPolicy
from .stream import StreamRedactor
from .types import Category, Hit, ScanResult

__all__ = [
    "DEFAULT_CONFIG",
    "Category",
    "DenyListConfig",
    "Finding",
    "Hit",
    "PolicySet",
    "Rule",
    "SafetyEngine",
    "ScanResult",
    "StreamRedactor",
    "TenantPolicy",
    "Verdict",
    "moderate",
    "moderation_response",
]
