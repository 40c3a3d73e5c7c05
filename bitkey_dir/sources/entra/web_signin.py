"""Signing a user in through their browser (OpenID Connect authorization code flow with
PKCE, through MSAL's ConfidentialClientApplication), for a web front end such as the portal.

:class:`WebSignIn` starts flows and redeems the browser's answers with the source's app
registration (its client secret or certificate: a web app is a confidential client). Each
user gets a :class:`EntraDelegation` of their own: their MSAL token cache, held sealed in
memory and never written, from which their access token is refreshed silently. MSAL adds the
state, the nonce (checked against the ID token) and the PKCE verifier (S256) to each flow.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bitkey_dir.core.errors import AuthError, SourceError
from bitkey_dir.runtime.sealed import Sealed
from bitkey_dir.sources.entra.intune import ROTATE
from bitkey_dir.sources.entra.signin import APP_AUTH, SignIn, _ca_session, _msal_error

#: Reading the agent's groups from Graph when the ID token has none (overage).
GROUP_SCOPE: Final = "GroupMember.Read.All"
#: A cached access token is reused while it has this much life left.
SPARE_SECONDS: Final = 300


@dataclass
class WebSignIn:
    """Flows of one Entra source's app registration; shared by every user of a server."""

    sign_in: SignIn
    read_groups: bool = False  # ask for GroupMember.Read.All too (roles from groups)
    # Intune's rotate action as the agent; opt-in: a tenant that never consented to it would
    # refuse every sign-in that asks for it (AADSTS65001).
    rotate: bool = False
    _http_cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.sign_in.auth not in APP_AUTH:
            raise AuthError(
                f"{self.sign_in.source}: signing agents in through the browser needs the app's "
                'client secret or certificate: set auth = "client-secret" or '
                '"client-certificate"'
            )

    @property
    def scopes(self) -> list[str]:
        graph = self.sign_in.graph_url
        names = ["BitlockerKey.Read.All", "Device.Read.All"]
        names += [GROUP_SCOPE] if self.read_groups else []
        names += [ROTATE] if self.rotate else []
        return [f"{graph}/{name}" for name in names]

    def application(self, cache: Any = None) -> Any:
        import msal
        import requests

        sign_in = self.sign_in
        try:
            with self._lock:  # MSAL fills the shared discovery cache on first use
                return msal.ConfidentialClientApplication(
                    sign_in.client_id,
                    client_credential=sign_in._client_credential(),
                    authority=f"{sign_in.authority_host}/{sign_in.tenant_id}",
                    instance_discovery=False,
                    http_client=_ca_session(sign_in.ca_file, sign_in.timeout),
                    token_cache=cache,
                    http_cache=self._http_cache,
                )
        except ValueError as exc:
            raise AuthError(f"cannot use the sign-in settings: {exc}") from None
        except requests.RequestException as exc:
            raise SourceError(
                f"cannot reach the identity platform at {sign_in.authority_host} "
                f"({type(exc).__name__})"
            ) from None

    def begin(self, redirect_uri: str, login_hint: str | None = None) -> dict[str, Any]:
        app = self.application()
        with warnings.catch_warnings():
            # MSAL recommends form_post; the portal takes the answer as a top-level GET so
            # that its SameSite=Lax pre-sign-in cookie comes with it (docs/portal.md).
            warnings.simplefilter("ignore", UserWarning)
            flow: dict[str, Any] = app.initiate_auth_code_flow(
                self.scopes, redirect_uri=redirect_uri, login_hint=login_hint
            )
        return flow

    def complete(self, flow: Mapping[str, Any], answer: Mapping[str, str]) -> EntraDelegation:
        import msal
        import requests

        cache = msal.SerializableTokenCache()
        app = self.application(cache)
        try:
            result = app.acquire_token_by_auth_code_flow(dict(flow), dict(answer))
        except ValueError:  # MSAL: the state does not match, or the flow is not one of its
            raise AuthError("this answer does not belong to the sign-in that was started") from None
        except requests.RequestException as exc:
            raise SourceError(
                f"cannot reach the identity platform at {self.sign_in.authority_host} "
                f"({type(exc).__name__})"
            ) from None
        if not result or "access_token" not in result:
            raise _msal_error(result, "Entra sign-in")
        claims = result.get("id_token_claims") or {}
        username = str(claims.get("preferred_username") or claims.get("upn") or "")
        if not username:
            raise AuthError("Entra sign-in failed: the ID token names no user")
        groups = claims.get("groups")
        overage = "groups" in (claims.get("_claim_names") or {})
        delegation = EntraDelegation(
            source=self.sign_in.source,
            username=username,
            object_id=str(claims.get("oid") or ""),
            groups=None if overage or not isinstance(groups, list) else tuple(map(str, groups)),
            web=self,
            scopes=self.scopes,
        )
        delegation.keep(cache.serialize(), result)
        return delegation


@dataclass
class EntraDelegation:
    """One user's Entra sign-in: their token cache, sealed, refreshed silently."""

    source: str
    username: str
    object_id: str
    groups: tuple[str, ...] | None
    web: WebSignIn = field(repr=False)
    scopes: list[str] = field(repr=False)
    _cache: Sealed | None = field(default=None, repr=False)
    _token: Sealed | None = field(default=None, repr=False)
    _expires: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def keep(self, serialized: str, result: Mapping[str, Any]) -> None:
        self._cache = Sealed(serialized)
        self._token = Sealed(str(result["access_token"]))
        self._expires = int(time.time()) + int(result.get("expires_in", 0))

    def token(self) -> tuple[str, int]:
        with self._lock:
            if self._cache is None:
                raise AuthError(f"{self.username} signed out of {self.source}: sign in again")
            if self._token is not None and self._expires - time.time() > SPARE_SECONDS:
                return self._token.open(), self._expires
            return self._refreshed()

    def _refreshed(self) -> tuple[str, int]:
        import msal

        sealed = self._cache
        if sealed is None:
            raise AuthError(f"{self.username} signed out of {self.source}: sign in again")
        cache = msal.SerializableTokenCache()
        cache.deserialize(sealed.open())
        app = self.web.application(cache)
        account = next(
            (a for a in app.get_accounts() if a.get("local_account_id") == self.object_id),
            None,
        )
        result = (
            app.acquire_token_silent_with_error(self.scopes, account=account) if account else None
        )
        if not result or "access_token" not in result:
            self.forget_now()
            raise AuthError(
                f"the Entra sign-in of {self.username} has lapsed "
                f"({_msal_error(result, 'refreshing it').message}): sign in again"
            )
        self.keep(cache.serialize() if cache.has_state_changed else sealed.open(), result)
        return str(result["access_token"]), self._expires

    def forget_now(self) -> None:
        self._cache = self._token = None
        self._expires = 0

    def forget(self) -> None:
        with self._lock:
            self.forget_now()
