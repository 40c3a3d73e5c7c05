"""The authorization endpoint and the authorization code grant (OpenID Connect with PKCE).

Source: "Microsoft identity platform and OAuth 2.0 authorization code flow" and "OpenID
Connect on the Microsoft identity platform" (learn.microsoft.com/entra/identity-platform),
"AADSTS error codes", and RFC 7636 (PKCE).

- ``GET /{tenant}/oauth2/v2.0/authorize`` checks the request. A bad ``client_id`` or a
  ``redirect_uri`` not registered for the app is shown on Entra's own page (the app is never
  sent anything: the redirect URI cannot be trusted); every other bad request is sent back to
  the redirect URI as ``error`` and ``error_description`` (with the ``state``). Otherwise a
  minimal sign-in page for the tenant's users (those given a password).
- ``POST`` of that page: a wrong user name or password stays on the page (AADSTS50034,
  AADSTS50126) as Entra's does; "Cancel" sends ``access_denied`` (AADSTS65004, the user
  declined); a signed-in user is sent back with ``code`` and ``state``.
- ``grant_type=authorization_code`` at the token endpoint: the code is single use, lives
  ``auth_code_lifetime`` seconds, and is redeemed only by the app it was issued to with the
  same ``redirect_uri``; when a ``code_challenge`` was sent, ``code_verifier`` must match it
  (S256 or plain: the identity platform supports both; PKCE is optional for a web app with a
  secret and required only for single-page apps, which the emulator does not model).
- ``prompt=none``: the emulator keeps no browser session, so the answer is always
  ``login_required`` (AADSTS50058), as Entra's for a browser that is not signed in.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from ._http import Request, Response
from ._model import App, AuthCode, User

if TYPE_CHECKING:
    from ._identity import Identity
    from ._tenant import Tenant

_PROMPTS = {"login", "select_account", "consent", "none", ""}
_CHALLENGE_METHODS = {"S256", "plain"}


class PageError(Exception):
    """Shown on the identity platform's own page: nothing is sent to the app."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class BackToApp(Exception):
    """Sent to the app's redirect URI as error / error_description."""

    def __init__(self, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description


def _page(title: str, body: str, status: int = 200) -> Response:
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>"
    )
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
    return Response(status, document.encode(), headers)


def _redirect(uri: str, params: dict[str, str]) -> Response:
    joiner = "&" if "?" in uri else "?"
    return Response(302, b"", {"Location": f"{uri}{joiner}{urlencode(params)}"})


