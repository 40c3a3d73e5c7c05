"""Active Directory over LDAP: msFVE-RecoveryInformation objects below computer objects.

Config (``type = "ad"``):

``servers``          ``ldaps://host[:port]`` or ``ldap://host[:port]`` (StartTLS) URLs, in order
``domain``           the domain's DNS name; without ``servers``, its DCs come from the DNS SRV
                     records ``_ldap._tcp.dc._msdcs.<domain>`` (RFC 2782 order)
``dns_servers``      DNS servers to ask (``10.0.0.53``, ``10.0.0.53:5353``, ``[::1]:53``);
                     default: the system's resolver
``discovery_scheme`` for servers found through DNS: ``"ldaps"`` (636, GC 3269; default) or
                     ``"ldap"`` (StartTLS on the SRV record's port, 389 or 3268)
``global_catalog``   ``ldaps://gc:3269`` or ``ldap://gc:3268`` URLs, or ``true`` for the
                     ``_gc._tcp.<forest>`` SRV records: lookups and key listings cover the forest
``forest``           the forest root domain for ``global_catalog = true`` (default: ``domain``)
``domains``          ``[sources.NAME.domains."child.corp.example"] servers = [...]``: the DCs
                     that passwords of that domain are read from (default: its SRV records,
                     or this source's own servers for its own domain)
``ca_file``          CA bundle for the DCs' certificates (default: the system trust store)
``base_dn``          where to search (default: from ``domain``, else the rootDSE's
                     defaultNamingContext, one more query)
``user``             UPN or DOMAIN\\user for simple binds
``auth``             ``"simple"`` (default) or ``"kerberos"`` (SASL GSSAPI with the ticket cache)
``kerberos_host``    the DC's host name for its Kerberos principal when servers are IP addresses
``timeout``          seconds to connect and for each answer (default 10)
``page_size``        entries per page of a paged search (default 1000, the AD maximum)
``allow_plaintext``  let ``ldap://`` bind without TLS (default false; warned about on every run)

With a Global Catalog, a lookup by Key ID or computer name searches the GC forest-wide for
the recovery objects (never asking it for a password, which it does not hold), then reads
each password with a base-object search from a DC of the domain its DN names. A key whose
domain's DCs cannot be reached is still reported, without its password, with a warning
naming the domain. Listing without passwords (``iter_key_entries``) reads the GC; ``iter_keys``
reads every domain of the forest (CN=Partitions) from its own DCs. Keys of deleted computers
are always those of the source's own domain.

msFVE-KeyPackage is confidential like the password: it is requested only by the source that
``with_key_packages()`` returns (``find --key-package``, ``export --key-packages``), always
from a DC of the key's own domain, never from the Global Catalog.

Binding lives in connection.py, paged searches in search.py, filters and names in filters.py
and names.py, DNS in discovery.py (pure) and locate.py, the GC's plan in forest.py; this
module turns what the searches find into keys and escrow figures. ldap3 and dnspython are
imported only when a lookup runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final

from bitkey_dir.core.env import CA_FILE_ENV, PASSWORD_ENV, USER_ENV
from bitkey_dir.core.errors import BitkeyError, InputError, SourceError
from bitkey_dir.core.model import (
    ComputerName,
    KeyEntry,
    KeyId,
    KeyPackage,
    Query,
    RecoveryKey,
    RecoveryPassword,
)
from bitkey_dir.runtime.config import Settings
from bitkey_dir.sources.ad import forest
from bitkey_dir.sources.ad.connection import Connector
from bitkey_dir.sources.ad.discovery import (
    Kind,
    NameServer,
    Scheme,
    dns_name,
    domain_dn,
    domain_of_dn,
)
from bitkey_dir.sources.ad.filters import (
    RECOVERY_CLASS,
    computer_filter,
    escape_filter_value,
    key_id_filter,
)
from bitkey_dir.sources.ad.locate import Locator
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
from bitkey_dir.sources.ad.search import Control, Entry, Scope, SearchRefused, paged_search
from bitkey_dir.sources.ad.servers import ServerUrl
from bitkey_dir.sources.ad.unseen import no_keys_below, unreadable, unseen
from bitkey_dir.sources.base import AuthStatus, Check, Escrow, Warn

if TYPE_CHECKING:
    from ldap3 import Connection

    from bitkey_dir.runtime.credentials import Secret, Wanted

SHOW_DELETED: Final = ("1.2.840.113556.1.4.417", True, None)
KEY_ATTRIBUTES: Final = list(forest.KEY_ATTRIBUTES)
LOCATE_ATTRIBUTES: Final = list(forest.LOCATE_ATTRIBUTES)  # no password
DELETED_ATTRIBUTES: Final = ["isDeleted", "lastKnownParent"]
NO_ATTRIBUTES: Final = "1.1"  # RFC 4511: the DNs only
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
    domain: str | None = None  # the source's own domain, when configured
    locator: Locator = field(default_factory=Locator)
    scheme: Scheme = "ldaps"  # for servers found through DNS
    global_catalog: Connector | None = None
    domain_servers: dict[str, tuple[ServerUrl, ...]] = field(default_factory=dict)
    key_packages: bool = False  # also read msFVE-KeyPackage (only when the user asked)
    _links: dict[str, Connector] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> ADSource:
        servers = _server_urls(settings, "servers")
        domain = _domain(settings, "domain")
        if not servers and domain is None:
            raise settings.error(
                "servers",
                'a list of ldaps:// or ldap:// URLs, or domain = "corp.example.com" to find '
                "the domain controllers through DNS",
            )
        dns_servers = []
        for entry in settings.string_list("dns_servers"):
            try:
                dns_servers.append(NameServer.parse(entry))
            except ValueError as exc:
                raise settings.item_error("dns_servers", entry, str(exc)) from None
        scheme: Scheme = (
            "ldap"
            if settings.choice("discovery_scheme", ("ldaps", "ldap"), "ldaps") == "ldap"
            else "ldaps"
        )
        forest_root = _domain(settings, "forest") or domain
        catalog_servers = _catalog_setting(settings, forest_root)
        domain_servers = _domain_tables(settings)
        auth = settings.choice("auth", ("simple", "kerberos"), "simple")
        user = settings.string("user")
        if auth == "simple" and not user:
            raise settings.error("user", "a user name (UPN or DOMAIN\\user) for simple binds")
        ca_file = settings.existing_file("ca_file", "the CA bundle")
        timeout = settings.integer("timeout", 10, minimum=1, maximum=MAX_TIMEOUT)
        locator = Locator(tuple(dns_servers), timeout)
        connector = Connector(
            source=name,
            servers=servers,
            user=user,
            auth=auth,
            ca_file=ca_file,
            kerberos_host=settings.string("kerberos_host"),
            timeout=timeout,
            allow_plaintext=settings.boolean("allow_plaintext", False),
            discover=_discovery(locator, "dc", domain, scheme) if domain and not servers else None,
        )
        global_catalog = None
        if catalog_servers is not None:
            discover = None
            if not catalog_servers and forest_root is not None:
                discover = _discovery(locator, "gc", forest_root, scheme)
            global_catalog = connector.sibling(
                catalog_servers, discover, same_hosts=bool(catalog_servers)
            )
        source = cls(
            name=name,
            connector=connector,
            base_dn=settings.string("base_dn") or (domain_dn(domain) if domain else None),
            page_size=settings.integer("page_size", 1000, minimum=1, maximum=MAX_PAGE_SIZE),
            domain=domain,
            locator=locator,
            scheme=scheme,
            global_catalog=global_catalog,
            domain_servers=domain_servers,
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
            from bitkey_dir.runtime.small_files import check_regular_file

            check_regular_file(Path(ca_file), what=f"{CA_FILE_ENV}:")
        connector = Connector(
            source=url, servers=(server,), user=user, ca_file=Path(ca_file) if ca_file else None
        )
        return cls(name=url, connector=connector)

    def with_key_packages(self) -> ADSource:
        """This source, also reading each key's msFVE-KeyPackage from a DC of its domain
        (never from a Global Catalog, which does not hold it)."""
        return replace(self, key_packages=True, _links={})

    def _key_attributes(self) -> list[str]:
        """What a key is read with: its key package too only when it was asked for."""
        if self.key_packages:
            return [*KEY_ATTRIBUTES, forest.KEY_PACKAGE]
        return list(KEY_ATTRIBUTES)

    def describe(self) -> str:
        link = self.connector
        who = "Kerberos ticket" if link.auth == "kerberos" else link.user
        where = ", ".join(s.url for s in link.servers) or f"DCs of {self.domain} from DNS"
        catalog = self.global_catalog
        if catalog is not None:
            found = ", ".join(s.url for s in catalog.servers) or "Global Catalogs from DNS"
            where += f" (forest-wide through {found})"
        return f"{where} as {who}"

    @property
    def account(self) -> str:
        return self.connector.account

    @property
    def principal(self) -> str | None:
        """For the access trail: the bind account, or the Kerberos ticket's principal."""
        return self.connector.principal

    def close(self) -> None:
        self.connector.close()
        if self.global_catalog is not None:
            self.global_catalog.close()
        links, self._links = self._links, {}
        for link in links.values():
            link.close()

    # -- signing in once ----------------------------------------------------------------

    @property
    def login_secret(self) -> Wanted | None:
        """The password `bitkey-dir login` reads; None for Kerberos, which has none."""
        return None if self.connector.auth == "kerberos" else self.connector.wanted

    def login(self, secret: Secret | None) -> str:
        """Prove ``secret`` with a real bind, then store it (for `bitkey-dir login`)."""
        from bitkey_dir.runtime import keystore

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
        from bitkey_dir.runtime import keystore

        if self.connector.auth == "kerberos":
            return []
        wanted = self.connector.wanted
        return [wanted.label] if keystore.current().delete(wanted.entry) else []

    def auth_status(self) -> AuthStatus:
        from bitkey_dir.runtime import keystore

        if self.connector.auth == "kerberos":
            return AuthStatus(account=self.principal, kerberos=True)
        return AuthStatus(
            account=self.connector.user,
            secret="password",  # noqa: S106 - what kind of secret, not one
            stored=keystore.current().has(self.connector.wanted.entry),
            environment=bool(os.environ.get(PASSWORD_ENV)),
        )

    # -- doctor -------------------------------------------------------------------------

    def diagnose(self, warn: Warn) -> list[Check]:
        """Servers, certificates, bind, clock and the rights on recovery objects per OU."""
        from bitkey_dir.sources.ad import diagnosis

        return diagnosis.diagnose(self, warn)

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
        package = None
        sealed = entry.first(forest.KEY_PACKAGE) if self.key_packages else None
        if sealed:
            try:
                package = KeyPackage(sealed)
            except ValueError:
                warn(f"Key ID {key_id}: skipped its key package ({len(sealed)} bytes, too large)")
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
            key_package=package,
        )

    def _deleted_container(self, base: str) -> str:
        domain = [part for part in base.split(",") if part.strip().upper().startswith("DC=")]
        return "CN=Deleted Objects," + ",".join(domain)

    def _keys_by_id(
        self, connection: Connection, key_id: KeyId, include_deleted: bool, warn: Warn
    ) -> list[RecoveryKey]:
        base = self._base_dn(connection)
        search_filter = key_id_filter(key_id)
        entries = self._search(connection, base, search_filter, self._key_attributes())
        keys = [key for entry in entries if (key := self._key(entry, warn))]
        if include_deleted:
            keys += self._deleted_keys_by_id(connection, key_id, warn)
        return [key for key in keys if key_id.matches(key.key_id)]

    def _deleted_keys_by_id(
        self, connection: Connection, key_id: KeyId, warn: Warn
    ) -> list[RecoveryKey]:
        deleted = self._search(
            connection,
            self._deleted_container(self._base_dn(connection)),
            key_id_filter(key_id),
            self._key_attributes() + DELETED_ATTRIBUTES,
            controls=[SHOW_DELETED],
        )
        keys = []
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
                self._key_attributes(),
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
                self._key_attributes() + DELETED_ATTRIBUTES,
                controls=[SHOW_DELETED],
            )
            for entry in children:
                key = self._key(entry, warn)
                if key is not None:
                    keys.append(replace_location(key, origin or None))
        return keys, names

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        unreached: set[KeyId] = set()
        if self.global_catalog is not None:
            keys, what = self._find_in_forest(query, unreached, warn)
        elif query.computer is not None:
            keys, what = self._find_computer(self._connect(warn), query.computer, query, warn)
        else:
            keys, what = self._find_key_id(self._connect(warn), query, warn)
        count = sum(
            1 for key in keys if key.recovery_password is None and key.key_id not in unreached
        )
        if count:
            warn(unreadable(count, what, self.account))
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
            searched = query.include_deleted
            warn(unseen("key", what, self.account, deleted_searched=searched))
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
            subject = f"{name.text} under {self.base_dn}"
            searched = query.include_deleted
            warn(unseen("computer", subject, self.account, deleted_searched=searched))
        elif not keys:
            warn(no_keys_below(what, self.account))
        return keys, what

    # -- forest-wide, through the Global Catalog ------------------------------------------

    def _catalog(self, warn: Warn) -> Connection:
        if self.global_catalog is None:
            raise SourceError("no global_catalog is configured")
        return self.global_catalog.connect(warn)

    def _run(self, connection: Connection, search: forest.Search) -> Iterator[Entry]:
        return self._search(connection, search.base, search.filter, search.attributes, search.scope)

    def _find_in_forest(
        self, query: Query, unreached: set[KeyId], warn: Warn
    ) -> tuple[list[RecoveryKey], str]:
        """Locate in the Global Catalog, then read each password from its own domain."""
        catalog = self._catalog(warn)
        hits: list[tuple[Entry, RecoveryKey]] = []
        names: list[str] = []
        if query.computer is not None:
            computers = list(self._run(catalog, forest.locate_computers(query.computer)))
            names = [leaf_value(computer.dn) for computer in computers]
            for computer in computers:
                for entry in self._run(catalog, forest.locate_children(computer.dn)):
                    if (key := self._key(entry, warn)) is not None:
                        hits.append((entry, key))
            what = ", ".join(sorted(set(names))) or query.computer.text
        elif query.key_id is not None:
            key_id = query.key_id
            for entry in self._run(catalog, forest.locate_key_id(key_id)):
                key = self._key(entry, warn)
                if key is not None and key_id.matches(key.key_id):
                    hits.append((entry, key))
            what = f"Key ID {key_id}"
        else:
            raise InputError("a query needs a Key ID or a computer name")
        keys = self._read_from_owners(hits, unreached, warn)
        if query.include_deleted:
            keys += self._own_deleted(query, bool(keys), warn)
        where, searched = " in the Global Catalog", query.include_deleted
        if query.computer is not None and not names:
            subject = f"{query.computer.text} in the forest"
            warn(unseen("computer", subject, self.account, where=where, deleted_searched=searched))
        elif query.computer is not None and not keys:
            warn(no_keys_below(what, self.account))
        elif not keys:
            warn(unseen("key", what, self.account, where=where, deleted_searched=searched))
        return keys, what

    def _read_from_owners(
        self, hits: list[tuple[Entry, RecoveryKey]], unreached: set[KeyId], warn: Warn
    ) -> list[RecoveryKey]:
        """Each located key read again, password included, with a base-object search on a
        DC of the domain its DN names; keys whose domain cannot be read stay as located
        (no password), counted in ``unreached`` and named in one warning per domain."""
        groups: dict[str | None, list[tuple[Entry, RecoveryKey]]] = {}
        for entry, key in hits:
            groups.setdefault(domain_of_dn(entry.dn), []).append((entry, key))
        keys: list[RecoveryKey] = []
        for domain, members in groups.items():
            done = 0
            try:
                if domain is None:
                    raise SourceError("the Global Catalog gave DNs that name no domain")
                connection = self._domain_connection(domain, warn)
                for entry, located in members:
                    found = [
                        self._key(e, warn)
                        for e in self._run(
                            connection, forest.read_key(entry.dn, key_package=self.key_packages)
                        )
                    ]
                    read = next((key for key in found if key is not None), None)
                    if read is None:
                        warn(
                            f"Key ID {located.key_id} is in the Global Catalog but not on the "
                            f"domain controller of {domain} (not replicated yet, or deleted)"
                        )
                        unreached.add(located.key_id)
                    keys.append(read or located)
                    done += 1
            except BitkeyError as exc:
                left = [key for _, key in members[done:]]
                unreached.update(key.key_id for key in left)
                keys += left
                plural = "s" if len(left) != 1 else ""
                warn(
                    f"{len(left)} key{plural} found in the Global Catalog belong to "
                    f"{domain or 'an unnamed domain'}, whose passwords could not be read: "
                    f"{exc.message}"
                )
        return keys

    def _domain_connection(self, domain: str, warn: Warn) -> Connection:
        """A connection to a DC of ``domain``: configured, the source's own, or from DNS."""
        route = forest.route(domain, self.domain_servers, self._own_domain(warn))
        if route.way == "own":
            return self._connect(warn)
        link = self._links.get(domain)
        if link is None:
            discover = (
                None if route.servers else _discovery(self.locator, "dc", domain, self.scheme)
            )
            link = self._links[domain] = self.connector.sibling(route.servers, discover)
        try:
            return link.connect(warn)
        except SourceError as exc:
            raise SourceError(f"{domain}: {exc.message}") from None

    def _own_domain(self, warn: Warn) -> str | None:
        """The DNS name of the source's own domain: configured, from base_dn, or asked."""
        if self.domain is not None:
            return self.domain
        if self.base_dn is None:
            try:
                self._base_dn(self._connect(warn))
            except BitkeyError:
                return None  # its own DCs are down: the domain is then found through DNS
        return domain_of_dn(self.base_dn or "")

    def _own_deleted(self, query: Query, live: bool, warn: Warn) -> list[RecoveryKey]:
        """Keys of deleted computers, from the source's own domain's Deleted Objects."""
        try:
            connection = self._connect(warn)
            if query.computer is not None:
                base = self._base_dn(connection)
                return self._deleted_computer_keys(connection, base, query.computer, warn)[0]
            if query.key_id is None:
                return []
            return self._deleted_keys_by_id(connection, query.key_id, warn)
        except BitkeyError as exc:
            if not live:
                raise
            warn(f"keys of deleted computers were not searched: {exc.message}")
            return []

    def _forest_domains(self, warn: Warn) -> list[str]:
        """The forest's domains, from the crossRef objects the Global Catalog holds."""
        catalog = self._catalog(warn)
        root = list(
            self._search(catalog, "", "(objectClass=*)", ["configurationNamingContext"], "BASE")
        )
        configuration = root[0].text("configurationNamingContext") if root else None
        if not configuration:
            raise SourceError("the Global Catalog does not name its configuration partition")
        domains: list[str] = []
        for entry in self._run(catalog, forest.domain_partitions(configuration)):
            domain = domain_of_dn(entry.text("nCName") or "")
            if domain is None:
                warn(f"{entry.dn}: skipped, a domain partition without a usable name")
            elif domain not in domains:
                domains.append(domain)
        return domains

    # -- listing ------------------------------------------------------------------------------

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Every key of the source's domain (base_dn), or with a Global Catalog every key of
        every domain of the forest, each read from a DC of its own domain."""
        recovery = f"(objectClass={RECOVERY_CLASS})"
        if self.global_catalog is None:
            connection = self._connect(warn)
            bases = [(connection, self._base_dn(connection))]
        else:
            bases = [
                (self._domain_connection(domain, warn), domain_dn(domain))
                for domain in self._forest_domains(warn)
            ]
        for connection, base in bases:
            for entry in self._search(connection, base, recovery, self._key_attributes()):
                key = self._key(entry, warn)
                if key is not None:
                    yield key

    def iter_key_entries(self, warn: Warn) -> Iterator[KeyEntry]:
        """Every key iter_keys gives, and the deleted computers' keys (marked deleted), never
        asking for a password: from the Global Catalog (the whole forest) when there is one,
        else from the source's domain. Deleted keys come from the source's own domain; an
        account that may not read Deleted Objects gets a warning, not a failure."""
        if self.global_catalog is not None:
            connection, base = self._catalog(warn), forest.FOREST
        else:
            connection = self._connect(warn)
            base = self._base_dn(connection)
        for entry in self._run(connection, forest.list_keys(base)):
            key = self._key(entry, warn)
            if key is not None:
                yield KeyEntry.of(key)
        try:
            for key in self._deleted_keys(warn, LOCATE_ATTRIBUTES):
                yield KeyEntry.of(key)
        except SearchRefused as exc:
            warn(
                f"keys of deleted computers are not listed: {self.account} may not read "
                f"Deleted Objects ({exc.message})"
            )

    def volume_keys(self, key_id: KeyId, warn: Warn) -> list[RecoveryKey] | None:
        """The key and the other keys of its volume (the same msFVE-VolumeGuid below the
        same computer), without passwords; None when the domain no longer has the key.
        Two searches, neither asking for a password."""
        connection = self._connect(warn)
        base = self._base_dn(connection)
        found = [
            (entry.dn, key)
            for entry in self._search(connection, base, key_id_filter(key_id), LOCATE_ATTRIBUTES)
            if (key := self._key(entry, warn)) is not None and key.key_id == key_id
        ]
        if not found:
            return None
        dn, key = found[0]
        computer = parent_dn(dn)
        recovery = f"(objectClass={RECOVERY_CLASS})"
        siblings = [
            sibling
            for entry in self._search(connection, computer, recovery, LOCATE_ATTRIBUTES, "LEVEL")
            if (sibling := self._key(entry, warn)) is not None
        ]
        if key.volume_id is None:
            return siblings
        return [sibling for sibling in siblings if sibling.volume_id in (None, key.volume_id)]

    def iter_deleted_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Recovery objects below deleted computers (Deleted Objects, with the Show Deleted
        control): two paged searches, tombstones first for the OU each computer left."""
        return self._deleted_keys(warn, self._key_attributes())

    def _deleted_keys(self, warn: Warn, attributes: list[str]) -> Iterator[RecoveryKey]:
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
            attributes + DELETED_ATTRIBUTES,
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
            warn(unseen("escrow", f"{computers} computers", self.account))


