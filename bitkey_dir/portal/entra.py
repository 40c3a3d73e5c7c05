"""Signing agents in with Entra ID: OpenID Connect authorization code flow with PKCE,
through MSAL (sources/entra/web_signin.py), the server's app registration proving itself with
its client secret or certificate.

1. ``POST /sign-in/entra`` (the sign-in form's CSRF token, the source): MSAL starts a flow
   (state, nonce, PKCE verifier). The flow stays here, sealed in memory, filed under the
   SHA-256 of its state; the browser gets a random value in a cookie of its own
   (``bitkey_signin``: ``HttpOnly; Secure; SameSite=Lax; Path=/auth/callback``, ten minutes)
   and is sent to the identity platform.
2. ``GET /auth/callback?code=…&state=…`` comes back as a cross-site top-level navigation:
   the session cookie (``SameSite=Strict``) is not sent with it, the Lax one is. The flow is
   taken (once) only when the state names one and the cookie is the one it was given to, and
   only within ten minutes; then MSAL redeems the code with the verifier and checks the ID
   token's nonce. The agent's token cache stays in memory, sealed (their desk's delegation),
   and goes at sign-out.
3. The answer is a page of the portal's own that moves on to the agent's home page: a redirect
   would still be part of the cross-site navigation, without the new Strict session cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bitkey_dir.client import Client
from bitkey_dir.core.display import safe
from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.portal.desks import new_entra_desk
from bitkey_dir.portal.settings import CALLBACK
from bitkey_dir.portal.web import FORM_LIMITS, client_address, csrf_matches, field, page
from bitkey_dir.runtime.delegation import Delegation, WebSignIn
from bitkey_dir.runtime.sealed import Sealed

if TYPE_CHECKING:
    from bitkey_dir.portal.desks import Desk
    from bitkey_dir.portal.limits import Window
    from bitkey_dir.portal.sessions import Session
    from bitkey_dir.portal.settings import ServeSettings
    from bitkey_dir.runtime.config import Config

log = logging.getLogger("bitkey_dir.portal")
FLOW_COOKIE: Final = "bitkey_signin"
FLOW_LIFETIME: Final = 600  # seconds: as long as the identity platform's codes live
MOST_FLOWS: Final = 10_000  # sign-ins under way at once; more is a flood, not agents
LONGEST_STATE: Final = 256  # MSAL's states are 16 characters
LONGEST_CODE: Final = 4096  # Entra's codes are about a kilobyte
NOT_HERE: Final = "This sign-in was not started here, or was used already: sign in again."
ANSWER_FIELDS: Final = ("code", "state", "error", "error_description", "client_info")
ROTATION_OFF: Final = (
    "Rotating keys from the portal is off for Entra ID sign-ins: an administrator sets "
    "entra_rotation = true in [serve] and grants the app "
    "DeviceManagementManagedDevices.ReadWrite.All."
)


class Portal(Protocol):
    """What the Entra sign-in uses of the portal (portal/app.py), which imports it."""

    config: Config
    data: Mapping[str, object]
    settings: ServeSettings
    client_failures: Window
    entra: EntraSignIns

    def current(self, request: Request) -> tuple[Session | None, bool]: ...
    def end(self, session: Session) -> None: ...
    def common(self, session: Session | None, **extra: object) -> dict[str, object]: ...
    def forbidden(self, session: Session | None) -> Response: ...
    def sign_in_page(
        self, request: Request, message: str = "", status: int = 200, username: str = ""
    ) -> Response: ...
    async def open_session(
        self, request: Request, desk: Desk, moving_on: bool = False
    ) -> Response: ...


def hashed(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def plausible(text: str, longest: int) -> bool:
    return 0 < len(text) <= longest and text.isascii() and text.isprintable()


@dataclass(frozen=True)
class Pending:
    """A sign-in under way: the flow (holding the PKCE verifier) and the browser's cookie."""

    source: str
    flow: Sealed
    browser: str  # SHA-256 of the cookie's value
    started: float