def challenge_of(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Authorize:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.emu = identity.emu

    def handle(self, request: Request, segment: str) -> Response:
        from ._identity import OAuthError

        try:
            try:
                tenant = self.identity._tenant(segment)
            except OAuthError as error:  # on the page: there is no app to send it to yet
                raise PageError(error.code, error.description) from None
            if request.method == "GET":
                return self.ask(dict(request.query_params()), tenant)
            if request.method == "POST":
                return self.sign_in(request.form(), tenant)
            raise PageError(900561, "The endpoint only accepts GET and POST requests.")
        except PageError as error:
            return _page(
                "Sorry, but we're having trouble signing you in.",
                f"<p id='error'>AADSTS{error.code}: {html.escape(error.description)}</p>",
                400,
            )

    # -- the request --------------------------------------------------------------------------

    def _app_and_redirect(self, params: dict[str, str], tenant: Tenant | None) -> tuple[App, str]:
        from ._identity import OAuthError

        try:
            app = self.identity._app(params.get("client_id"), tenant, consent_at_sign_in=True)
        except OAuthError as error:
            raise PageError(error.code, error.description) from None
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            raise PageError(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match "
                f"the redirect URIs configured for the application '{app.client_id}'. Make "
                "sure the redirect URI sent in the request matches one added to your "
                "application in the Azure portal.",
            )
        return app, redirect_uri

    def ask(self, params: dict[str, str], tenant: Tenant | None) -> Response:
        app, redirect_uri = self._app_and_redirect(params, tenant)
        state = params.get("state")
        try:
            self._check(params, tenant)
        except BackToApp as error:
            return self._back(redirect_uri, state, error)
        request_id = secrets.token_urlsafe(24)
        with self.emu.lock:
            self.emu.authorize_requests[request_id] = {**params, "client_id": app.client_id}
        return self._sign_in_page(request_id, params.get("login_hint", ""), "")

    def _check(self, params: dict[str, str], tenant: Tenant | None) -> None:
        from ._identity import OAuthError

        response_type = params.get("response_type", "")
        if not response_type:
            raise BackToApp(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'response_type'.",
            )
        if response_type.split() != ["code"]:
            # Implicit and hybrid grants are off unless enabled on the app registration.
            raise BackToApp(
                "unsupported_response_type",
                700054,
                f"response_type '{response_type}' is not enabled for the application.",
            )
        if params.get("response_mode", "query") not in ("query", ""):
            raise BackToApp(
                "invalid_request", 900144, "The emulator answers with response_mode=query only."
            )
        if not params.get("scope", "").strip():
            raise BackToApp(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        try:
            self.identity.parse_scope(params["scope"], tenant)
        except OAuthError as error:
            raise BackToApp(error.error, error.code, error.description) from None
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if method is not None and method not in _CHALLENGE_METHODS:
            raise BackToApp(
                "invalid_request",
                501471,  # documented range for PKCE parameter errors; exact code unpublished
                f"The code_challenge_method '{method}' is not supported: use S256 or plain.",
            )
        if method is not None and not challenge:
            raise BackToApp(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code_challenge'.",
            )
        if challenge is not None and not 43 <= len(challenge) <= 128:
            raise BackToApp("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
        if params.get("prompt", "") not in _PROMPTS:
            raise BackToApp(
                "invalid_request",
                90023,
                f"Invalid value for the input parameter 'prompt': {params.get('prompt')}.",
            )
        if params.get("prompt") == "none":
            raise BackToApp(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            )

    def _back(self, redirect_uri: str, state: str | None, error: BackToApp) -> Response:
        params = {
            "error": error.error,
            "error_description": f"AADSTS{error.code}: {error.description}",
        }
        if state is not None:
            params["state"] = state
        return _redirect(redirect_uri, params)

    # -- the sign-in page ---------------------------------------------------------------------

    def _sign_in_page(self, request_id: str, username: str, problem: str) -> Response:
        shown = f"<p id='problem' role='alert'>{html.escape(problem)}</p>" if problem else ""
        form = (
            f"{shown}<form method='post'>"
            f"<input type='hidden' name='request' value='{html.escape(request_id)}'>"
            "<label for='loginfmt'>Email or phone</label>"
            f"<input type='email' name='username' id='loginfmt' value='{html.escape(username)}'>"
            "<label for='passwd'>Password</label>"
            "<input type='password' name='password' id='passwd'>"
            "<button type='submit' name='action' value='sign-in' id='idSIButton9'>Sign in"
            "</button>"
            "<button type='submit' name='action' value='cancel' id='cancel'>Cancel</button>"
            "</form>"
        )
        return _page("Sign in to your account", form)

    def sign_in(self, form: dict[str, str], tenant: Tenant | None) -> Response:
        request_id = form.get("request", "")
        with self.emu.lock:
            params = self.emu.authorize_requests.get(request_id)
        if params is None:
            raise PageError(
                90014, "This sign-in page has expired or was already used: start again."
            )
        redirect_uri, state = params["redirect_uri"], params.get("state")
        if form.get("action") == "cancel":
            self._forget(request_id)
            declined = BackToApp(
                "access_denied", 65004, "User declined to consent to access the app."
            )
            return self._back(redirect_uri, state, declined)
        username = form.get("username", "")
        user, problem = self._user(username, form.get("password", ""), tenant)
        if user is None:
            return self._sign_in_page(request_id, username, problem)
        self._forget(request_id)
        code = AuthCode(
            code="1.emu-code." + secrets.token_urlsafe(48),
            client_id=params["client_id"],
            redirect_uri=redirect_uri,
            user=user,
            scope=params["scope"],
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=(
                params.get("code_challenge_method") or "plain"
                if params.get("code_challenge")
                else None
            ),
            expires_at=self.emu.now() + self.emu.auth_code_lifetime,
        )
        with self.emu.lock:
            self.emu.auth_codes[code.code] = code
        answer = {"code": code.code}
        if state is not None:
            answer["state"] = state
        answer["session_state"] = secrets.token_hex(16)
        return _redirect(redirect_uri, answer)

    def _forget(self, request_id: str) -> None:
        with self.emu.lock:
            self.emu.authorize_requests.pop(request_id, None)

    def _user(self, username: str, password: str, tenant: Tenant | None) -> tuple[User | None, str]:
        tenants = [tenant] if tenant is not None else list(self.emu.tenants.values())
        user = next((u for t in tenants if (u := t.user_named(username)) is not None), None)
        if user is None:
            where = tenant.domain if tenant is not None else "any"
            return None, (
                f"AADSTS50034: The user account {username} does not exist in the {where} "
                "directory. To sign into this application, the account must be added to the "
                "directory."
            )
        if user.password is None or not secrets.compare_digest(user.password, password):
            return None, (
                "AADSTS50126: Error validating credentials due to invalid username or password."
            )
        return user, ""

    # -- the token endpoint -------------------------------------------------------------------

    def redeem(self, request: Request, form: dict[str, str], tenant: Tenant | None) -> Response:
        from ._identity import OAuthError

        identity = self.identity
        app = identity._authenticate_client(request, form, tenant, required=False)
        given = form.get("code", "")
        if not given:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            )
        with self.emu.lock:
            code = self.emu.auth_codes.get(given)
            if code is None or code.client_id.lower() != app.client_id.lower():
                raise OAuthError(
                    "invalid_grant",
                    9002313,
                    "Invalid request. Request is malformed or invalid.",
                )
            if code.redeemed:
                raise OAuthError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new "
                    "valid code or use an existing refresh token.",
                )
            code.redeemed = True  # single use, whatever happens next
        if self.emu.now() >= code.expires_at:
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        if tenant is not None and code.user.tenant_id != tenant.tenant_id:
            raise OAuthError(
                "invalid_grant",
                700005,
                "Provided Authorization Code is intended to use against other tenant, thus "
                "rejected.",
            )
        if form.get("redirect_uri", "") != code.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                500112,
                f"The reply address '{form.get('redirect_uri', '')}' does not match the reply "
                f"address '{code.redirect_uri}' provided when requesting Authorization code.",
            )
        if code.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            method = code.code_challenge_method or "plain"
            if not verifier or not secrets.compare_digest(
                challenge_of(verifier, method), code.code_challenge
            ):
                raise OAuthError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
        scope = form.get("scope") or code.scope
        return identity._delegated_tokens(app, code.user, scope, form, nonce=code.nonce)
