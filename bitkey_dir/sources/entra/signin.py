"""Signing in to Microsoft Entra ID with MSAL, and handing the tokens to msgraph-sdk.

msal, requests and azure.core are imported inside functions: this module is loaded only when
an Entra source runs.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from bitkey_dir.core.env import CLIENT_SECRET_ENV
from bitkey_dir.core.errors import AuthError, SourceError
from bitkey_dir.runtime import credentials, interaction, keystore
from bitkey_dir.runtime.config import Settings
from bitkey_dir.runtime.credentials import Secret, Wanted
from bitkey_dir.runtime.delegation import handed_over
from bitkey_dir.runtime.keystore import client_secret_entry
from bitkey_dir.sources.entra.token_cache import TokenCacheFile

DELEGATED_AUTH: Final = ("device-code", "browser")
APP_AUTH: Final = ("client-secret", "client-certificate")


def identifier(settings: Settings, key: str, item: str | None = None) -> str:
    """A GUID or, for a tenant, a domain name: ``key``'s value, or one ``item`` of its list."""
    expected = "a GUID or, for tenant_id, a domain name"
    value = item if item is not None else settings.required_string(key, expected)
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", value):
        if item is not None:
            raise settings.item_error(key, item, "a tenant ID (a GUID) or domain name")
        raise settings.error(key, expected)
    return value


_GUID: Final = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def is_guid(text: str) -> bool:
    return _GUID.fullmatch(text) is not None


def _https_url(settings: Settings, key: str, default: str) -> str:
    value = settings.string(key, default) or default
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise settings.error(key, "an https:// URL with only a host (and port)")
    return value.rstrip("/")


def _ca_session(ca_file: Path | None, timeout: int) -> Any:
    """A requests.Session for MSAL that passes ``verify`` and ``timeout`` on every request.

    A session-level ``verify`` loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (requests#3829),
    so it is set per request.
    """
    import requests

    class CaSession(requests.Session):
        def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            if ca_file is not None:
                kwargs.setdefault("verify", str(ca_file))
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, *args, **kwargs)

    return CaSession()


def _msal_error(result: dict[str, Any] | None, what: str) -> AuthError:
    result = result or {}
    description = str(result.get("error_description") or result.get("error") or "no answer")
    first_line = description.strip().splitlines()[0] if description.strip() else description
    correlation = result.get("correlation_id")
    suffix = f" (correlation id {correlation})" if correlation else ""
    return AuthError(f"{what} failed: {first_line[:300]}{suffix}")


_REFUSED_SECRET: Final = (7000215, 7000222)  # AADSTS: invalid client secret; expired secret


def _refused_secret(result: dict[str, Any] | None) -> bool:
    codes = (result or {}).get("error_codes") or []
    return (result or {}).get("error") == "invalid_client" and any(
        code in _REFUSED_SECRET for code in codes
    )