class Flows:
    """Sign-ins under way, by the SHA-256 of their state; threads share it."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def add(self, state: str, pending: Pending) -> bool:
        """File ``pending``; False when too many sign-ins are under way."""
        with self._lock:
            now = time.time()
            for key in [k for k, p in self._pending.items() if now - p.started > FLOW_LIFETIME]:
                del self._pending[key]
            if len(self._pending) >= MOST_FLOWS:
                return False
            self._pending[hashed(state)] = pending
            return True

    def take(self, state: str, browser: str) -> tuple[Pending | None, str]:
        """The flow of ``state`` if ``browser`` (the cookie) is the one it was given to,
        removed: a state and code are good once. Else None and why."""
        key = hashed(state)
        with self._lock:
            pending = self._pending.get(key)
            if pending is None or not secrets.compare_digest(pending.browser, hashed(browser)):
                return None, "unknown"
            del self._pending[key]
        if time.time() - pending.started > FLOW_LIFETIME:
            return None, "expired"
        return pending, ""

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


class ServerClient(Client):
    """The server's own Client: its config's app registrations, for starting sign-ins."""

    def web_sign_in(self, source: str, read_groups: bool, rotate: bool = False) -> WebSignIn:
        """Browser sign-in flows for Entra source ``source``'s app registration; only the
        portal signs users in for a web page, so this is no part of the library's Client."""
        from bitkey_dir.ops import signin

        work = lambda run: signin.web_sign_in(run, source, read_groups, rotate)  # noqa: E731
        return self._call("web_sign_in", work, keep_sources=False)


class EntraSignIns:
    """The server's side of Entra sign-ins: one WebSignIn per source, made on first use
    through a Client of the server's own config (the app's secret comes from
    ``BITKEY_DIR_CLIENT_SECRET_<SOURCE>``; the portal never uses a keyring)."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.flows = Flows()
        self._client: ServerClient | None = None
        self._web: dict[str, WebSignIn] = {}
        self._lock = threading.Lock()
        self.origins = tuple(
            dict.fromkeys(authority_origin(portal, n) for n in portal.settings.entra)
        )

    def web(self, source: str) -> WebSignIn:
        settings = self.portal.settings
        with self._lock:
            if source not in self._web:
                if self._client is None:
                    self._client = ServerClient(config=self.portal.config)
                roles = bool(settings.advanced or settings.auditors)
                self._web[source] = self._client.web_sign_in(
                    source, read_groups=roles, rotate=settings.entra_rotation
                )
            return self._web[source]

    def begin(self, source: str) -> dict[str, Any]:
        return self.web(source).begin(self.portal.settings.redirect_uri)

    def complete(self, source: str, flow: dict[str, Any], answer: dict[str, str]) -> Delegation:
        return self.web(source).complete(flow, answer)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def rotation_off(settings: ServeSettings, desk: Desk) -> tuple[str, ...]:
    """The agent's sources whose keys the portal does not rotate: their Entra sign-in's,
    unless ``entra_rotation`` asks for Intune's permission at sign-in (without it Intune
    would refuse their token, after a click that promised a rotation)."""
    entra_desk = desk.delegation is not None and desk.source in settings.entra
    return (desk.source,) if entra_desk and not settings.entra_rotation else ()


def authority_origin(portal: Portal, source: str) -> str:
    """Where the sign-in form of ``source`` leads: its identity platform's origin."""
    import re
    from urllib.parse import urlsplit

    host = portal.config.sources[source].settings.value("authority_host")
    parts = urlsplit(host if isinstance(host, str) else "https://login.microsoftonline.com")
    origin = f"{parts.scheme}://{parts.netloc}"
    # Into a header: only what an https origin can hold (the source refuses the rest).
    return origin if re.fullmatch(r"https://[A-Za-z0-9.\-\[\]:]+", origin) else ""


def set_flow_cookie(response: Response, value: str) -> None:
    response.set_cookie(
        FLOW_COOKIE, value, max_age=FLOW_LIFETIME, path=CALLBACK,
        httponly=True, secure=True, samesite="lax",
    )  # fmt: skip


def clear_flow_cookie(response: Response) -> None:
    response.delete_cookie(FLOW_COOKIE, path=CALLBACK, httponly=True, secure=True, samesite="lax")


