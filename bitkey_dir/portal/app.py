"""The portal's pages: sign in, look a key up, rotate it after the call, sign out.

Each handler checks the session and the CSRF token first, then calls the agent's own
:class:`~bitkey_dir.portal.desks.AgentClient` (the same Client and operations as the command
line: sources, the reason policy and the trail are theirs) in a worker thread, so that the
event loop keeps serving other agents while a directory answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import tomllib
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bitkey_dir.core.display import safe
from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.ops.policy import TRAIL_COPY
from bitkey_dir.portal import entra, reports
from bitkey_dir.portal import sessions as sessions_module
from bitkey_dir.portal.desks import CLIENT_ADDRESS, PROBE_KEY_ID, Desk, Desks, new_desk
from bitkey_dir.portal.entra import EntraSignIns
from bitkey_dir.portal.limits import Window
from bitkey_dir.portal.roles import ADVANCED, AUDITOR, HELPDESK, READS_KEYS, refusal, role_of
from bitkey_dir.portal.sessions import Session, SessionStore, SQLiteSessions
from bitkey_dir.portal.settings import ServeSettings, read_settings
from bitkey_dir.portal.syslog5424 import Syslog
from bitkey_dir.portal.views import lookup_view, rotation_notes
from bitkey_dir.portal.web import (
    COOKIE,
    FORM_LIMITS,
    SecurityHeaders,
    clear_session_cookie,
    client_address,
    csrf_matches,
    field,
    page,
    set_session_cookie,
    with_form_targets,
)
from bitkey_dir.runtime.config import Config, load_config

log = logging.getLogger("bitkey_dir.portal")
PURGE_EVERY: Final = 60.0
FIFTEEN_MINUTES: Final = 900.0
HOUR: Final = 3600.0


@dataclass
class SignInProblem:
    message: str
    status: int


class Portal:
    """The portal's state: settings, sessions, the agents' desks and the rate limits."""

    def __init__(self, config: Config, data: Mapping[str, object], store: SessionStore) -> None:
        self.config = config
        self.data = data
        self.settings: ServeSettings = read_settings(config)
        self.store = store
        self.desks = Desks()
        attempts = self.settings.sign_in_attempts
        self.account_failures = Window(attempts, FIFTEEN_MINUTES)
        self.client_failures = Window(attempts * 4, FIFTEEN_MINUTES)
        self.reveals = Window(self.settings.reveals_per_hour, HOUR)
        target = self.settings.syslog
        self.syslog = Syslog(target) if target is not None else None
        self.entra = EntraSignIns(self)
        self._purged = 0.0

    # -- sessions -------------------------------------------------------------------------

    def _purge(self) -> None:
        now = time.time()
        if now - self._purged < PURGE_EVERY:
            return
        self._purged = now
        gone = self.store.purge(
            now - self.settings.idle_timeout, now - self.settings.session_lifetime
        )
        for key in gone:
            self.desks.drop(key)

    def current(self, request: Request) -> tuple[Session | None, bool]:
        """The request's live session (its last use now), and whether one just expired."""
        self._purge()
        session_id = request.cookies.get(COOKIE)
        if not session_id or len(session_id) > 100:
            return None, False
        session = self.store.load(session_id)
        if session is None:
            return None, False
        s = self.settings
        if session.expired(time.time(), s.idle_timeout, s.session_lifetime):
            self.end(session)
            return None, session.agent is not None
        if session.agent is not None and self.desks.get(session.key) is None:
            self.end(session)  # the server restarted: the password went with it
            return None, True
        session = sessions_module.touched(session)
        self.store.save(session)
        return session, False

    def on_behalf_of(self, request: Request) -> None:
        """The calls this request makes name its client in the trail, and copy each trail
        line to syslog when one is set."""
        address = client_address(request)
        CLIENT_ADDRESS.set(address)
        if self.syslog is not None:
            syslog = self.syslog
            TRAIL_COPY.set(lambda entry: syslog.copy(entry, address))

    def end(self, session: Session) -> None:
        self.store.delete(session.id)
        self.desks.drop(session.key)

    def common(self, session: Session | None, **extra: object) -> dict[str, object]:
        context: dict[str, object] = {"agent": None, "role": "", "csrf": "", "title": "bitkey-dir"}
        if session is not None:
            context.update(agent=session.agent, role=session.role, csrf=session.csrf)
        context.update(extra)
        return context

    # -- signing in -----------------------------------------------------------------------

    def sign_in_page(
        self, request: Request, message: str = "", status: int = 200, username: str = ""
    ) -> Response:
        session = sessions_module.start(client_address(request))
        self.store.save(session)
        context = self.common(
            None,
            title="Sign in",
            csrf=session.csrf,
            message=message,
            sources=self.settings.ad,
            entra=self.settings.entra,
            username=username,
        )
        response = with_form_targets(page("sign_in.html", context, status), self.entra.origins)
        set_session_cookie(response, session.id)
        return response

    async def show_sign_in(self, request: Request) -> Response:
        session, expired = self.current(request)
        if session is not None and session.agent is not None:
            return RedirectResponse("/lookup", status_code=303)
        if session is not None:
            self.end(session)
        expired = expired or request.query_params.get("ended") == "1"
        return self.sign_in_page(request, "Your session ended: sign in again." if expired else "")

    async def sign_in(self, request: Request) -> Response:
        session, _ = self.current(request)
        form = await request.form(**FORM_LIMITS)
        if session is None or not csrf_matches(session.csrf, form):
            return forbidden(session, self)
        self.end(session)  # a new id once signed in: a session id set before is worthless
        username = field(form, "username", 256)
        password = form.get("password")
        source = field(form, "source", 64) or (*self.settings.ad, "")[0]
        client = client_address(request)
        if (
            source not in self.settings.ad
            or not username.isprintable()
            or not ("@" in username or "\\" in username)
            or not isinstance(password, str)
            or not password
            or len(password) > 1024
        ):
            message = "Give your user name as user@domain or DOMAIN\\user, and your password."
            return self.sign_in_page(request, message, 400, username)
        wait = max(
            self.account_failures.blocked_for(username.lower()),
            self.client_failures.blocked_for(client),
        )
        if wait:
            log.warning("sign-in throttled for %s from %s", safe(username), client)
            message = f"Too many failed sign-ins: try again in {wait // 60 + 1} minutes."
            return self.sign_in_page(request, message, 429, username)
        desk = new_desk(
            self.data, self.config.path, source, username, password, self.settings.sources
        )
        problem = await asyncio.to_thread(prove, desk)
        if problem is not None:
            desk.client.close()
            self.account_failures.add(username.lower())
            self.client_failures.add(client)
            log.warning("sign-in refused for %s from %s", safe(username), client)
            return self.sign_in_page(request, problem.message, problem.status, username)
        self.account_failures.clear(username.lower())
        return await self.open_session(request, desk)

    async def open_session(self, request: Request, desk: Desk, moving_on: bool = False) -> Response:
        """A new session for ``desk``'s agent, with their role, and their home page: by a
        redirect, or (``moving_on``, after the cross-site return from Entra, which a Strict
        cookie does not follow) by a page of the portal's own that moves on to it."""
        client = client_address(request)
        role = await asyncio.to_thread(self.role_for, desk)
        signed_in = sessions_module.start(client, agent=desk.agent, source=desk.source, role=role)
        self.store.save(signed_in)
        self.desks.open(signed_in.key, desk)
        log.info("%s signed in to %s from %s as %s", safe(desk.agent), desk.source, client, role)
        home = self.home_of(role)
        if moving_on:
            context = self.common(signed_in, title="Signed in", home=home)
            response: Response = page("signed_in.html", context)
        else:
            response = RedirectResponse(home, status_code=303)
        set_session_cookie(response, signed_in.id)
        return response

    def role_for(self, desk: Desk) -> str:
        """The agent's role from their groups, read as them; helpdesk when no role is set
        up or the groups cannot be read (what every agent may do anyway). Entra: the ID
        token's ``groups`` claim, else (no claim, or overage) Graph's transitiveMemberOf."""
        s = self.settings
        if not (s.advanced or s.auditors):
            return HELPDESK
        if desk.delegation is not None and desk.delegation.groups is not None:
            return role_of(desk.delegation.groups, s.advanced, s.auditors)
        try:
            groups = desk.client.own_groups(desk.source)
        except BitkeyError as exc:
            log.warning("groups of %s not read: %s", safe(desk.agent), safe(exc.message))
            return HELPDESK
        return role_of(groups, s.advanced, s.auditors)

    @staticmethod
    def home_of(role: str) -> str:
        return "/trail" if role == AUDITOR else "/lookup"

    def forbidden(self, session: Session | None) -> Response:
        return forbidden(session, self)

    def refused(self, session: Session, what: str) -> Response:
        """403: the page is not for this agent's role; nothing was looked up."""
        log.warning("%s (%s) refused: %s", safe(session.agent), session.role, what)
        context = self.common(
            session, title="Not for your role", message=refusal(session.role, what)
        )
        return page("message.html", context, 403)

    async def sign_out(self, request: Request) -> Response:
        session, _ = self.current(request)
        form = await request.form(**FORM_LIMITS)
        if session is None or not csrf_matches(session.csrf, form):
            return forbidden(session, self)
        self.end(session)
        log.info("%s signed out from %s", safe(session.agent), client_address(request))
        response = RedirectResponse("/sign-in", status_code=303)
        clear_session_cookie(response)
        return response

    # -- looking up -----------------------------------------------------------------------

    def signed_in(self, request: Request) -> tuple[Session | None, Desk | None]:
        session, expired = self.current(request)
        request.state.expired = expired
        if session is None or session.agent is None:
            return None, None
        return session, self.desks.get(session.key)

    async def posted(self, request: Request) -> tuple[Session, Desk, Mapping[str, Any]] | Response:
        """A signed-in agent's form with its CSRF token, or the 403 that refuses it."""
        session, desk = self.signed_in(request)
        form = await request.form(**FORM_LIMITS)
        if session is None or desk is None or not csrf_matches(session.csrf, form):
            return forbidden(session, self)
        return session, desk, form

    def to_sign_in(self, request: Request) -> Response:
        ended = getattr(request.state, "expired", False)
        return RedirectResponse("/sign-in?ended=1" if ended else "/sign-in", status_code=303)

    def lookup_page(self, session: Session, status: int = 200, /, **extra: object) -> Response:
        context = self.common(
            session,
            title="Look up",
            reason_required=self.settings.require_reason,
            reason_choices=self.settings.reason_choices,
            key_id="",
            reason="",
            reason_choice="",
            computer="",
            message="",
            view=None,
            rotation=None,
            used_reason="",
            rotation_off=(),
            rotation_off_note=entra.ROTATION_OFF,
        )
        context.update(extra)
        return page("lookup.html", context, status)

    async def show_lookup(self, request: Request) -> Response:
        session, desk = self.signed_in(request)
        if session is None or desk is None:
            return self.to_sign_in(request)
        if session.role not in READS_KEYS:
            return self.refused(session, "looking a key up")
        return self.lookup_page(session)

    def reason_of(self, form: Mapping[str, Any]) -> tuple[str, str, str | None]:
        """(the choice, the typed text, the reason for the trail or None when missing)."""
        typed = field(form, "reason", 500)
        choice = field(form, "reason_choice", 200)
        if self.settings.reason_choices and choice in self.settings.reason_choices:
            return choice, typed, f"{choice}: {typed}" if typed else choice
        return "", typed, typed or None

    def lookup_refusal(
        self, session: Session, desk: Desk, key_id: str, computer: str, reason: str | None,
        shown: dict[str, str],
    ) -> Response | None:  # fmt: skip
        """Why this lookup is not made (a page saying so), or None."""
        if session.role not in READS_KEYS:
            return self.refused(session, "looking a key up")
        if computer and session.role != ADVANCED:
            return self.refused(session, "looking keys up by computer name")
        if bool(key_id) == bool(computer):
            asked = "the Key ID or the computer name" if session.role == ADVANCED else "the Key ID"
            return self.lookup_page(session, 400, message=f"Give {asked}, one of them.", **shown)
        if self.settings.require_reason and not reason:
            return self.lookup_page(session, 400, message="Give a reason first.", **shown)
        wait = self.reveals.blocked_for(desk.agent.lower())
        if wait:
            log.warning("reveals throttled for %s", safe(desk.agent))
            message = f"Too many keys read in the last hour: try again in {wait // 60 + 1} minutes."
            return self.lookup_page(session, 429, message=message, **shown)
        return None

    async def lookup(self, request: Request) -> Response:
        posted = await self.posted(request)
        if isinstance(posted, Response):
            return posted
        session, desk, form = posted
        key_id = field(form, "key_id", 64)
        computer = field(form, "computer", 64)
        choice, typed, reason = self.reason_of(form)
        shown = {"key_id": key_id, "reason": typed, "reason_choice": choice, "computer": computer}
        refusal = self.lookup_refusal(session, desk, key_id, computer, reason, shown)
        if refusal is not None:
            return refusal
        self.on_behalf_of(request)
        try:
            result = await asyncio.to_thread(
                desk.client.find, key_id=key_id or None, computer=computer or None, reason=reason
            )
        except BitkeyError as exc:
            shown["reason"] = ""  # a refused reason may hold a password pasted by mistake
            return self.lookup_page(session, 400, message=safe(exc.message), **shown)
        view = lookup_view(result)
        if view.keys:
            self.reveals.add(desk.agent.lower())
        off = entra.rotation_off(self.settings, desk)
        return self.lookup_page(
            session, view=view, used_reason=reason or "", rotation_off=off, **shown
        )

    async def rotate(self, request: Request) -> Response:
        posted = await self.posted(request)
        if isinstance(posted, Response):
            return posted
        session, desk, form = posted
        if session.role not in READS_KEYS:
            return self.refused(session, "rotating a key")
        key_id = field(form, "key_id", 64)
        source = field(form, "source", 200)
        reason = field(form, "reason", 500) or None
        if source not in desk.client.config.sources:
            return self.lookup_page(session, 400, message="That key's source is not yours.")
        if source in entra.rotation_off(self.settings, desk):
            return self.lookup_page(session, 403, message=f"Not rotated. {entra.ROTATION_OFF}")
        self.on_behalf_of(request)
        try:
            result = await asyncio.to_thread(
                desk.client.rotate, key_id=key_id, sources=[source], reason=reason
            )
        except BitkeyError as exc:
            return self.lookup_page(session, 400, message=safe(exc.message))
        return self.lookup_page(session, rotation=rotation_notes(result))

    async def home(self, request: Request) -> Response:
        session, desk = self.signed_in(request)
        if session is None or desk is None:
            return self.to_sign_in(request)
        return RedirectResponse(self.home_of(session.role), status_code=303)


