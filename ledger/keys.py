"""API keys: random, shown once, stored only as a SHA-256 hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "iw"


@dataclass(frozen=True)
class NewKey:
    key_id: str  # public part, safe to log and show in lists
    secret: str  # the whole key, shown once

    @property
    def secret_hash(self) -> str:
        return hash_secret(self.secret)


def generate() -> NewKey:
    key_id = secrets.token_hex(6)
    return NewKey(key_id, f"{PREFIX}-{key_id}-{secrets.token_urlsafe(24)}")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(secret: str) -> str | None:
    """The key id embedded in a key, or None when it is not one of ours."""
    parts = secret.split("-", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
