"""Safety layer: offline scanners, per-tenant policies, streaming redaction, moderation,
review queue.

The gateway uses::

    runtime = settings.safety.build_runtime()        # SafetyConfig -> AsyncSafety (None: disabled)
    verdict = await runtime.scan(prompt, tenant, "input")   # Verdict: action, text, findings, error_body()
    redactor = runtime.engine.stream_redactor(tenant)       # feed(chunk) -> str, finish() -> str
    body = await runtime.moderate(inputs, tenant)           # POST /v1/moderations response body

and synchronously, without the gateway::

    engine = SafetyEngine(PolicySet.from_dict(config))
    verdict = engine.scan_input(prompt, tenant)
    body = moderate(engine, inputs, tenant)

``safety.review`` keeps the review queue in the ledger database (the only use of ``ledger``).
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
