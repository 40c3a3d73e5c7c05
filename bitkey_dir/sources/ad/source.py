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

Binding lives in connection.py, paged searches in search.py, filters and names in filters.py
and names.py; this module turns what the searches find into keys and escrow figures.
ldap3 is imported only when a lookup runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

from bitkey_dir.config import Settings
from bitkey_dir.env import CA_FILE_ENV, PASSWORD_ENV, USER_ENV
from bitkey_dir.errors import BitkeyError, InputError, SourceError
from bitkey_dir.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.sources.ad.connection import Connector
from bitkey_dir.sources.ad.filters import (
    RECOVERY_CLASS,
    computer_filter,
    escape_filter_value,
    key_id_filter,
)
from bitkey_dir.sources.ad.names import (
    deleted_name,
    dn_levels,
    guid_from_bytes,
    key_id_from_bytes,
    leaf_value,
    parent_dn,
    parse_recovery_name,
    rdn_value,
    recovery_created,
)
from bitkey_dir.sources.ad.search import Control, Entry, Scope, paged_search
from bitkey_dir.sources.ad.servers import ServerUrl
from bitkey_dir.sources.base import AuthStatus, Escrow, Warn

if TYPE_CHECKING:
    from ldap3 import Connection

    from bitkey_dir.credentials import Secret, Wanted

SHOW_DELETED: Final = ("1.2.840.113556.1.4.417", True, None)
KEY_ATTRIBUTES: Final = ["msFVE-RecoveryGuid", "msFVE-RecoveryPassword", "msFVE-VolumeGuid"]
DELETED_ATTRIBUTES: Final = ["isDeleted", "lastKnownParent"]
NO_ATTRIBUTES: Final = "1.1"  # RFC 4511: the DNs only
RIGHTS_NEEDED: Final = "it needs Read and Control Access on msFVE-RecoveryPassword"
DELETED_HINT: Final = " (keys of deleted computers are searched only with --include-deleted)"
MAX_TIMEOUT: Final = 3600  # seconds; beyond an hour a wait is a hang
MAX_PAGE_SIZE: Final = 100_000  # AD answers at most its MaxPageSize (1,000) anyway


