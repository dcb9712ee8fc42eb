"""Who is calling: tenant API keys and the admin key."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from ledger import keys
from ledger.governance import GovernanceStore, KeyRow

from .errors import ErrorCode, GatewayError


@dataclass(frozen=True)
class Principal:
    tenant: str | None  # None for the platform admin key
    key_id: str | None
    is_admin: bool


ADMIN = Principal(None, "admin", True)


class Authenticator:
    """Checks bearer keys against hashes in the database, with a short cache so the request
    path does not query the database on every call (a revocation applies within `ttl_s`)."""

    def __init__(self, store: GovernanceStore, admin_key: str | None, ttl_s: float) -> None:
        self.store = store
        self.admin_key = admin_key
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, KeyRow | None]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        secret = _bearer(authorization)
        if secret is None:
            raise GatewayError(
                401,
                "Missing API key: send 'Authorization: Bearer <key>'.",
                ErrorCode.MISSING_API_KEY,
            )
        if self.admin_key and hmac.compare_digest(secret.encode(), self.admin_key.encode()):
            return ADMIN
        key_id = keys.key_id_of(secret)
        row = await self._lookup(key_id) if key_id else None
        if row is None or row.revoked or not keys.matches(secret, row.secret_sha256):
            raise GatewayError(401, "Invalid or revoked API key.", ErrorCode.INVALID_API_KEY)
        return Principal(row.tenant, row.key_id, row.is_admin)

    async def _lookup(self, key_id: str) -> KeyRow | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        try:
            row = await asyncio.to_thread(self.store.key, key_id)
        except SQLAlchemyError as exc:
            # Database away: keep serving callers we already know (a revocation made during
            # the outage applies when it is back); unknown keys cannot be checked.
            if hit:
                return hit[1]
            raise GatewayError(
                503,
                "API keys cannot be checked right now; retry shortly.",
                ErrorCode.AUTH_UNAVAILABLE,
                headers={"Retry-After": "5"},
            ) from exc
        if len(self._cache) > 100_000:  # unknown key ids must not grow this without bound
            self._cache.clear()
        self._cache[key_id] = (now, row)
        return row

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def require_admin(p: Principal) -> None:
    if not p.is_admin:
        raise GatewayError(403, "This route needs an admin key.", ErrorCode.ADMIN_REQUIRED)
