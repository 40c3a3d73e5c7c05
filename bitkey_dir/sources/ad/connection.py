"""A bound, TLS-protected LDAP connection to the first usable domain controller.

Every connection validates the certificate and host name with Python's own TLS checks, never
chases referrals, and binds only after TLS. A refused password is never tried on the next
server (failures lock accounts): a stored one is dropped and asked for once.

A read-only connection with a simple bind, what nearly every command opens, is
simple_bind.py's and needs no ldap3; a Kerberos bind, or a connection that may write
(`rights grant|revoke`), is ldap3's, imported inside the functions that open one.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bitkey_dir.core.env import PASSWORD_ENV
from bitkey_dir.core.errors import AuthError, SourceError
from bitkey_dir.runtime import platform
from bitkey_dir.sources.ad.servers import ServerUrl, bind_refusal
from bitkey_dir.sources.base import Warn

if TYPE_CHECKING:
    from ldap3 import Connection as Ldap3Connection

    from bitkey_dir.runtime.credentials import Secret, Wanted
    from bitkey_dir.sources.ad.simple_bind import Connection, SimpleBindConnection

log = logging.getLogger(__name__)

_INVALID_CREDENTIALS: Final = 49
_STRONGER_AUTH_REQUIRED: Final = 8
# Servers found through DNS are tried for at most this many time-outs in all: DNS that names
# many servers that accept and never answer must not hold a lookup for minutes.
DISCOVERED_BUDGET: Final = 2

# ldap3 binds with gssapi, or on Windows (where gssapi has no wheels) through SSPI with
# winkerberos: the `kerberos` extra installs the one the platform needs.
if sys.platform == "win32":
    _KERBEROS_PACKAGE_MISSING = (
        'auth = "kerberos" needs the winkerberos package: pip install "bitkey-dir[kerberos]" '
        '(in a checkout: pip install ".[kerberos]")'
    )
    _KERBEROS_TICKET_HINT = (
        "check that you are signed in to Windows with a domain account (`klist` lists its tickets)"
    )
else:
    _KERBEROS_PACKAGE_MISSING = (
        "auth = \"kerberos\" needs the gssapi package: pip install 'bitkey-dir[kerberos]' "
        "(in a checkout: pip install '.[kerberos]'; it builds against libkrb5-dev)"
    )
    _KERBEROS_TICKET_HINT = "check that `klist` shows a valid ticket (run kinit)"


class _Unreachable(Exception):
    """This server cannot be used; the next one may be."""


class _PasswordRefused(AuthError):
    """The directory said the password is wrong (not: the account is locked or disabled)."""


def describe_network_error(exc: Exception, timeout: int) -> str:
    """What went wrong on the wire, in words an administrator can act on."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        if "mismatch" in text or "match" in text:
            return "its TLS certificate does not match the host name in the URL"
        return (
            "its TLS certificate is not trusted (point ca_file, or BITKEY_DIR_CA_FILE for a "
            "--source URL, at the CA that issued it)"
        )
    if "timed out" in text or "timeout" in text.lower():
        return f"no answer within {timeout} s"
    if "refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    return text if len(text) <= 200 else text[:200] + "…"


@dataclass
class SharedSecret:
    """The password that worked, shared by one source's connections to several domains, so
    that it is looked up (or asked for) once."""

    secret: Secret | None = field(default=None, repr=False)


