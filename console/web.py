"""Request handling shared by the console's pages: who is viewing, forms and their CSRF check,
and one route class that turns every failure into an error page (never a stack trace)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from .deps import ConsoleDeps, Principal
from .render import ConsoleError, error_page
from .session import COOKIE, Session, Sessions, csrf_ok

log = logging.getLogger("inferwatch.console")
MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    session: Session

    @property
    def tenant(self) -> str | None:
        """The tenant whose data this viewer is limited to; None for the platform admin."""
        return self.principal.tenant

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def actor(self) -> str:
        """The name the audit log records for this viewer's changes, as the API does."""
        return self.principal.key_id or "admin"

    @property
    def label(self) -> str:
        role = "admin" if self.is_admin else "tenant"
        return f"{role} · {self.tenant}" if self.tenant else role

    @property
    def csrf(self) -> str:
        return self.session.csrf


class NeedsLogin(Exception):
    pass


class ConsoleRoute(APIRoute):
    """Bad query parameters, a missing session and our own ConsoleError become pages; anything
    else is logged and answered with a plain 500 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except NeedsLogin:
                if request.method == "GET":
                    return RedirectResponse("/ui/login", status_code=303)
                return error_page(401, "Sign in first: your session has ended or was never started.")
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body"))
                return error_page(400, f"{where or 'input'}: {first.get('msg', 'malformed')}")
            except ConsoleError as exc:
                return error_page(exc.status, exc.message)
            except Exception:
                log.exception("console page failed: %s", request.url.path)
                return error_page(500, "Something went wrong on our side; the error is in the gateway's log.")

        return handler


class Gate:
    """Turns the session cookie into a Viewer, checking the key again on every request."""

    def __init__(self, deps: ConsoleDeps, sessions: Sessions) -> None:
        self.deps = deps
        self.sessions = sessions

    async def principal(self, key: str) -> Principal | None:
        """The key's owner, None for a bad key; other failures (the key store away) are pages."""
        try:
            return await self.deps.authenticate(f"Bearer {key}")
        except Exception as exc:  # the gateway's error type: only its status and message are read
            status = getattr(exc, "status", None)
            if status == 401:
                return None
            if isinstance(status, int):
                raise ConsoleError(status, getattr(exc, "message", "The key cannot be checked now.")) from exc
            raise

    async def viewer(self, request: Request) -> Viewer:
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None:
            raise NeedsLogin()
        who = await self.principal(session.key)
        if who is None:
            raise NeedsLogin()
        return Viewer(who, session)

    async def admin(self, request: Request) -> Viewer:
        v = await self.viewer(request)
        if not v.is_admin:
            raise ConsoleError(
                403, "This page needs an admin key; a tenant key sees its own overview, requests and cost."
            )
        return v

    async def post(self, request: Request, *, admin: bool = False) -> tuple[Viewer, dict[str, str]]:
        """A state-changing form: the session, then its CSRF token, then the fields."""
        v = await (self.admin(request) if admin else self.viewer(request))
        fields = await form(request)
        if not csrf_ok(v.session, fields.get("csrf")):
            raise ConsoleError(403, "The form's CSRF token is missing or wrong: reload the page and send it again.")
        return v, fields


async def form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form (first value of each)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ConsoleError(400, "Forms are sent as application/x-www-form-urlencoded.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ConsoleError(413, f"A form is at most {MAX_FORM_BYTES} bytes.")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConsoleError(400, "The form could not be read.") from exc
    out: dict[str, str] = {}
    for k, val in pairs:
        out.setdefault(k, val)
    return out


def back(path: str) -> RedirectResponse:
    """After a form: back to a page (POST, redirect, GET)."""
    return RedirectResponse(path, status_code=303)