@dataclass
class ADSource:
    """Keys from Active Directory; one connection per lookup, opened on first use."""

    type_name: ClassVar[str] = "ad"

    name: str
    connector: Connector
    base_dn: str | None = None
    page_size: int = 1000

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
                raise settings.item_error("servers", url, str(exc)) from None
        auth = settings.choice("auth", ("simple", "kerberos"), "simple")
        user = settings.string("user")
        if auth == "simple" and not user:
            raise settings.error("user", "a user name (UPN or DOMAIN\\user) for simple binds")
        ca_file = settings.existing_file("ca_file", "the CA bundle")
        connector = Connector(
            source=name,
            servers=tuple(servers),
            user=user,
            auth=auth,
            ca_file=ca_file,
            kerberos_host=settings.string("kerberos_host"),
            timeout=settings.integer("timeout", 10, minimum=1, maximum=MAX_TIMEOUT),
            allow_plaintext=settings.boolean("allow_plaintext", False),
        )
        source = cls(
            name=name,
            connector=connector,
            base_dn=settings.string("base_dn"),
            page_size=settings.integer("page_size", 1000, minimum=1, maximum=MAX_PAGE_SIZE),
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
        if ca_file:
            from bitkey_dir.small_files import check_regular_file

            check_regular_file(Path(ca_file), what=f"{CA_FILE_ENV}:")
        connector = Connector(
            source=url, servers=(server,), user=user, ca_file=Path(ca_file) if ca_file else None
        )
        return cls(name=url, connector=connector)

    def describe(self) -> str:
        link = self.connector
        who = "Kerberos ticket" if link.auth == "kerberos" else link.user
        return f"{', '.join(s.url for s in link.servers)} as {who}"

    @property
    def account(self) -> str:
        return self.connector.account

    @property
    def principal(self) -> str | None:
        """For the access trail: the bind account, or the Kerberos ticket's principal."""
        return self.connector.principal

    def close(self) -> None:
        self.connector.close()

    # -- signing in once ----------------------------------------------------------------

    @property
    def login_secret(self) -> Wanted | None:
        """The password `bitkey-dir login` reads; None for Kerberos, which has none."""
        return None if self.connector.auth == "kerberos" else self.connector.wanted

    def login(self, secret: Secret | None) -> str:
        """Prove ``secret`` with a real bind, then store it (for `bitkey-dir login`)."""
        from bitkey_dir import keystore

        if self.connector.auth == "kerberos" or secret is None:
            raise InputError(
                f"{self.name} signs in with Kerberos tickets: run kinit; there is nothing to store"
            )
        try:
            self.connector.connect(lambda message: None, secret)
            where = self.connector.server.url if self.connector.server else "?"
        finally:
            self.close()
        keystore.current().set(self.connector.wanted.entry, secret.value)
        return f"bound to {where} as {self.connector.user}; the password is stored in the keyring"

    def logout(self) -> list[str]:
        from bitkey_dir import keystore

        if self.connector.auth == "kerberos":
            return []
        wanted = self.connector.wanted
        return [wanted.label] if keystore.current().delete(wanted.entry) else []

    def auth_status(self) -> AuthStatus:
        from bitkey_dir import keystore

        if self.connector.auth == "kerberos":
            return AuthStatus(account=self.principal, kerberos=True)
        return AuthStatus(
            account=self.connector.user,
            secret="password",  # noqa: S106 - what kind of secret, not one
            stored=keystore.current().has(self.connector.wanted.entry),
            environment=bool(os.environ.get(PASSWORD_ENV)),
        )

    # -- searching ----------------------------------------------------------------------

    def _connect(self, warn: Warn) -> Connection:
        return self.connector.connect(warn)

    def _search(
        self,
        connection: Connection,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        scope: Scope = "SUBTREE",
        controls: Sequence[Control] = (),
    ) -> Iterator[Entry]:
        return paged_search(
            connection,
            base,
            search_filter,
            attributes,
            page_size=self.page_size,
            timeout=self.connector.timeout,
            scope=scope,
            controls=controls,
        )

    def _base_dn(self, connection: Connection) -> str:
        if self.base_dn:
            return self.base_dn
        entries = list(
            self._search(connection, "", "(objectClass=*)", ["defaultNamingContext"], "BASE")
        )
        value = entries[0].text("defaultNamingContext") if entries else None
        if not value:
            raise SourceError("the server does not say its naming context; set base_dn")
        self.base_dn = value
        return self.base_dn

    def _key(self, entry: Entry, warn: Warn) -> RecoveryKey | None:
        dn = entry.dn
        levels = dn_levels(dn)
        leaf = rdn_value(levels[0])
        key_id = key_id_from_bytes(entry.first("msFVE-RecoveryGuid"))
        if key_id is None:  # the name carries the GUID too
            key_id = parse_recovery_name(leaf).key_id
        if key_id is None:
            warn(f"{dn}: skipped, a recovery object without a readable Key ID")
            return None
        password = None
        typed = entry.first("msFVE-RecoveryPassword")
        if typed is not None:
            try:
                password = RecoveryPassword.parse(typed.decode("utf-8", errors="replace"))
            except BitkeyError as exc:
                warn(f"Key ID {key_id}: the directory holds a damaged recovery password ({exc})")
                return None
        deleted = entry.first("isDeleted") == b"TRUE"
        if deleted:
            last_parent = entry.text("lastKnownParent")
            computer = deleted_name(leaf_value(last_parent)) if last_parent else None
            location = None
        else:
            computer = rdn_value(levels[1]) if len(levels) > 1 else None
            location = ",".join(levels[2:])
        volume = guid_from_bytes(entry.first("msFVE-VolumeGuid") or b"")
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
                    computer = entry.text("lastKnownParent") or ""
                    if computer not in origins:
                        origins[computer] = self._origin(connection, computer)
                    keys.append(replace_location(key, origins[computer]))
        return [key for key in keys if key_id.matches(key.key_id)]

    def _origin(self, connection: Connection, tombstone_dn: str) -> str | None:
        """Where a deleted computer lived: its tombstone's lastKnownParent."""
        if not tombstone_dn:
            return None
        found = self._search(
            connection,
            tombstone_dn,
            "(objectClass=*)",
            ["lastKnownParent"],
            "BASE",
            controls=[SHOW_DELETED],
        )
        for entry in found:
            return entry.text("lastKnownParent")
        return None

    def _keys_by_computer(
        self, connection: Connection, name: ComputerName, include_deleted: bool, warn: Warn
    ) -> tuple[list[RecoveryKey], list[str]]:
        base = self._base_dn(connection)
        attributes = ["cn", "sAMAccountName", "dNSHostName"]
        computers = list(self._search(connection, base, computer_filter(name), attributes))
        keys: list[RecoveryKey] = []
        for computer in computers:
            children = self._search(
                connection,
                computer.dn,
                f"(objectClass={RECOVERY_CLASS})",
                KEY_ATTRIBUTES,
                "LEVEL",
            )
            keys += [key for entry in children if (key := self._key(entry, warn))]
        names = [leaf_value(c.dn) for c in computers]
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
            names.append(deleted_name(leaf_value(tombstone.dn)))
            origin = tombstone.text("lastKnownParent")
            children = self._search(
                connection,
                container,
                f"(&(objectClass={RECOVERY_CLASS})"
                f"(lastKnownParent={escape_filter_value(tombstone.dn)}))",
                KEY_ATTRIBUTES + DELETED_ATTRIBUTES,
                controls=[SHOW_DELETED],
            )
            for entry in children:
                key = self._key(entry, warn)
                if key is not None:
                    keys.append(replace_location(key, origin or None))
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
        if not keys and not query.include_deleted and self._deleted_holds(connection, key_id):
            warn(f"{what} belongs to a deleted computer: add --include-deleted to see its key")
        elif not keys:
            warn(
                f"no recovery object with {what} is visible to {self.account}; an account "
                "without read rights on recovery objects sees none, so missing rights look "
                "the same as a missing key" + ("" if query.include_deleted else DELETED_HINT)
            )
        return keys, what

    def _deleted_holds(self, connection: Connection, key_id: KeyId) -> bool:
        """Whether Deleted Objects holds a recovery object with this ID: one search that
        reads no attribute, made only when the live directory had none."""
        container = self._deleted_container(self._base_dn(connection))
        found = self._search(
            connection, container, key_id_filter(key_id), [NO_ATTRIBUTES], controls=[SHOW_DELETED]
        )
        return any(True for _ in found)

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
                + ("" if query.include_deleted else DELETED_HINT)
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
            origins[tombstone.dn.lower()] = tombstone.text("lastKnownParent")
        for entry in self._search(
            connection,
            container,
            f"(objectClass={RECOVERY_CLASS})",
            KEY_ATTRIBUTES + DELETED_ATTRIBUTES,
            controls=[SHOW_DELETED],
        ):
            key = self._key(entry, warn)
            if key is not None and key.deleted:
                parent = entry.text("lastKnownParent") or ""
                yield replace_location(key, origins.get(parent.lower()))

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        """Every computer with its number of keys and the newest key's date.

        Reads no password, nor any other attribute of the recovery objects: their names carry
        the date, and their DNs the computer. Two paged searches, joined here by DN.
        """
        connection = self._connect(warn)
        base = self._base_dn(connection)
        counts: dict[str, tuple[int, datetime | None]] = {}
        recovery = f"(objectClass={RECOVERY_CLASS})"
        for entry in self._search(connection, base, recovery, [NO_ATTRIBUTES]):
            dn = entry.dn
            created = recovery_created(leaf_value(dn))
            computer = parent_dn(dn).lower()
            count, newest = counts.get(computer, (0, None))
            if created is not None and (newest is None or created > newest):
                newest = created
            counts[computer] = (count + 1, newest)
        seen_keys = bool(counts)
        computers = 0
        for entry in self._search(connection, base, "(objectCategory=computer)", [NO_ATTRIBUTES]):
            dn = entry.dn
            count, newest = counts.pop(dn.lower(), (0, None))
            location = sys.intern(parent_dn(dn))  # one string per OU, not per computer
            computers += 1
            yield Escrow(self.name, leaf_value(dn), location, count, newest, location)
        if computers and not seen_keys:
            warn(invisible_keys(self.account, f"{computers} computers"))


def invisible_keys(account: str, what: str) -> str:
    """Why an audit that sees no recovery object at all may be wrong about every computer."""
    return (
        f"{what}, and not one recovery object visible to {account}: an account that may not "
        "list recovery objects sees none, so these computers look unescrowed whether or not "
        "they are (the coverage is then not to be trusted)"
    )


def replace_location(key: RecoveryKey, location: str | None) -> RecoveryKey:
    return replace(key, location=location)