@dataclass
class Connector:
    """How one AD source binds, and its connection once bound (one per lookup).

    ``servers`` may be empty when ``discover`` finds them (DNS SRV records): that is done
    when the first connection is made, never when the source is built.
    """

    source: str
    servers: tuple[ServerUrl, ...]
    user: str | None = None
    auth: str = "simple"
    ca_file: Path | None = None
    kerberos_host: str | None = None
    timeout: int = 10
    allow_plaintext: bool = False
    # ldap3 refuses every write on a read-only connection: only `rights grant|revoke` asks
    # for one that may write (writable()), and then writes one attribute.
    read_only: bool = True
    discover: Callable[[], tuple[ServerUrl, ...]] | None = field(default=None, compare=False)
    shared: SharedSecret = field(default_factory=SharedSecret, repr=False, compare=False)
    _connection: Connection | None = field(default=None, repr=False, compare=False)
    server: ServerUrl | None = field(default=None, repr=False, compare=False)
    discovered: bool = field(default=False, repr=False, compare=False)  # servers from DNS

    def sibling(
        self,
        servers: tuple[ServerUrl, ...],
        discover: Callable[[], tuple[ServerUrl, ...]] | None = None,
        *,
        same_hosts: bool = False,
    ) -> Connector:
        """The same account, rights and TLS rules for other servers (another domain's DCs,
        the Global Catalog), sharing the password once it is known. ``kerberos_host`` names
        this source's own DC: it is kept only for servers the user configured next to it
        (``same_hosts``); others are known by their own names."""
        return replace(
            self,
            servers=servers,
            discover=discover,
            kerberos_host=self.kerberos_host if same_hosts else None,
            _connection=None,
            server=None,
            discovered=False,
        )

    def writable(self) -> Connector:
        """The same servers and account, on a connection of its own that may modify."""
        return replace(self, read_only=False, _connection=None, server=None)

    @property
    def account(self) -> str:
        return self.user or "this Kerberos account"

    @property
    def principal(self) -> str | None:
        """For the access trail: the bind account, or the Kerberos ticket's principal."""
        if self.user:
            return self.user
        return kerberos_principal()

    @property
    def wanted(self) -> Wanted:
        """The bind password this source needs, and where it is kept."""
        from bitkey_dir.runtime.credentials import Wanted
        from bitkey_dir.runtime.keystore import password_entry

        user = self.user or ""
        return Wanted(
            self.source, f"the password of {user}", PASSWORD_ENV, password_entry(self.source, user)
        )

    def connect(self, warn: Warn, secret: Secret | None = None) -> Connection:
        """Bind to the first usable server; ``secret`` overrides the credential lookup."""
        from bitkey_dir.runtime import credentials

        if self._connection is not None:
            return self._connection
        started = time.monotonic()
        if not self.servers and self.discover is not None:
            self.servers = self.discover()
            self.discovered = True
        deadline = started + DISCOVERED_BUDGET * self.timeout if self.discovered else None
        if any(not s.ldaps for s in self.servers) and self.allow_plaintext:
            warn(
                "allow_plaintext is on: ldap:// binds without TLS, so the password and the "
                "recovery keys cross the network unencrypted"
            )
        if self.auth == "simple" and secret is None:
            secret = self.shared.secret or credentials.obtain(self.wanted)
        retyped = False
        failures = []
        pending = list(self.servers)
        while pending:
            server = pending[0]
            wait = _left(deadline, self.timeout)
            if wait is None:
                failures.append(
                    f"{len(pending)} more found through DNS not tried: "
                    f"{DISCOVERED_BUDGET * self.timeout} s spent"
                )
                break
            try:
                self._connection = self._open(server, secret.value if secret else None, wait)
            except _Unreachable as exc:
                log.info("%s: %s unusable: %s", self.source, server.url, exc)
                failures.append(f"{server.url}: {exc}")
                pending.pop(0)
                if pending:  # said now, not after the lookup: the wait was the user's too
                    from bitkey_dir.runtime import interaction

                    interaction.current().notice(
                        f"{self.source}: {server.url} skipped ({exc}); trying {pending[0].url}"
                    )
                continue
            except _PasswordRefused as exc:
                if secret is None:
                    raise AuthError(exc.message) from None
                # Never the same password on the next server: failures lock accounts.
                secret = credentials.rejected(self.wanted, secret, exc.message)
                retyped = True
                continue
            if retyped and secret is not None:
                credentials.remember(self.wanted, secret)
            self.shared.secret = secret
            self.server = server
            return self._connection
        raise SourceError(f"no directory server could be used ({'; '.join(failures)})")

    @property
    def uses_ldap3(self) -> bool:
        """Whether connections are ldap3's: Kerberos binds, and connections that may write."""
        return self.auth != "simple" or not self.read_only

    def _open(self, server: ServerUrl, password: str | None, wait: int) -> Connection:
        """Connect and bind to ``server``, waiting at most ``wait`` seconds for each step."""
        if not self.uses_ldap3:
            return self._open_simple(server, password, wait)
        import ldap3
        from ldap3.core.exceptions import LDAPException

        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        tls = _strict_tls(context, server.host)
        options: dict[str, Any] = {}
        if self.auth == "kerberos":
            options = {
                "authentication": ldap3.SASL,
                "sasl_mechanism": ldap3.KERBEROS,
                "sasl_credentials": (self.kerberos_host or server.host,),
            }
        else:
            options = {"authentication": ldap3.SIMPLE, "user": self.user, "password": password}
        directory = ldap3.Server(
            server.connect_to,
            port=server.port,
            use_ssl=server.ldaps,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=wait,
        )
        connection = ldap3.Connection(
            directory,
            auto_referrals=False,
            receive_timeout=wait,
            read_only=self.read_only,
            collect_usage=True,
            raise_exceptions=False,
            **options,
        )
        try:
            connection.open()
            if not server.ldaps and not self.allow_plaintext:
                connection.start_tls()
        except (LDAPException, OSError) as exc:
            raise _Unreachable(describe_network_error(exc, wait)) from None
        try:
            self._bind(connection, server)
        except BaseException:
            # Not left open while the user is asked for another password.
            with contextlib.suppress(Exception):
                connection.unbind()
            raise
        return connection

    def _open_simple(
        self, server: ServerUrl, password: str | None, wait: int
    ) -> SimpleBindConnection:
        """What _open does for a read-only simple bind, on a connection without ldap3."""
        from bitkey_dir.sources.ad.ber import PasswordRefused
        from bitkey_dir.sources.ad.result_codes import RESULT_NAMES
        from bitkey_dir.sources.ad.simple_bind import SimpleBindConnection
        from bitkey_dir.sources.ad.wire import WireError

        if not password or not self.user:  # an empty password would bind anonymously
            raise AuthError(f"no user name and password to bind to {server.url} with")
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        try:
            connection = SimpleBindConnection.open(
                (server.connect_to, server.port),
                context,
                server.host,
                ldaps=server.ldaps,
                starttls=not server.ldaps and not self.allow_plaintext,
                timeout=wait,
            )
        except (WireError, OSError) as exc:
            raise _Unreachable(describe_network_error(exc, wait)) from None
        try:
            try:
                code, message = connection.bind(self.user, password)
            except PasswordRefused as exc:
                raise AuthError(f"cannot bind to {server.url} as {self.account}: {exc}") from None
            except (WireError, OSError) as exc:
                raise _Unreachable(describe_network_error(exc, self.timeout)) from None
            if code != 0:
                detail = (message or RESULT_NAMES.get(code, "")).strip()
                raise self._refused(server, code, detail)
        except BaseException:
            # Not left open while the user is asked for another password.
            with contextlib.suppress(Exception):
                connection.unbind()
            raise
        return connection

    def _bind(self, connection: Ldap3Connection, server: ServerUrl) -> None:
        from ldap3.core.exceptions import LDAPException

        try:
            bound = connection.bind()
        except ImportError:
            raise AuthError(_KERBEROS_PACKAGE_MISSING) from None
        except LDAPException as exc:
            if self.auth != "kerberos":
                raise _Unreachable(describe_network_error(exc, self.timeout)) from None
            raise self._kerberos_failed(server, exc) from None
        except Exception as exc:
            # gssapi raises its own errors (no ticket, unknown principal) through ldap3.
            if self.auth != "kerberos":
                raise
            raise self._kerberos_failed(server, exc) from None
        if bound:
            return
        result = connection.result or {}
        code = result.get("result")
        detail = str(result.get("message") or result.get("description") or "").strip()
        raise self._refused(server, code, detail)

    def _refused(self, server: ServerUrl, code: object, detail: str) -> AuthError:
        """The bind ``server`` refused with result ``code``, in words an administrator can
        act on; a wrong password as _PasswordRefused (asked for again, never sent on)."""
        if code == _INVALID_CREDENTIALS:
            refusal = bind_refusal(detail)
            if refusal is not None:
                return AuthError(f"{server.url} refused the bind as {self.account}: {refusal}")
            bare = self.user is not None and not any(c in self.user for c in "@\\=")
            return _PasswordRefused(
                f"{server.url} rejected the user name or password for "
                f"{self.account} ({detail[:120]})"
                + (
                    f"; AD knows accounts as {self.user}@your.domain or DOMAIN\\{self.user}: "
                    "set user to one of those"
                    if bare
                    else ""
                )
            )
        if code == _STRONGER_AUTH_REQUIRED:
            return AuthError(
                f"{server.url} requires an encrypted connection for this bind "
                f"({detail[:120]}); use ldaps:// or ldap:// without allow_plaintext"
            )
        return AuthError(f"bind to {server.url} failed: {detail[:200] or code}")

    def _kerberos_failed(self, server: ServerUrl, exc: Exception) -> AuthError:
        text = " ".join(str(exc).split())
        return AuthError(
            f"Kerberos sign-in to {server.url} failed ({type(exc).__name__}: {text[:200]}); "
            f"{_KERBEROS_TICKET_HINT} and that kerberos_host names the DC"
        )

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        usage = connection.usage
        if usage is not None:
            log.info(
                "%s: %s: %s, %s, %s",
                self.source,
                self.server.url if self.server else "?",
                _count(usage.bind_operations, "bind", "binds"),
                _count(usage.search_operations, "search", "searches"),
                _count(usage.extended_operations, "extended operation", "extended operations"),
            )
        # The answer is already in hand: a failing unbind changes nothing.
        with contextlib.suppress(Exception):
            connection.unbind()


