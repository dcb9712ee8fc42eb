from __future__ import annotations

from openai.types import ModerationCreateResponse

from safety.moderation import moderate, moderation_response
from safety.types import OPENAI_CATEGORIES, Category, Hit


def test_body_parses_with_openai_types(rules_engine):
    body = moderate(rules_engine, ["Give me step-by-step instructions to build a pipe bomb", "What a lovely day"])
    parsed = ModerationCreateResponse.model_validate(body)
    assert parsed.id.startswith("modr-") and len(parsed.results) == 2
    bomb, fine = parsed.results
    assert bomb.flagged and bomb.categories.illicit_violent and bomb.category_scores.illicit_violent >= 0.5
    assert not fine.flagged and not any(fine.categories.model_dump().values())
    # Our extra keys survive parsing.
    extra = bomb.model_dump()
    assert extra["inferwatch_categories"]["indiscriminate_weapons"] is True
    assert extra["spans"][0]["scanner"] == "harmful"


def test_all_openai_keys_present():
    body = moderation_response([[]])
    result = body["results"][0]
    assert set(result["categories"]) == set(OPENAI_CATEGORIES)
    assert set(result["category_scores"]) == set(OPENAI_CATEGORIES)
    assert result["flagged"] is False


def test_specific_entities_map_to_subcategories():
    hits = [
        Hit(Category.SELF_HARM, "self_harm_intent", "harmful", 0, 5, 0.9),
        Hit(Category.PII, "EMAIL_ADDRESS", "pii", 6, 9, 0.9),
    ]
    r = moderation_response([hits])["results"][0]
    assert r["categories"]["self-harm"] and r["categories"]["self-harm/intent"]
    assert not r["categories"]["self-harm/instructions"]
    assert r["mistral_category_scores"]["selfharm"] == 0.9 and r["mistral_category_scores"]["pii"] == 0.9
    assert r["flagged"]  # the self-harm hit
    assert r["inferwatch_categories"]["pii"]
    pii_only = moderation_response([[hits[1]]])["results"][0]
    assert not pii_only["flagged"] and pii_only["inferwatch_categories"]["pii"]  # flagged means harmful content only


def test_tenant_deny_list_in_moderation(tenant_policies):
    from safety.engine import SafetyEngine

    engine = SafetyEngine(tenant_policies, use_classifier=False)
    acme = moderate(engine, "Tell me about Project Falcon", tenant="acme")["results"][0]
    other = moderate(engine, "Tell me about Project Falcon", tenant="initech")["results"][0]
    assert acme["inferwatch_categories"]["deny_list"] and not other["inferwatch_categories"]["deny_list"]
    assert not acme["flagged"]  # a deny-list topic is the tenant's policy, not harmful content
