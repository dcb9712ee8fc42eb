"""OpenAI-compatible moderation bodies (``POST /v1/moderations``) built from scanner hits."""

from __future__ import annotations

import uuid
from typing import Iterable, Sequence

from .types import (
    HARM_CATEGORIES,
    MISTRAL_CATEGORIES,
    OPENAI_CATEGORIES,
    Category,
    Hit,
    mistral_categories_for,
    openai_categories_for,
)

DEFAULT_MODEL = "inferwatch-moderation-1"
HARM = frozenset(HARM_CATEGORIES)
FLAG_THRESHOLD = 0.5


def moderation_result(hits: Iterable[Hit], threshold: float = FLAG_THRESHOLD) -> dict:
    """One entry of ``results``: every OpenAI category key present, plus our own keys.

    ``flagged`` means harmful content, as in OpenAI's API: a hit in one of S1-S14 reaching
    ``threshold``. PII, secrets, injection and deny-list hits are reported in the
    ``inferwatch_*`` fields and spans only (whether they matter is the tenant's policy).
    """
    hits = list(hits)
    scores = {k: 0.0 for k in OPENAI_CATEGORIES}
    mistral = {k: 0.0 for k in MISTRAL_CATEGORIES}
    ours = {c.value: 0.0 for c in Category}
    for h in hits:
        for key in openai_categories_for(h):
            scores[key] = max(scores[key], h.score)
        for key in mistral_categories_for(h):
            mistral[key] = max(mistral[key], h.score)
        ours[h.category.value] = max(ours[h.category.value], h.score)
    flagged_hits = [h for h in hits if h.score >= threshold]
    return {
        "flagged": any(h.category in HARM for h in flagged_hits),
        "categories": {k: v >= threshold for k, v in scores.items()},
        "category_scores": {k: round(v, 4) for k, v in scores.items()},
        "category_applied_input_types": {k: ["text"] for k in OPENAI_CATEGORIES},
        # Project extensions (ignored by OpenAI clients, kept by pydantic's extra fields):
        "inferwatch_categories": {k: v >= threshold for k, v in ours.items()},
        "inferwatch_category_scores": {k: round(v, 4) for k, v in ours.items()},
        "mistral_category_scores": {k: round(v, 4) for k, v in mistral.items()},
        "spans": [h.to_dict() for h in sorted(flagged_hits, key=lambda h: (h.start, h.end))],
        "scanners": sorted({h.scanner for h in flagged_hits}),
    }


def moderation_response(
    results_hits: Sequence[Iterable[Hit]], model: str = DEFAULT_MODEL, threshold: float = FLAG_THRESHOLD
) -> dict:
    """Whole response body: ``{"id", "model", "results": [...]}``, one result per input."""
    return {
        "id": f"modr-{uuid.uuid4().hex}",
        "model": model,
        "results": [moderation_result(h, threshold) for h in results_hits],
    }


def moderate(engine, inputs: str | Sequence[str], tenant: str | None = None, model: str = DEFAULT_MODEL) -> dict:
    """Scan each input with every scanner (as an input, the tenant's deny list included) and
    build the moderation body. Policy actions are not applied: moderation only reports."""
    from .policy import PolicySet

    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    policy = engine.policies.for_tenant(tenant)
    everything = PolicySet(default={"input": {"all": "flag"}, "deny_list": policy.deny_list.model_dump()}).default
    everything = everything.model_copy(update={"name": policy.name})
    results = []
    clf = engine.classifier
    clf_hits = clf.scan_many(texts) if clf is not None and texts else [[] for _ in texts]
    for text, extra in zip(texts, clf_hits, strict=True):
        hits = engine.raw_hits(text, everything, "input", classifier=False)
        results.append(hits + extra)
    return moderation_response(results, model=model)