def _left(deadline: float | None, timeout: int) -> int | None:
    """How long the next server may take, in whole seconds (ldap3 sets socket options with
    them): the time-out, cut to what is left before the deadline (None: nothing left);
    always the time-out without a deadline."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    return min(timeout, max(1, round(left))) if left > 0.5 else None


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def kerberos_principal() -> str | None:
    """The principal of the Kerberos ticket in use, or None without one. On Windows ldap3
    binds through SSPI (winkerberos) with the logged-on user's ticket."""
    if sys.platform == "win32":
        return platform.logged_on_principal()
    try:
        import gssapi

        return str(gssapi.Credentials(usage="initiate").name)
    except Exception:  # no gssapi, no ticket: the trail then says nothing rather than guess
        return None


def _strict_tls(context: ssl.SSLContext, host: str) -> Any:
    """An ldap3 Tls that wraps sockets with ``context``, checking the certificate's host name.

    ldap3 turns Python's host name check off and uses its own, which on newer Pythons knows
    no IP addresses; this keeps the standard library's check for both LDAPS and StartTLS.
    """
    import ldap3

    class StrictTls(ldap3.Tls):  # type: ignore[misc]
        def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
            connection.socket = context.wrap_socket(
                connection.socket,
                server_side=False,
                do_handshake_on_connect=do_handshake,
                server_hostname=host,
            )

    return StrictTls(validate=ssl.CERT_REQUIRED)
