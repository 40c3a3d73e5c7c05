"""The HTTP side every page shares: security headers, the session cookie, CSRF, templates.

Every response is ``Cache-Control: no-store`` with a Content-Security-Policy that allows no
script at all and no framing; the session cookie is ``Secure; HttpOnly; SameSite=Strict``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE: Final = "bitkey_session"
CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: Final = (
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
FORM_LIMITS: Final = {"max_files": 0, "max_fields": 12, "max_part_size": 4096}

TEMPLATES: Final = Environment(
    loader=PackageLoader("bitkey_dir.portal", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)


class SecurityHeaders:
    """ASGI middleware: the headers above on every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                # A page may widen form-action for one identity platform (with_form_targets).
                own = [(k, v) for k, v in given if k.lower() == b"content-security-policy"]
                names = {name for name, _ in HEADERS}
                kept = [(k, v) for k, v in given if k.lower() not in names]
                fixed = [(k, v) for k, v in HEADERS if not (own and k == own[0][0].lower())]
                message["headers"] = [*kept, *own[:1], *fixed]
            await send(message)

        await self.app(scope, receive, sending)


def with_form_targets(response: Response, origins: tuple[str, ...]) -> Response:
    """The page's forms may also lead to ``origins`` (an identity platform's sign-in page,
    reached by a redirect after the form's POST, which form-action governs too)."""
    if origins:
        widened = CSP.replace("form-action 'self'", "form-action 'self' " + " ".join(origins))
        response.headers["content-security-policy"] = widened
    return response


def page(name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render(**context), status_code=status)


def set_session_cookie(response: Response, session_id: str) -> None:
    response.set_cookie(COOKIE, session_id, httponly=True, secure=True, samesite="strict")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, httponly=True, secure=True, samesite="strict")


def csrf_matches(expected: str, form: Mapping[str, Any]) -> bool:
    given = form.get("csrf")
    return isinstance(given, str) and secrets.compare_digest(given, expected)


def field(form: Mapping[str, Any], name: str, longest: int) -> str:
    """A text field of the form, stripped; '' when absent, not text, or too long."""
    value = form.get(name)
    if not isinstance(value, str) or len(value) > longest:
        return ""
    return value.strip()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"