@dataclass
class SignIn:
    """One tenant and app registration; gets Graph tokens the configured way.

    Tokens are kept in the source's encrypted token cache (token_cache.py) between runs, so
    a signed-in user or app signs in silently until the refresh token lapses.
    """

    tenant_id: str
    client_id: str
    auth: str
    authority_host: str
    graph_url: str
    ca_file: Path | None = None
    certificate_file: Path | None = None
    timeout: int = 30
    source: str = "entra"
    secret_owner: str | None = None  # whose client secret: one app serves several tenants
    _app: Any = field(default=None, repr=False)
    _account: Any = field(default=None, repr=False)
    _secret: Secret | None = field(default=None, repr=False)
    _cache: Any = field(default=None, repr=False)
    _http_cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    _http_keys: frozenset[Any] = field(default=frozenset(), repr=False)
    _interactive_allowed: bool = field(default=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @classmethod
    def from_settings(
        cls, source: str, settings: Settings, tenant_id: str, secret_owner: str | None = None
    ) -> SignIn:
        """The sign-in a source's table describes, for one tenant (checked by the caller)."""
        auth = settings.choice("auth", DELEGATED_AUTH + APP_AUTH, "device-code")
        certificate = settings.existing_file("certificate_file", "the certificate file")
        ca_file = settings.existing_file("ca_file", "the CA bundle")
        graph_url = _https_url(settings, "graph_url", "https://graph.microsoft.com")
        authority_host = _https_url(settings, "authority_host", "https://login.microsoftonline.com")
        timeout = settings.integer("timeout", 30, minimum=1, maximum=3600)
        sign_in = cls(
            tenant_id=tenant_id,
            client_id=identifier(settings, "client_id"),
            auth=auth,
            authority_host=authority_host,
            graph_url=graph_url,
            ca_file=ca_file,
            certificate_file=certificate,
            timeout=timeout,
            source=source,
            secret_owner=secret_owner,
        )
        if auth == "client-certificate" and certificate is None:
            raise settings.error("certificate_file", "a PEM file for client-certificate sign-in")
        settings.reject_unknown()
        return sign_in

    def directory_id(self) -> str | None:
        """The tenant's ID (a GUID, lower case) when ``tenant_id`` is a domain name: the
        issuer of the identity platform's OpenID metadata for it names it. None when that
        cannot be had (the sign-in then says why, with the tenant's own words)."""
        import requests

        if is_guid(self.tenant_id):
            return self.tenant_id.lower()
        url = f"{self.authority_host}/{self.tenant_id}/v2.0/.well-known/openid-configuration"
        try:
            answer = _ca_session(self.ca_file, self.timeout).get(url)
            issuer = answer.json().get("issuer") if answer.ok else None
        except (requests.RequestException, ValueError, AttributeError):
            return None
        first = urlsplit(issuer).path.strip("/").split("/")[0] if isinstance(issuer, str) else ""
        return first.lower() if is_guid(first) else None

    @property
    def scopes(self) -> list[str]:
        # Built from the configured Graph host: national clouds have their own.
        if self.auth in APP_AUTH:
            return [f"{self.graph_url}/.default"]
        return [f"{self.graph_url}/BitlockerKey.Read.All", f"{self.graph_url}/Device.Read.All"]

    @property
    def principal(self) -> str:
        if self._account is not None:
            return str(self._account.get("username") or "the signed-in user")
        return f"app {self.client_id}"

    @property
    def wanted(self) -> Wanted | None:
        """The client secret this sign-in needs, if any, and where it is kept."""
        if self.auth != "client-secret":
            return None
        owner = self.secret_owner or self.source
        return Wanted(
            owner,
            f"the client secret of app {self.client_id}",
            CLIENT_SECRET_ENV,
            client_secret_entry(owner, self.client_id),
        )

    def cache_file(self) -> TokenCacheFile:
        return TokenCacheFile(self.source, keystore.current())

    def _client_credential(self) -> Any:
        wanted = self.wanted
        if wanted is None:
            return self._certificate_credential()
        if self._secret is None:
            self._secret = credentials.obtain(wanted)
        return self._secret.value

    def _certificate_credential(self) -> dict[str, str]:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        if self.certificate_file is None:
            raise AuthError('auth = "client-certificate" needs certificate_file')
        from bitkey_dir.runtime.small_files import NotReadable, read_small_file

        try:
            pem = read_small_file(self.certificate_file, limit=1 << 20, what="the certificate")
        except NotReadable as exc:
            raise AuthError(exc.message) from None
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise AuthError(
                f"{self.certificate_file}: expected a PEM file holding the private key and "
                "the certificate"
            ) from None
        if b"PRIVATE KEY-----" not in pem:
            raise AuthError(f"{self.certificate_file}: no private key in the PEM file")
        der = certificate.public_bytes(Encoding.DER)
        return {
            "private_key": pem.decode("ascii", errors="replace"),
            "thumbprint": hashlib.sha1(der).hexdigest(),  # noqa: S324 - the x5t header is SHA-1
            "public_certificate": certificate.public_bytes(Encoding.PEM).decode("ascii"),
        }

    def _load_cache(self, *, fresh: bool) -> None:
        import msal

        self._cache = msal.SerializableTokenCache()
        self._http_cache = {}
        if not fresh:
            loaded = self.cache_file().load()
            if loaded.problem:
                interaction.current().notice(
                    f"the saved sign-in of {self.source} cannot be used "
                    f"({loaded.problem}); signing in again"
                )
            if loaded.serialized:
                try:
                    self._cache.deserialize(loaded.serialized)
                except ValueError:
                    self._cache = msal.SerializableTokenCache()
            self._http_cache = loaded.http_cache
        self._http_keys = frozenset(self._http_cache)

    def _save_cache(self) -> None:
        """Keep what changed; a sign-in that cannot be saved still works for this run."""
        cache = self._cache
        if cache is None:
            return
        if not cache.has_state_changed and frozenset(self._http_cache) == self._http_keys:
            return
        try:
            saved = self.cache_file().save(cache.serialize(), self._http_cache)
        except OSError as exc:
            interaction.current().notice(
                f"cannot save the sign-in of {self.source} ({exc.strerror}); "
                "you will sign in again next time"
            )
            saved = False
        if saved:
            cache.has_state_changed = False
            self._http_keys = frozenset(self._http_cache)

    def _application(self, *, fresh: bool = False) -> Any:
        if self._app is not None:
            return self._app
        import msal

        if self._cache is None:
            self._load_cache(fresh=fresh)
        options: dict[str, Any] = {
            "authority": f"{self.authority_host}/{self.tenant_id}",
            "instance_discovery": False,  # else MSAL asks the public cloud about this host
            "http_client": _ca_session(self.ca_file, self.timeout),
            "token_cache": self._cache,
            "http_cache": self._http_cache,
        }
        try:
            if self.auth in APP_AUTH:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id, client_credential=self._client_credential(), **options
                )
            else:
                self._app = msal.PublicClientApplication(self.client_id, **options)
        except ValueError as exc:  # MSAL validates the authority URL and the credential
            raise AuthError(f"cannot use the sign-in settings: {exc}") from None
        except OSError as exc:
            raise SourceError(f"cannot reach {self.authority_host}: {exc}") from None
        return self._app

    def token(self) -> tuple[str, int]:
        """An access token and its expiry (epoch seconds), signing in if needed; the user's
        own when their sign-in was handed over (the portal: runtime/delegation.py)."""
        import requests

        handed = handed_over(self.source)
        if handed is not None:
            self._account = {"username": handed.username}
            return handed.token()

        with self._lock:  # kiota may ask from several tasks; one sign-in is enough
            try:
                token = self._token()
            except requests.RequestException as exc:
                raise SourceError(
                    f"cannot reach the identity platform at {self.authority_host} "
                    f"({type(exc).__name__})"
                ) from None
            self._save_cache()
            return token

    def login(self, secret: Secret | None = None) -> str:
        """Sign in afresh (for `bitkey-dir login`), replacing any saved sign-in; says as whom."""
        with self._lock:
            self._app = None
            self._account = None
            self._cache = None
            self._secret = secret
            self._interactive_allowed = True
            self._application(fresh=True)
            self.token()
            if self.auth not in APP_AUTH:
                self._forget_other_accounts()
                self._save_cache()
            if self._cache is not None and self._cache.has_state_changed:
                raise AuthError(
                    f"signed in, but the sign-in of {self.source} could not be saved "
                    f"(keyring: {keystore.current().info().describe()})"
                )
            return self.principal

    def _forget_other_accounts(self) -> None:
        app = self._application()
        for account in app.get_accounts():
            if self._account is None or account.get("home_account_id") != self._account.get(
                "home_account_id"
            ):
                app.remove_account(account)

    def _token(self) -> tuple[str, int]:
        app = self._application()
        if self.auth in APP_AUTH:
            result = app.acquire_token_for_client(self.scopes)
            if _refused_secret(result) and self._secret is not None and self.wanted:
                self._secret = credentials.rejected(
                    self.wanted, self._secret, str(_msal_error(result, "sign-in"))
                )
                self._app = None
                app = self._application()
                result = app.acquire_token_for_client(self.scopes)
                if result and "access_token" in result:
                    credentials.remember(self.wanted, self._secret)
            if not result or "access_token" not in result:
                raise _msal_error(result, f"sign-in as app {self.client_id}")
            return result["access_token"], int(time.time()) + int(result["expires_in"])
        accounts = app.get_accounts()
        if self._account is None and accounts:
            self._account = accounts[0]
        if self._account is not None:
            result = app.acquire_token_silent_with_error(self.scopes, account=self._account)
            if result and "access_token" in result:
                return result["access_token"], int(time.time()) + int(result["expires_in"])
        if not (self._interactive_allowed or credentials.can_prompt()):
            saved = "the saved sign-in has expired" if self._account else "nobody is signed in"
            raise AuthError(
                f"{self.source}: {saved} and there is no terminal to sign in on: run "
                f"`bitkey-dir login {self.source}` on a terminal"
            )
        result = self._interactive(app)
        if not result or "access_token" not in result:
            raise _msal_error(result, "sign-in")
        claims = result.get("id_token_claims") or {}
        self._account = next(
            (
                account
                for account in app.get_accounts()
                if account.get("local_account_id") == claims.get("oid")
            ),
            next(iter(app.get_accounts()), None),
        )
        return result["access_token"], int(time.time()) + int(result["expires_in"])

    def _interactive(self, app: Any) -> Any:
        if self.auth == "browser":
            return app.acquire_token_interactive(self.scopes, timeout=300)
        flow = app.initiate_device_flow(self.scopes)
        if "user_code" not in flow:
            raise _msal_error(flow, "starting the device-code sign-in")
        interaction.current().instructions(str(flow.get("message", "")))
        return app.acquire_token_by_device_flow(flow)

    def drop_access_tokens(self) -> None:
        """Graph refused a token MSAL thinks valid: keep the next run from sending it again."""
        with self._lock:
            cache = self._cache
            if cache is None:
                return
            for token in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(token)
            self._save_cache()

    def forget(self) -> list[str]:
        """Remove the saved sign-in and the stored client secret; say what was removed."""
        removed = []
        if self.cache_file().remove():
            removed.append("the saved sign-in (token cache)")
        wanted = self.wanted
        if wanted is not None and keystore.current().delete(wanted.entry):
            removed.append(wanted.label)
        return removed

    def credential(self) -> Any:
        """An azure.core TokenCredential, as kiota's authentication provider expects."""
        from azure.core.credentials import AccessToken

        sign_in = self

        class MsalCredential:
            def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
                token, expires_on = sign_in.token()
                return AccessToken(token, expires_on)

        return MsalCredential()
