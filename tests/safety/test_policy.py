from __future__ import annotations

import pytest
from pydantic import ValidationError

from safety.policy import PolicySet
from safety.types import Category, Hit


def hit(category: Category, score: float, entity: str = "x", scanner: str = "test") -> Hit:
    return Hit(category, entity, scanner, 0, 1, score)


def test_default_policy_actions():
    p = PolicySet().default
    assert p.input.decide(hit(Category.JAILBREAK, 0.9, scanner="injection")) == "block"
    assert p.input.decide(hit(Category.JAILBREAK, 0.9, scanner="injection_classifier")) == "flag"
    assert p.input.decide(hit(Category.JAILBREAK, 0.6)) == "flag"
    assert p.input.decide(hit(Category.JAILBREAK, 0.3)) is None
    assert p.input.decide(hit(Category.PII, 0.9, "EMAIL_ADDRESS")) == "redact"
    assert p.input.decide(hit(Category.PII, 0.9, "PERSON")) == "flag"
    assert p.output.decide(hit(Category.SECRET, 0.9)) == "redact"
    assert Category.PROMPT_INJECTION not in p.output.active()


def test_a_rule_can_name_the_scanners_it_acts_on():
    rules = [{"action": "block", "scanners": ["harmful"]}, {"action": "flag"}]
    d = PolicySet.from_dict({"default": {"input": {"S1": rules}}}).default.input
    assert d.decide(hit(Category.VIOLENT_CRIMES, 0.9, scanner="harmful")) == "block"
    assert d.decide(hit(Category.VIOLENT_CRIMES, 0.9, scanner="guard")) == "flag"
    assert d.acting() == {Category.VIOLENT_CRIMES}
    assert d.acting("guard") == frozenset() and d.acting("harmful") == {Category.VIOLENT_CRIMES}


def test_shorthands_groups_and_codes():
    ps = PolicySet.from_dict(
        {
            "default": {
                "input": {"harmful": "flag", "S9": {"action": "block", "threshold": 0.7}, "pii": [{"action": "redact"}]}
            }
        }
    )
    d = ps.default.input
    assert d.decide(hit(Category.INDISCRIMINATE_WEAPONS, 0.75)) == "block"
    assert d.decide(hit(Category.HATE, 0.75)) == "flag"
    assert d.decide(hit(Category.PII, 0.5)) == "redact"
    assert ps.default.output.active() == frozenset()


def test_yaml_loading():
    ps = PolicySet.from_yaml("tenants:\n  t1:\n    output:\n      secret: block\n")
    assert ps.for_tenant("t1").output.decide(hit(Category.SECRET, 0.9)) == "block"
    assert ps.for_tenant("other").output.decide(hit(Category.SECRET, 0.9)) == "redact"


def test_tenants_do_not_leak(tenant_policies):
    acme = tenant_policies.for_tenant("acme")
    initech = tenant_policies.for_tenant("initech")
    default = tenant_policies.for_tenant("unknown")
    email = hit(Category.PII, 0.9, "EMAIL_ADDRESS")
    assert acme.input.decide(email) == "block"
    assert initech.input.decide(email) == "redact"
    assert default.input.decide(email) == "redact"
    assert initech.input.decide(hit(Category.HATE, 0.6)) == "block"
    assert acme.input.decide(hit(Category.HATE, 0.6)) == "flag"
    assert "Project Falcon" in acme.deny_list.phrases
    assert initech.deny_list.empty() and default.deny_list.empty()
    # Tenant policies inherit what they do not name.
    assert acme.input.decide(hit(Category.JAILBREAK, 0.9, scanner="injection")) == "block"


def test_invalid_config_rejected():
    with pytest.raises(ValueError):
        PolicySet.from_dict({"default": {"input": {"not_a_category": "flag"}}})
    with pytest.raises(ValidationError):
        PolicySet.from_dict({"default": {"input": {"pii": {"action": "explode"}}}})
    with pytest.raises(ValidationError):
        PolicySet.from_dict({"default": {"input": {"pii": {"action": "flag", "threshold": 1.5}}}})
    with pytest.raises(ValueError):
        PolicySet.from_dict({"tenants": {"t": {"inputs": {}}}})


def test_off_disables_category():
    ps = PolicySet.from_dict({"tenants": {"t": {"input": {"secret": "off"}}}})
    assert Category.SECRET not in ps.for_tenant("t").input.active()
    assert Category.SECRET in ps.for_tenant("x").input.active()