def prove(desk: Desk) -> SignInProblem | None:
    """Sign ``desk``'s agent in with one bind and one indexed search (a Key ID no key has):
    None when the directory accepted them."""
    try:
        result = desk.client.find(
            key_id=PROBE_KEY_ID, sources=[desk.source], use_index=False, reason="portal sign-in"
        )
    except BitkeyError as exc:
        return SignInProblem(safe(exc.message), 400)
    for status in result.sources:
        if status.status == "denied":
            return SignInProblem("The directory refused this user name or password.", 401)
        if status.status == "failed":
            return SignInProblem(f"The directory could not be reached: {safe(status.error)}", 503)
    return None


def forbidden(session: Session | None, portal: Portal) -> Response:
    message = "This form expired or did not come from this portal: nothing was done."
    return page("message.html", portal.common(session, title="Refused", message=message), 403)


async def stylesheet(request: Request) -> Response:
    css = resources.files("bitkey_dir.portal").joinpath("static/portal.css").read_text()
    return Response(css, media_type="text/css")


def create_app(config_path: Path | None = None, *, store: SessionStore | None = None) -> Starlette:
    """The portal for the config at ``config_path`` (default: the one the CLI would use)."""
    config = load_config(config_path)
    data = tomllib.loads(config.path.read_text(encoding="utf-8-sig")) if config.exists else {}
    settings = read_settings(config)
    portal = Portal(config, data, store or SQLiteSessions(settings.session_file))

    async def not_found(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code >= 500:
            log.error("internal error: %s", type(exc).__name__)  # a message may hold data
        title = "Not found" if code == 404 else "Error"
        message = "There is no such page." if code == 404 else "That did not work."
        return page("message.html", portal.common(None, title=title, message=message), code)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        yield
        portal.desks.close()
        portal.entra.close()
        if portal.syslog is not None:
            portal.syslog.close_socket()

    routes = [
        Route("/", portal.home),
        Route("/sign-in", portal.show_sign_in, methods=["GET"]),
        Route("/sign-in", portal.sign_in, methods=["POST"]),
        Route("/sign-out", portal.sign_out, methods=["POST"]),
        Route("/lookup", portal.show_lookup, methods=["GET"]),
        Route("/lookup", portal.lookup, methods=["POST"]),
        Route("/rotate", portal.rotate, methods=["POST"]),
        *reports.routes(portal),
        *entra.routes(portal),
        Route("/static/portal.css", stylesheet),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: not_found, Exception: not_found},
        lifespan=lifespan,
    )
    app.state.portal = portal
    return app
