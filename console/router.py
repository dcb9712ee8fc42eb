"""The console's router: sign-in and sign-out, vendored static files, and every page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from . import cost, explorer, overview, registry, review, rollouts, slos
from .deps import ConsoleDeps
from .render import HEADERS, page
from .session import COOKIE, LOGIN_COOKIE, Sessions, Signer
from .web import ConsoleRoute, Gate, back, form

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC_FILES = {p.name: p for p in STATIC.iterdir() if p.suffix in STATIC_TYPES}
PAGES = (overview, slos, explorer, review, rollouts, cost, registry)


def build_console_router(deps: ConsoleDeps) -> APIRouter:
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    sessions = Sessions(Signer(deps.secret), deps.session_ttl_s)
    gate = Gate(deps, sessions)

    def cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", path="/", secure=False
        )  # plain http on localhost in the embedded default; a TLS proxy adds Secure

    def login_page(status: int = 200, error: str | None = None) -> HTMLResponse:
        token = sessions.login_token()
        response = page("login.html.jinja", status, viewer=None, active="login", csrf=token, error=error)
        cookie(response, LOGIN_COOKIE, token, 600)
        return response

    @router.get("/ui/login", response_class=HTMLResponse)
    async def login_form() -> HTMLResponse:
        return login_page()

    @router.post("/ui/login", response_model=None)
    async def login(request: Request) -> Response:
        fields = await form(request)
        if not sessions.login_token_ok(request.cookies.get(LOGIN_COOKIE), fields.get("csrf")):
            return login_page(403, "The sign-in form expired or did not come from this console; try again.")
        key = fields.get("key", "").strip()
        who = await gate.principal(key) if key else None
        if who is None:
            return login_page(401, "That key is not valid (or was revoked).")
        value, _ = sessions.issue(key)
        response = back("/ui")
        cookie(response, COOKIE, value, int(deps.session_ttl_s))
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @router.post("/ui/logout", response_model=None)
    async def logout(request: Request) -> Response:
        await gate.post(request)
        response = back("/ui/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/ui/static/{name}", response_model=None)
    async def static(name: str) -> Response:
        path = STATIC_FILES.get(name)
        if path is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            path.read_bytes(),
            media_type=STATIC_TYPES[path.suffix],
            headers={**HEADERS, "Cache-Control": "public, max-age=3600"},
        )

    for module in PAGES:
        module.routes(router, deps, gate)
    return router
