"""The console's session: the key the person entered, in a signed HttpOnly cookie, and the
CSRF token that every form of that session carries.

The cookie holds the key itself (HttpOnly and SameSite=Strict, so no script and no other site
can read or send it) and is signed, so it cannot be forged or altered; every request checks the
key again through the gateway's authenticator, so a revoked key ends its sessions. No state is
kept on the server: any gateway replica with the same secret reads any session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "iw_session"
LOGIN_COOKIE = "iw_login"  # the CSRF token of the login form, before there is a session


@dataclass(frozen=True)
class Session:
    key: str
    csrf: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 over a purpose and a payload: a login token cannot pass as a session."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the console's session secret needs at least 16 bytes")
        self._secret = secret

    def _mac(self, purpose: str, payload: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}\n{payload}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, payload: str) -> str:
        return f"{payload}.{self._mac(purpose, payload)}"

    def unsign(self, purpose: str, token: str) -> str | None:
        payload, _, mac = token.rpartition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(purpose, payload)):
            return None
        return payload


class Sessions:
    def __init__(self, signer: Signer, ttl_s: float) -> None:
        self.signer = signer
        self.ttl_s = ttl_s

    def issue(self, key: str, now: float | None = None) -> tuple[str, Session]:
        s = Session(key=key, csrf=secrets.token_urlsafe(24), expires=(now or time.time()) + self.ttl_s)
        payload = _b64(json.dumps({"k": s.key, "c": s.csrf, "e": s.expires}).encode())
        return self.signer.sign("session", payload), s

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        payload = self.signer.unsign("session", cookie) if cookie else None
        if payload is None:
            return None
        try:
            d = json.loads(_unb64(payload))
            s = Session(key=str(d["k"]), csrf=str(d["c"]), expires=float(d["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return s if s.expires > (now or time.time()) else None

    def login_token(self) -> str:
        """A fresh CSRF token for the login form, signed so that it cannot be made up."""
        return self.signer.sign("login", secrets.token_urlsafe(24))

    def login_token_ok(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not field or not hmac.compare_digest(cookie, field):
            return False
        return self.signer.unsign("login", cookie) is not None


def csrf_ok(session: Session, field: str | None) -> bool:
    return bool(field) and hmac.compare_digest(session.csrf, field or "")