def replace_location(key: RecoveryKey, location: str | None) -> RecoveryKey:
    return replace(key, location=location)


def _server_urls(settings: Settings, key: str) -> tuple[ServerUrl, ...]:
    """A list of ldaps:// or ldap:// URLs; each bad one named in the error."""
    servers = []
    for url in settings.string_list(key):
        try:
            servers.append(ServerUrl.parse(url))
        except ValueError as exc:
            raise settings.item_error(key, url, str(exc)) from None
    return tuple(servers)


def _domain(settings: Settings, key: str) -> str | None:
    text = settings.string(key)
    if text is None:
        return None
    try:
        return dns_name(text.strip())
    except ValueError as exc:
        raise settings.error(key, str(exc)) from None


def _catalog_setting(settings: Settings, forest_root: str | None) -> tuple[ServerUrl, ...] | None:
    """``global_catalog``: None when not set, its URLs, or () to find GCs through DNS."""
    catalog = settings.value("global_catalog")
    if catalog is True:
        if forest_root is None:
            raise settings.error(
                "global_catalog",
                "true together with forest (or domain): the forest root domain whose "
                "_gc._tcp SRV records name the Global Catalogs",
            )
        return ()
    if isinstance(catalog, str | list) and catalog:
        return _server_urls(settings, "global_catalog")
    if catalog is None or catalog is False:
        return None
    raise settings.error(
        "global_catalog", "true, or a list of ldaps://host:3269 or ldap://host:3268 URLs"
    )


def _domain_tables(settings: Settings) -> dict[str, tuple[ServerUrl, ...]]:
    """``[sources.NAME.domains."child.corp.example"] servers = [...]``, by domain name."""
    found: dict[str, tuple[ServerUrl, ...]] = {}
    for named, table in settings.tables("domains").items():
        try:
            domain = dns_name(named)
        except ValueError as exc:
            raise settings.item_error("domains", named, str(exc)) from None
        urls = _server_urls(table, "servers")
        if not urls:
            raise table.error("servers", "a list of ldaps:// or ldap:// URLs")
        table.reject_unknown()
        found[domain] = urls
    return found


def _discovery(
    locator: Locator, kind: Kind, domain: str, scheme: Scheme
) -> Callable[[], tuple[ServerUrl, ...]]:
    """Finds the servers when the first connection is made, never when the source is built."""

    def discover() -> tuple[ServerUrl, ...]:
        return locator.servers(kind, domain, scheme)

    return discover
