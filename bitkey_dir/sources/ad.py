"""Active Directory over LDAP: msFVE-RecoveryInformation objects below computer objects.

Config (``type = "ad"``):

``servers``          ``ldaps://host[:port]`` or ``ldap://host[:port]`` (StartTLS) URLs, in order
``ca_file``          CA bundle for the DCs' certificates (default: the system trust store)
``base_dn``          where to search (default: the rootDSE's defaultNamingContext, one more query)
``user``             UPN or DOMAIN\\user for simple binds
``auth``             ``"simple"`` (default) or ``"kerberos"`` (SASL GSSAPI with the ticket cache)
``kerberos_host``    the DC's host name for its Kerberos principal when servers are IP addresses
``timeout``          seconds to connect and for each answer (default 10)
``page_size``        entries per page of a paged search (default 1000, the AD maximum)
``allow_plaintext``  let ``ldap://`` bind without TLS (default false; warned about on every run)

ldap3 is imported only when a lookup runs. Every connection validates the certificate and
host name with Python's own TLS checks, never chases referrals, and binds only after TLS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

from bitkey_dir.config import Settings
from bitkey_dir.env import CA_FILE_ENV, PASSWORD_ENV, USER_ENV
from bitkey_dir.errors import AuthError, BitkeyError, InputError, SourceError
from bitkey_dir.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.sources.ad_names import (
    RECOVERY_CLASS,
    ServerUrl,
    bind_refusal,
    computer_filter,
    deleted_name,
    dn_levels,
    escape_filter_value,
    guid_from_bytes,
    key_id_filter,
    key_id_from_bytes,
    leaf_value,
    parent_dn,
    parse_recovery_name,
    rdn_value,
    recovery_created,
)
from bitkey_dir.sources.base import Warn

if TYPE_CHECKING:
    from ldap3 import Connection

    from bitkey_dir.audit import Escrow
    from bitkey_dir.credentials import Secret, Wanted

log = logging.getLogger(__name__)

SHOW_DELETED: Final = ("1.2.840.113556.1.4.417", True, None)
KEY_ATTRIBUTES: Final = ["msFVE-RecoveryGuid", "msFVE-RecoveryPassword", "msFVE-VolumeGuid"]
DELETED_ATTRIBUTES: Final = ["isDeleted", "lastKnownParent"]
NO_ATTRIBUTES: Final = "1.1"  # RFC 4511: the DNs only
RIGHTS_NEEDED: Final = "it needs Read and Control Access on msFVE-RecoveryPassword"
_INVALID_CREDENTIALS: Final = 49
_STRONGER_AUTH_REQUIRED: Final = 8


class _Unreachable(Exception):
    """This server cannot be used; the next one may be."""


class _PasswordRefused(AuthError):
    """The directory said the password is wrong (not: the account is locked or disabled)."""


def _first(raw: dict[str, list[bytes]], name: str) -> bytes | None:
    values = raw.get(name.lower())
    return values[0] if values else None


def _describe_network_error(exc: Exception, timeout: int) -> str:
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
class ADSource:
    """Keys from Active Directory; one connection per lookup, opened on first use."""

    type_name: ClassVar[str] = "ad"

    name: str
    servers: tuple[ServerUrl, ...]
    user: str | None = None
    auth: str = "simple"
    ca_file: Path | None = None
    base_dn: str | None = None
    kerberos_host: str | None = None
    timeout: int = 10
    page_size: int = 1000
    allow_plaintext: bool = False
    _connection: Connection | None = field(default=None, repr=False, compare=False)
    _server: ServerUrl | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> ADSource:
        urls = settings.string_list("servers")
        if not urls:
            raise settings.error("servers", "a list of ldaps:// or ldap:// URLs")
        servers = []
        for url in urls:
            try:
                servers.append(ServerUrl.parse(url))
            except ValueError as exc:
                raise settings.error("servers", str(exc)) from None
        auth = settings.choice("auth", ("simple", "kerberos"), "simple")
        user = settings.string("user")
        if auth == "simple" and not user:
            raise settings.error("user", "a user name (UPN or DOMAIN\\user) for simple binds")
        ca_file = settings.string("ca_file")
        source = cls(
            name=name,
            servers=tuple(servers),
            user=user,
            auth=auth,
            ca_file=settings.base_dir / Path(ca_file).expanduser() if ca_file else None,
            base_dn=settings.string("base_dn"),
            kerberos_host=settings.string("kerberos_host"),
            timeout=settings.integer("timeout", 10, minimum=1),
            page_size=settings.integer("page_size", 1000, minimum=1),
            allow_plaintext=settings.boolean("allow_plaintext", False),
        )
        settings.reject_unknown()
        return source

    @classmethod
    def from_url(cls, url: str) -> ADSource:
        """An ad hoc source from ``--source ldaps://host``; user and CA from the environment."""
        try:
            server = ServerUrl.parse(url)
        except ValueError as exc:
            raise InputError(f"--source {url}: expected {exc}") from None
        user = os.environ.get(USER_ENV)
        if not user:
            raise InputError(
                f"--source {url}: set {USER_ENV} to the account to bind with "
                "(user@domain or DOMAIN\\user), or configure the source"
            )
        ca_file = os.environ.get(CA_FILE_ENV)
        return cls(
            name=url, servers=(server,), user=user, ca_file=Path(ca_file) if ca_file else None
        )

    def describe(self) -> str:
        who = "Kerberos ticket" if self.auth == "kerberos" else self.user
        return f"{', '.join(s.url for s in self.servers)} as {who}"

    @property
    def account(self) -> str:
        return self.user or "this Kerberos account"

    @property
    def principal(self) -> str | None:
        """For the access trail: the bind account, or the Kerberos ticket's principal."""
        if self.user:
            return self.user
        return _kerberos_principal()

    # -- connecting ---------------------------------------------------------------------

    @property
    def wanted(self) -> Wanted:
        """The bind password this source needs, and where it is kept."""
        from bitkey_dir.credentials import Wanted
        from bitkey_dir.keystore import password_entry

        user = self.user or ""
        return Wanted(
            self.name, f"the password of {user}", PASSWORD_ENV, password_entry(self.name, user)
        )

    def _connect(self, warn: Warn, secret: Secret | None = None) -> Connection:
        """Bind to the first usable server; ``secret`` overrides the credential lookup."""
        from bitkey_dir import credentials

        if self._connection is not None:
            return self._connection
        if any(not s.ldaps for s in self.servers) and self.allow_plaintext:
            warn(
                "allow_plaintext is on: ldap:// binds without TLS, so the password and the "
                "recovery keys cross the network unencrypted"
            )
        if self.auth == "simple" and secret is None:
            secret = credentials.obtain(self.wanted)
        retyped = False
        failures = []
        pending = list(self.servers)
        while pending:
            server = pending[0]
            try:
                self._connection = self._open(server, secret.value if secret else None)
            except _Unreachable as exc:
                log.info("%s: %s unusable: %s", self.name, server.url, exc)
                failures.append(f"{server.url}: {exc}")
                pending.pop(0)
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
            self._server = server
            return self._connection
        raise SourceError(f"no directory server could be used ({'; '.join(failures)})")

    @property
    def login_secret(self) -> Wanted | None:
        """The password `bitkey-dir login` reads; None for Kerberos, which has none."""
        return None if self.auth == "kerberos" else self.wanted

    def login(self, secret: Secret | None) -> str:
        """Prove ``secret`` with a real bind, then store it (for `bitkey-dir login`)."""
        from bitkey_dir import keystore

        if self.auth == "kerberos" or secret is None:
            raise InputError(
                f"{self.name} signs in with Kerberos tickets: run kinit; there is nothing to store"
            )
        try:
            self._connect(lambda message: None, secret)
            where = self._server.url if self._server else "?"
        finally:
            self.close()
        keystore.current().set(self.wanted.entry, secret.value)
        return f"bound to {where} as {self.user}; the password is stored in the keyring"

    def logout(self) -> list[str]:
        from bitkey_dir import keystore

        if self.auth == "kerberos":
            return []
        return [self.wanted.label] if keystore.current().delete(self.wanted.entry) else []

    def auth_status(self) -> dict[str, object]:
        from bitkey_dir import keystore

        if self.auth == "kerberos":
            return {"account": self.principal, "secret": None, "stored": None, "tokens": None}
        return {
            "account": self.user,
            "secret": "password",
            "stored": keystore.current().has(self.wanted.entry),
            "environment": bool(os.environ.get(PASSWORD_ENV)),
            "tokens": None,
        }

    def _open(self, server: ServerUrl, password: str | None) -> Connection:
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
            server.host,
            port=server.port,
            use_ssl=server.ldaps,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=self.timeout,
        )
        connection = ldap3.Connection(
            directory,
            auto_referrals=False,
            receive_timeout=self.timeout,
            read_only=True,
            collect_usage=True,
            raise_exceptions=False,
            **options,
        )
        try:
            connection.open()
            if not server.ldaps and not self.allow_plaintext:
                connection.start_tls()
        except (LDAPException, OSError) as exc:
            raise _Unreachable(_describe_network_error(exc, self.timeout)) from None
        try:
            self._bind(connection, server)
        except BaseException:
            # Not left open while the user is asked for another password.
            with contextlib.suppress(Exception):
                connection.unbind()
            raise
        return connection

    def _bind(self, connection: Connection, server: ServerUrl) -> None:
        from ldap3.core.exceptions import LDAPException

        try:
            bound = connection.bind()
        except ImportError:
            raise AuthError(
                "auth = \"kerberos\" needs the gssapi package: pip install 'bitkey-dir[kerberos]'"
            ) from None
        except LDAPException as exc:
            if self.auth != "kerberos":
                raise _Unreachable(_describe_network_error(exc, self.timeout)) from None
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
        if code == _INVALID_CREDENTIALS:
            refusal = bind_refusal(detail)
            if refusal is not None:
                raise AuthError(f"{server.url} refused the bind as {self.account}: {refusal}")
            raise _PasswordRefused(
                f"{server.url} rejected the user name or password for "
                f"{self.account} ({detail[:120]})"
            )
        if code == _STRONGER_AUTH_REQUIRED:
            raise AuthError(
                f"{server.url} requires an encrypted connection for this bind "
                f"({detail[:120]}); use ldaps:// or ldap:// without allow_plaintext"
            )
        raise AuthError(f"bind to {server.url} failed: {detail[:200] or code}")

    def _kerberos_failed(self, server: ServerUrl, exc: Exception) -> AuthError:
        text = " ".join(str(exc).split())
        return AuthError(
            f"Kerberos sign-in to {server.url} failed ({type(exc).__name__}: {text[:200]}); "
            "check that `klist` shows a valid ticket (run kinit) and that kerberos_host "
            "names the DC"
        )

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        usage = connection.usage
        if usage is not None:
            log.info(
                "%s: %s: %d bind, %d search, %d extended operations",
                self.name,
                self._server.url if self._server else "?",
                usage.bind_operations,
                usage.search_operations,
                usage.extended_operations,
            )
        # The answer is already in hand: a failing unbind changes nothing.
        with contextlib.suppress(Exception):
            connection.unbind()

    # -- searching ----------------------------------------------------------------------

    def _base_dn(self, connection: Connection) -> str:
        if self.base_dn:
            return self.base_dn
        import ldap3

        entries = list(
            self._search(connection, "", "(objectClass=*)", ["defaultNamingContext"], ldap3.BASE)
        )
        value = _first(entries[0]["raw"], "defaultNamingContext") if entries else None
        if not value:
            raise SourceError("the server does not say its naming context; set base_dn")
        self.base_dn = value.decode("utf-8")
        return self.base_dn

    def _search(
        self,
        connection: Connection,
        base: str,
        search_filter: str,
        attributes: list[str],
        scope: Any = None,
        controls: list[tuple[str, bool, None]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        import ldap3
        from ldap3.core.exceptions import LDAPException

        from bitkey_dir.sources import ldap_wire

        found = ldap_wire.search(
            connection,
            base,
            search_filter,
            scope if scope is not None else ldap3.SUBTREE,
            attributes,
            self.page_size,
            controls or (),
        )
        try:
            for dn, raw in found:
                yield {"dn": dn, "raw": raw}
        except ldap_wire.SearchFailed as exc:
            if exc.code == ldap_wire.NO_SUCH_OBJECT:
                return
            raise SourceError(f"search under {base} failed: {exc.message[:200] or exc}") from None
        except (ldap_wire.WireError, LDAPException) as exc:
            message = _describe_network_error(exc, self.timeout)
            raise SourceError(f"search failed: {message}") from None

    def _key(self, entry: dict[str, Any], warn: Warn) -> RecoveryKey | None:
        raw = entry["raw"]
        dn = entry["dn"]
        levels = dn_levels(dn)
        leaf = rdn_value(levels[0])
        key_id = key_id_from_bytes(_first(raw, "msFVE-RecoveryGuid"))
        if key_id is None:  # the name carries the GUID too
            key_id = parse_recovery_name(leaf).key_id
        if key_id is None:
            warn(f"{dn}: skipped, a recovery object without a readable Key ID")
            return None
        password = None
        typed = _first(raw, "msFVE-RecoveryPassword")
        if typed is not None:
            try:
                password = RecoveryPassword.parse(typed.decode("utf-8", errors="replace"))
            except BitkeyError as exc:
                warn(f"Key ID {key_id}: the directory holds a damaged recovery password ({exc})")
                return None
        deleted = _first(raw, "isDeleted") == b"TRUE"
        if deleted:
            last_parent = (_first(raw, "lastKnownParent") or b"").decode("utf-8", "replace")
            computer = deleted_name(leaf_value(last_parent)) if last_parent else None
            location = None
        else:
            computer = rdn_value(levels[1]) if len(levels) > 1 else None
            location = ",".join(levels[2:])
        volume = guid_from_bytes(_first(raw, "msFVE-VolumeGuid") or b"")
        return RecoveryKey(
            source=self.name,
            key_id=key_id,
            recovery_password=password,
            computer=computer,
            created=recovery_created(leaf),
            volume_id=volume,
            location=location,
            deleted=deleted,
        )

    def _deleted_container(self, base: str) -> str:
        domain = [part for part in base.split(",") if part.strip().upper().startswith("DC=")]
        return "CN=Deleted Objects," + ",".join(domain)

    def _keys_by_id(
        self, connection: Connection, key_id: KeyId, include_deleted: bool, warn: Warn
    ) -> list[RecoveryKey]:
        base = self._base_dn(connection)
        search_filter = key_id_filter(key_id)
        entries = self._search(connection, base, search_filter, KEY_ATTRIBUTES)
        keys = [key for entry in entries if (key := self._key(entry, warn))]
        if include_deleted:
            deleted = self._search(
                connection,
                self._deleted_container(base),
                search_filter,
                KEY_ATTRIBUTES + DELETED_ATTRIBUTES,
                controls=[SHOW_DELETED],
            )
            origins: dict[str, str | None] = {}
            for entry in deleted:
                key = self._key(entry, warn)
                if key is not None:
                    # The tombstone's parent is the deleted computer; its parent is the OU.
                    computer = (_first(entry["raw"], "lastKnownParent") or b"").decode("utf-8")
                    if computer not in origins:
                        origins[computer] = self._origin(connection, computer)
                    keys.append(_with_location(key, origins[computer]))
        return [key for key in keys if key_id.matches(key.key_id)]

    def _origin(self, connection: Connection, tombstone_dn: str) -> str | None:
        """Where a deleted computer lived: its tombstone's lastKnownParent."""
        import ldap3

        if not tombstone_dn:
            return None
        found = self._search(
            connection,
            tombstone_dn,
            "(objectClass=*)",
            ["lastKnownParent"],
            ldap3.BASE,
            controls=[SHOW_DELETED],
        )
        for entry in found:
            value = _first(entry["raw"], "lastKnownParent")
            return value.decode("utf-8") if value else None
        return None

    def _keys_by_computer(
        self, connection: Connection, name: ComputerName, include_deleted: bool, warn: Warn
    ) -> tuple[list[RecoveryKey], list[str]]:
        import ldap3

        base = self._base_dn(connection)
        attributes = ["cn", "sAMAccountName", "dNSHostName"]
        computers = list(self._search(connection, base, computer_filter(name), attributes))
        keys: list[RecoveryKey] = []
        for computer in computers:
            children = self._search(
                connection,
                computer["dn"],
                f"(objectClass={RECOVERY_CLASS})",
                KEY_ATTRIBUTES,
                ldap3.LEVEL,
            )
            keys += [key for entry in children if (key := self._key(entry, warn))]
        names = [leaf_value(c["dn"]) for c in computers]
        if include_deleted:
            deleted_keys, deleted_names = self._deleted_computer_keys(connection, base, name, warn)
            keys += deleted_keys
            names += deleted_names
        return keys, names

    def _deleted_computer_keys(
        self, connection: Connection, base: str, name: ComputerName, warn: Warn
    ) -> tuple[list[RecoveryKey], list[str]]:
        container = self._deleted_container(base)
        tombstones = self._search(
            connection,
            container,
            computer_filter(name, deleted=True),
            ["sAMAccountName", "lastKnownParent"],
            controls=[SHOW_DELETED],
        )
        keys: list[RecoveryKey] = []
        names: list[str] = []
        for tombstone in tombstones:
            names.append(deleted_name(leaf_value(tombstone["dn"])))
            origin = (_first(tombstone["raw"], "lastKnownParent") or b"").decode("utf-8", "replace")
            children = self._search(
                connection,
                container,
                f"(&(objectClass={RECOVERY_CLASS})"
                f"(lastKnownParent={escape_filter_value(tombstone['dn'])}))",
                KEY_ATTRIBUTES + DELETED_ATTRIBUTES,
                controls=[SHOW_DELETED],
            )
            for entry in children:
                key = self._key(entry, warn)
                if key is not None:
                    keys.append(_with_location(key, origin or None))
        return keys, names

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        connection = self._connect(warn)
        if query.computer is not None:
            keys, what = self._find_computer(connection, query.computer, query, warn)
        else:
            keys, what = self._find_key_id(connection, query, warn)
        unreadable = sum(1 for key in keys if key.recovery_password is None)
        if unreadable:
            plural = "s" if unreadable != 1 else ""
            warn(
                f"found {unreadable} recovery object{plural} for {what} but {self.account} "
                f"cannot read {'their passwords' if plural else 'its password'} ({RIGHTS_NEEDED})"
            )
        return keys

    def _find_key_id(
        self, connection: Connection, query: Query, warn: Warn
    ) -> tuple[list[RecoveryKey], str]:
        key_id = query.key_id
        if key_id is None:
            raise InputError("a query needs a Key ID or a computer name")
        keys = self._keys_by_id(connection, key_id, query.include_deleted, warn)
        what = f"Key ID {key_id}"
        if not keys:
            warn(
                f"no recovery object with {what} is visible to {self.account}; an account "
                "without read rights on recovery objects sees none, so missing rights look "
                "the same as a missing key"
            )
        return keys, what

    def _find_computer(
        self, connection: Connection, name: ComputerName, query: Query, warn: Warn
    ) -> tuple[list[RecoveryKey], str]:
        keys, names = self._keys_by_computer(connection, name, query.include_deleted, warn)
        what = ", ".join(sorted(set(names))) or name.text
        if not names:
            warn(
                f"no computer matching {name.text} under {self.base_dn} is visible to "
                f"{self.account}; an account without read rights on computer objects sees "
                "none, so missing rights look the same as a missing computer"
            )
        elif not keys:
            warn(
                f"{what}: no recovery objects visible to {self.account}: none were escrowed, "
                "or this account may not list them"
            )
        return keys, what

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        connection = self._connect(warn)
        base = self._base_dn(connection)
        for entry in self._search(
            connection, base, f"(objectClass={RECOVERY_CLASS})", KEY_ATTRIBUTES
        ):
            key = self._key(entry, warn)
            if key is not None:
                yield key

    def iter_deleted_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Recovery objects below deleted computers (Deleted Objects, with the Show Deleted
        control): two paged searches, tombstones first for the OU each computer left."""
        connection = self._connect(warn)
        container = self._deleted_container(self._base_dn(connection))
        origins: dict[str, str | None] = {}
        for tombstone in self._search(
            connection,
            container,
            "(objectClass=computer)",  # tombstones keep objectClass, not objectCategory
            ["lastKnownParent"],
            controls=[SHOW_DELETED],
        ):
            origin = _first(tombstone["raw"], "lastKnownParent")
            origins[tombstone["dn"].lower()] = origin.decode("utf-8", "replace") if origin else None
        for entry in self._search(
            connection,
            container,
            f"(objectClass={RECOVERY_CLASS})",
            KEY_ATTRIBUTES + DELETED_ATTRIBUTES,
            controls=[SHOW_DELETED],
        ):
            key = self._key(entry, warn)
            if key is not None and key.deleted:
                parent = (_first(entry["raw"], "lastKnownParent") or b"").decode("utf-8", "replace")
                yield _with_location(key, origins.get(parent.lower()))

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        """Every computer with its number of keys and the newest key's date.

        Reads no password, nor any other attribute of the recovery objects: their names carry
        the date, and their DNs the computer. Two paged searches, joined here by DN.
        """
        from bitkey_dir.audit import Escrow

        connection = self._connect(warn)
        base = self._base_dn(connection)
        counts: dict[str, tuple[int, datetime | None]] = {}
        recovery = f"(objectClass={RECOVERY_CLASS})"
        for entry in self._search(connection, base, recovery, [NO_ATTRIBUTES]):
            dn = entry["dn"]
            created = recovery_created(leaf_value(dn))
            computer = parent_dn(dn).lower()
            count, newest = counts.get(computer, (0, None))
            if created is not None and (newest is None or created > newest):
                newest = created
            counts[computer] = (count + 1, newest)
        for entry in self._search(connection, base, "(objectCategory=computer)", [NO_ATTRIBUTES]):
            dn = entry["dn"]
            count, newest = counts.pop(dn.lower(), (0, None))
            location = sys.intern(parent_dn(dn))  # one string per OU, not per computer
            yield Escrow(self.name, leaf_value(dn), location, count, newest, location)


def _kerberos_principal() -> str | None:
    try:
        import gssapi

        return str(gssapi.Credentials(usage="initiate").name)
    except Exception:  # no gssapi, no ticket: the trail then says nothing rather than guess
        return None


def _with_location(key: RecoveryKey, location: str | None) -> RecoveryKey:
    from dataclasses import replace

    return replace(key, location=location)


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