def ended(portal: Portal, message: str, status: int) -> Response:
    """The callback's refusal: why, a way back to the sign-in page, and the flow cookie gone."""
    context = portal.common(None, title="Not signed in", message=message)
    response = page("message.html", context, status)
    clear_flow_cookie(response)
    return response


async def start(portal: Portal, request: Request) -> Response:
    """The "Sign in with …" button: a new flow, and the browser sent to Entra."""
    session, _ = portal.current(request)
    form = await request.form(**FORM_LIMITS)
    if session is None or not csrf_matches(session.csrf, form):
        return portal.forbidden(session)
    source = field(form, "source", 64)
    if source not in portal.settings.entra:
        return portal.sign_in_page(request, "Choose a directory to sign in with.", 400)
    wait = portal.client_failures.blocked_for(client_address(request))
    if wait:
        message = f"Too many failed sign-ins: try again in {wait // 60 + 1} minutes."
        return portal.sign_in_page(request, message, 429)
    try:
        flow = await asyncio.to_thread(portal.entra.begin, source)
    except BitkeyError as exc:
        log.warning("Entra sign-in with %s cannot start: %s", source, safe(exc.message))
        message = f"{source} cannot sign agents in now: {safe(exc.message)}"
        return portal.sign_in_page(request, message, 503)
    browser = secrets.token_urlsafe(32)
    pending = Pending(source, Sealed(json.dumps(flow)), hashed(browser), time.time())
    if not portal.entra.flows.add(str(flow["state"]), pending):
        log.warning("Entra sign-in refused: %d sign-ins under way", MOST_FLOWS)
        return portal.sign_in_page(request, "Too many sign-ins under way: try again soon.", 503)
    portal.end(session)
    response = RedirectResponse(str(flow["auth_uri"]), status_code=303)
    set_flow_cookie(response, browser)
    return response


async def callback(portal: Portal, request: Request) -> Response:
    """Entra sent the browser back: the flow's code redeemed, the agent's session opened."""
    params = request.query_params
    state, code = params.get("state", ""), params.get("code", "")
    client = client_address(request)
    browser = request.cookies.get(FLOW_COOKIE, "")
    if not plausible(state, LONGEST_STATE) or not plausible(browser, 100):
        portal.client_failures.add(client)
        return ended(portal, NOT_HERE, 400)
    pending, why = portal.entra.flows.take(state, browser)
    if pending is None:
        portal.client_failures.add(client)
        message = "This sign-in took too long: sign in again." if why == "expired" else NOT_HERE
        return ended(portal, message, 400)
    if "error" in params:
        said = (params.get("error_description") or params.get("error", "")).strip()
        first = safe((said.splitlines() or [""])[0][:300])
        log.warning("Entra did not sign in an agent from %s: %s", client, first)
        return ended(portal, f"{safe(pending.source)} did not sign you in: {first}", 401)
    if not plausible(code, LONGEST_CODE):
        portal.client_failures.add(client)
        return ended(portal, "The identity platform's answer is not a sign-in: sign in again.", 400)
    answer = {name: params[name] for name in ANSWER_FIELDS if name in params}
    flow = json.loads(pending.flow.open())
    try:
        delegation = await asyncio.to_thread(portal.entra.complete, pending.source, flow, answer)
    except BitkeyError as exc:
        portal.client_failures.add(client)
        log.warning("Entra sign-in from %s failed: %s", client, safe(exc.message))
        return ended(portal, f"The sign-in did not complete: {safe(exc.message)}", 401)
    config = portal.config
    desk = new_entra_desk(portal.data, config.path, delegation, portal.settings.sources)
    response = await portal.open_session(request, desk, moving_on=True)
    clear_flow_cookie(response)
    return response


def routes(portal: Portal) -> list[Route]:
    async def starting(request: Request) -> Response:
        return await start(portal, request)

    async def returning(request: Request) -> Response:
        return await callback(portal, request)

    return [
        Route("/sign-in/entra", starting, methods=["POST"]),
        Route(CALLBACK, returning, methods=["GET"]),
    ]
