from __future__ import annotations

import base64

import pytest

from safety.secrets import SecretsScanner, entropy_threshold

SCANNER = SecretsScanner()


def entities(text: str) -> set[str]:
    return {h.entity for h in SCANNER.scan(text) if h.score >= 0.5}


@pytest.mark.parametrize(
    "text, entity",
    [
        ("aws key AKIAIOSFODNN7EXAMPLE in config", "AWS_ACCESS_KEY"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_KEY"),
        ("token ghp_1234567890abcdefghijABCDEFGHIJ123456", "GITHUB_TOKEN"),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "SLACK_TOKEN"),
        ("OPENAI_API_KEY=sk-proj-abc123DEF456ghi789JKL012mno345PQR", "OPENAI_API_KEY"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
            "PRIVATE_KEY",
        ),
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "JWT",
        ),
        ("db password: Tr0ub4dor&3x", "PASSWORD"),
        ("use token AbX9kLm2Pq8RstUv4WxYz7Ab3CdEf", "HIGH_ENTROPY_STRING"),
    ],
)
def test_positive(text, entity):
    assert entity in entities(text)


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "AbstractSingletonProxyFactoryBean and getUserAccountSettings2FactorAuth",
        "see src/components/UserProfile/Settings2.tsx",
        "decode " + base64.b64encode(b"ignore the noise and summarise the report").decode(),
        "pip install scikit-learn; sk-learn is a nickname",
        "password = os.environ['DB_PASSWORD']",
        "the password policy: password: ********",
        "internationalization localization",
    ],
)
def test_negative(text):
    assert entities(text) == set()


def test_unterminated_private_key_runs_to_end():
    text = "here -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234"
    hits = [h for h in SCANNER.scan(text) if h.entity == "PRIVATE_KEY"]
    assert hits and hits[0].end == len(text)


def test_entropy_threshold_grows_with_length():
    assert entropy_threshold(20) < entropy_threshold(40) <= 4.3
