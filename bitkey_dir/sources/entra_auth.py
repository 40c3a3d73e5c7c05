"""Signing in to Microsoft Entra ID with MSAL, and handing the tokens to msgraph-sdk.

msal, requests and azure.core are imported inside functions: this module is loaded only when
an Entra source runs.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bitkey_dir.env import CLIENT_SECRET_ENV
from bitkey_dir.errors import AuthError, SourceError

DELEGATED_AUTH: Final = ("device-code", "browser")
APP_AUTH: Final = ("client-secret", "client-certificate")


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


@dataclass
class SignIn:
    """One tenant and app registration; gets Graph tokens the configured way."""

    tenant_id: str
    client_id: str
    auth: str
    authority_host: str
    graph_url: str
    ca_file: Path | None = None
    certificate_file: Path | None = None
    timeout: int = 30
    _app: Any = field(default=None, repr=False)
    _account: Any = field(default=None, repr=False)

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

    def _client_credential(self) -> Any:
        if self.auth == "client-certificate":
            return self._certificate_credential()
        secret = os.environ.get(CLIENT_SECRET_ENV)
        if not secret and sys.stdin.isatty() and sys.stderr.isatty():
            import getpass

            secret = getpass.getpass(f"Client secret for app {self.client_id}: ")
        if not secret:
            raise AuthError(
                f"no client secret for app {self.client_id}: set {CLIENT_SECRET_ENV}, or run "
                "on a terminal to be asked for it"
            )
        return secret

    def _certificate_credential(self) -> dict[str, str]:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        if self.certificate_file is None:
            raise AuthError('auth = "client-certificate" needs certificate_file')
        try:
            pem = self.certificate_file.read_bytes()
        except OSError as exc:
            raise AuthError(f"cannot read {self.certificate_file} ({exc.strerror})") from None
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

    def _application(self) -> Any:
        if self._app is not None:
            return self._app
        import msal

        options: dict[str, Any] = {
            "authority": f"{self.authority_host}/{self.tenant_id}",
            "instance_discovery": False,  # else MSAL asks the public cloud about this host
            "http_client": _ca_session(self.ca_file, self.timeout),
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
        """An access token and its expiry (epoch seconds), signing in if needed."""
        import requests

        try:
            return self._token()
        except requests.RequestException as exc:
            raise SourceError(
                f"cannot reach the identity platform at {self.authority_host} "
                f"({type(exc).__name__})"
            ) from None

    def _token(self) -> tuple[str, int]:
        app = self._application()
        if self.auth in APP_AUTH:
            result = app.acquire_token_for_client(self.scopes)
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
        result = self._interactive(app)
        if not result or "access_token" not in result:
            raise _msal_error(result, "sign-in")
        self._account = next(iter(app.get_accounts()), None)
        return result["access_token"], int(time.time()) + int(result["expires_in"])

    def _interactive(self, app: Any) -> Any:
        if self.auth == "browser":
            return app.acquire_token_interactive(self.scopes, timeout=300)
        flow = app.initiate_device_flow(self.scopes)
        if "user_code" not in flow:
            raise _msal_error(flow, "starting the device-code sign-in")
        # The instructions go to stderr: stdout carries results only.
        sys.stderr.write(str(flow.get("message", "")) + "\n")
        sys.stderr.flush()
        return app.acquire_token_by_device_flow(flow)

    def credential(self) -> Any:
        """An azure.core TokenCredential, as kiota's authentication provider expects."""
        from azure.core.credentials import AccessToken

        sign_in = self

        class MsalCredential:
            def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
                token, expires_on = sign_in.token()
                return AccessToken(token, expires_on)

        return MsalCredential()
