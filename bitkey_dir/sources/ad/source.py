"""Active Directory over LDAP: msFVE-RecoveryInformation objects below computer objects.

The settings (``type = "ad"``) are described in settings.py.

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

Building lives in settings.py, binding in connection.py, searches and the keys made of them
in reader.py, Deleted Objects in deleted.py, the Global Catalog in catalog.py (its plan in
forest.py), filters and names in filters.py and names.py, DNS in discovery.py (pure) and
locate.py; this module answers the source's protocols with them. ldap3 and dnspython are
imported only when a lookup runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from bitkey_dir.core.errors import BitkeyError, InputError, SourceError
from bitkey_dir.core.model import ComputerName, KeyEntry, KeyId, Query, RecoveryKey
from bitkey_dir.sources.ad import catalog, forest
from bitkey_dir.sources.ad.base_dn import missing_base
from bitkey_dir.sources.ad.connection import Connector
from bitkey_dir.sources.ad.deleted import DeletedObjects
from bitkey_dir.sources.ad.discovery import domain_dn, domain_of_dn
from bitkey_dir.sources.ad.filters import computer_filter, key_id_filter
from bitkey_dir.sources.ad.forest import RECOVERY_OBJECTS
from bitkey_dir.sources.ad.names import leaf_value, parent_dn, recovery_created
from bitkey_dir.sources.ad.reader import LOCATE_ATTRIBUTES, NO_ATTRIBUTES, Reader
from bitkey_dir.sources.ad.search import Entry, SearchRefused
from bitkey_dir.sources.ad.settings import ADConfig, discovery
from bitkey_dir.sources.ad.unseen import no_keys_below, unreadable, unseen
from bitkey_dir.sources.base import Warn

if TYPE_CHECKING:
    from bitkey_dir.core.reports import AuthStatus, Check, Escrow
    from bitkey_dir.core.rights import Holder, RightsChange, RightsRequest
    from bitkey_dir.runtime.credentials import Secret, Wanted
    from bitkey_dir.sources.ad.simple_bind import Connection


@dataclass
class ADSource(ADConfig):
    """Keys from Active Directory; one connection per lookup, opened on first use."""

    type_name: ClassVar[str] = "ad"
    # A Key ID prefix is one filter on the recovery objects' names: always asked, never
    # narrowed by the Key ID index, so 8 digits find a key escrowed a minute ago.
    searches_key_ids: ClassVar[bool] = True

    # Connections to DCs of the forest's other domains, by domain, opened when first needed.
    _links: dict[str, Connector] = field(default_factory=dict, repr=False)
    # Whether base_dn is known to exist: configured ones are looked up once, before the
    # first search under them (base_dn.py).
    _base_exists: bool = field(default=False, repr=False)

    def with_key_packages(self) -> ADSource:
        """This source, also reading each key's msFVE-KeyPackage from a DC of its domain
        (never from a Global Catalog, which does not hold it)."""
        return replace(self, key_packages=True, _links={})

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
        from bitkey_dir.core.reports import AuthStatus
        from bitkey_dir.runtime import credentials, keystore

        if self.connector.auth == "kerberos":
            return AuthStatus(account=self.principal, kerberos=True)
        return AuthStatus(
            account=self.connector.user,
            secret="password",  # noqa: S106 - what kind of secret, not one
            stored=keystore.current().has(self.connector.wanted.entry),
            environment=credentials.in_environment(self.connector.wanted),
        )

    # -- doctor -------------------------------------------------------------------------

    def diagnose(self, warn: Warn) -> list[Check]:
        """Servers, certificates, bind, clock and the rights on recovery objects per OU."""
        from bitkey_dir.sources.ad import diagnosis

        return diagnosis.diagnose(self, warn)

    # -- rights -------------------------------------------------------------------------

    def rights_holders(self, scope: str | None, warn: Warn) -> list[Holder]:
        """Who may see and read the recovery objects below ``scope`` (an OU; default the
        domain), from its DACL, by which ACE."""
        from bitkey_dir.sources.ad import rights

        return rights.show(self, scope, warn)

    def change_rights(self, request: RightsRequest, warn: Warn) -> RightsChange:
        """Grant or revoke the helpdesk's inheritable ACEs on an OU (rights.py)."""
        from bitkey_dir.sources.ad import rights

        return rights.change(self, request, warn)

    def own_groups(self, warn: Warn) -> list[str]:
        """The groups the account this source binds as is in, nested ones too."""
        from bitkey_dir.sources.ad import rights

        return rights.own_groups(self, warn)

    # -- reaching the directory ---------------------------------------------------------

    @property
    def _reader(self) -> Reader:
        return Reader(self.name, self.page_size, self.connector.timeout, self.key_packages)

    def _connect(self, warn: Warn) -> Connection:
        return self.connector.connect(warn)

    def _base_dn(self, connection: Connection) -> str:
        if self.base_dn:
            return self.base_dn
        value = self._reader.root(connection, "defaultNamingContext")
        if not value:
            raise SourceError("the server does not say its naming context; set base_dn")
        self.base_dn = value
        self._base_exists = True
        return self.base_dn

    def _below_base(
        self, connection: Connection, base: str, entries: Iterator[Entry]
    ) -> Iterator[Entry]:
        """``entries`` of a search under base_dn. One that finds nothing first proves that
        base_dn exists: the DC answers a missing base with noSuchObject, which reads as
        "nothing here". The proof is one more search, made only then, and once."""
        found = False
        for entry in entries:
            found = True
            yield entry
        if found:
            self._base_exists = True
        else:
            self._prove_base(connection, base)

    def _prove_base(self, connection: Connection, base: str) -> None:
        if self._base_exists:
            return
        problem = missing_base(
            self._reader,
            connection,
            base,
            setting=self.base_setting,
            account=self.account,
            server=self.connector.server.url if self.connector.server else "the DC",
        )
        if problem is not None:
            raise problem
        self._base_exists = True

    def _deleted(self, connection: Connection) -> DeletedObjects:
        """The own domain's Deleted Objects."""
        base = self._base_dn(connection)
        self._prove_base(connection, base)  # its container's name is made of base_dn
        return DeletedObjects(self._reader, connection, base)

    def _catalog(self, warn: Warn) -> Connection:
        if self.global_catalog is None:
            raise SourceError("no global_catalog is configured")
        return self.global_catalog.connect(warn)

    def _domain_connection(self, domain: str, warn: Warn) -> Connection:
        """A connection to a DC of ``domain``: configured, the source's own, or from DNS."""
        route = forest.route(domain, self.domain_servers, self._own_domain(warn))
        if route.way == "own":
            return self._connect(warn)
        link = self._links.get(domain)
        if link is None and not route.servers and self.connector.ca_file is None:
            raise InputError(
                f"the DCs of {domain} would be found through DNS, which takes ca_file (the CA "
                f'that issued their certificates), or [sources.{self.name}.domains."{domain}"] '
                "servers"
            )
        if link is None:
            discover = None if route.servers else discovery(self.locator, "dc", domain, self.scheme)
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

    # -- lookups ------------------------------------------------------------------------

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
        reader = self._reader
        base = self._base_dn(connection)
        found = reader.search(connection, base, key_id_filter(key_id), reader.key_attributes)
        keys = reader.keys(self._below_base(connection, base, found), warn)
        if query.include_deleted:
            keys += self._deleted(connection).keys_by_id(key_id, warn)
        keys = [key for key in keys if key_id.matches(key.key_id)]
        what = f"Key ID {key_id}"
        if not keys and not query.include_deleted and self._deleted(connection).holds(key_id):
            warn(f"{what} belongs to a deleted computer: add --include-deleted to see its key")
        else:
            self._say_what_is_missing(query, keys, [], what, warn)
        return keys, what

    def _find_computer(
        self, connection: Connection, name: ComputerName, query: Query, warn: Warn
    ) -> tuple[list[RecoveryKey], str]:
        reader = self._reader
        base = self._base_dn(connection)
        attributes = ["cn", "sAMAccountName", "dNSHostName"]
        found = reader.search(connection, base, computer_filter(name), attributes)
        computers = list(self._below_base(connection, base, found))
        keys: list[RecoveryKey] = []
        for computer in computers:
            children = reader.search(
                connection, computer.dn, RECOVERY_OBJECTS, reader.key_attributes, "LEVEL"
            )
            keys += reader.keys(children, warn)
        names = [leaf_value(c.dn) for c in computers]
        if query.include_deleted:
            deleted_keys, deleted_names = self._deleted(connection).computer_keys(name, warn)
            keys += deleted_keys
            names += deleted_names
        what = ", ".join(sorted(set(names))) or name.text
        self._say_what_is_missing(query, keys, names, what, warn, place=f"under {self.base_dn}")
        return keys, what

    def _find_in_forest(
        self, query: Query, unreached: set[KeyId], warn: Warn
    ) -> tuple[list[RecoveryKey], str]:
        """Locate in the Global Catalog, then read each password from its own domain."""
        reader = self._reader
        hits, names = catalog.locate(reader, self._catalog(warn), query, warn)
        keys = catalog.read_from_owners(reader, hits, self._domain_connection, unreached, warn)
        if query.include_deleted:
            keys += self._own_deleted(query, bool(keys), warn)
        if query.computer is not None:
            what = ", ".join(sorted(set(names))) or query.computer.text
        else:
            what = f"Key ID {query.key_id}"
        self._say_what_is_missing(
            query, keys, names, what, warn, place="in the forest", where=" in the Global Catalog"
        )
        return keys, what

    def _say_what_is_missing(
        self,
        query: Query,
        keys: list[RecoveryKey],
        names: list[str],
        what: str,
        warn: Warn,
        *,
        place: str = "",
        where: str = "",
    ) -> None:
        """A lookup that found nothing says that missing rights look the same: no computer
        (by name), no key below the computers found, or no key (by Key ID)."""
        searched = query.include_deleted
        if query.computer is not None and not names:
            subject = f"{query.computer.text} {place}"
            warn(unseen("computer", subject, self.account, where=where, deleted_searched=searched))
        elif query.computer is not None and not keys:
            warn(no_keys_below(what, self.account))
        elif query.computer is None and not keys:
            warn(unseen("key", what, self.account, where=where, deleted_searched=searched))

    def _own_deleted(self, query: Query, live: bool, warn: Warn) -> list[RecoveryKey]:
        """Keys of deleted computers, from the source's own domain's Deleted Objects."""
        try:
            deleted = self._deleted(self._connect(warn))
            if query.computer is not None:
                return deleted.computer_keys(query.computer, warn)[0]
            if query.key_id is None:
                return []
            return deleted.keys_by_id(query.key_id, warn)
        except BitkeyError as exc:
            if not live:
                raise
            warn(f"keys of deleted computers were not searched: {exc.message}")
            return []

    # -- listing ------------------------------------------------------------------------------

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Every key of the source's domain (base_dn), or with a Global Catalog every key of
        every domain of the forest, each read from a DC of its own domain."""
        reader = self._reader
        if self.global_catalog is None:
            connection = self._connect(warn)
            bases = [(connection, self._base_dn(connection))]
        else:
            bases = [
                (self._domain_connection(domain, warn), domain_dn(domain))
                for domain in catalog.forest_domains(reader, self._catalog(warn), warn)
            ]
        for connection, base in bases:
            found = reader.search(connection, base, RECOVERY_OBJECTS, reader.key_attributes)
            if self.global_catalog is None:
                found = self._below_base(connection, base, found)
            for entry in found:
                key = reader.key(entry, warn)
                if key is not None:
                    yield key

    def iter_key_entries(self, warn: Warn) -> Iterator[KeyEntry]:
        """Every key iter_keys gives, and the deleted computers' keys (marked deleted), never
        asking for a password: from the Global Catalog (the whole forest) when there is one,
        else from the source's domain. Deleted keys come from the source's own domain; an
        account that may not read Deleted Objects gets a warning, not a failure."""
        reader = self._reader
        if self.global_catalog is not None:
            listed = reader.run(self._catalog(warn), forest.list_keys())
        else:
            connection = self._connect(warn)
            base = self._base_dn(connection)
            listed = self._below_base(
                connection, base, reader.run(connection, forest.list_keys(base))
            )
        for entry in listed:
            key = reader.key(entry, warn)
            if key is not None:
                yield KeyEntry.of(key)
        try:
            for key in self._deleted(self._connect(warn)).keys(warn, LOCATE_ATTRIBUTES):
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
        reader = self._reader
        connection = self._connect(warn)
        base = self._base_dn(connection)
        located = reader.search(connection, base, key_id_filter(key_id), LOCATE_ATTRIBUTES)
        found = [
            (entry.dn, key)
            for entry in self._below_base(connection, base, located)
            if (key := reader.key(entry, warn)) is not None and key.key_id == key_id
        ]
        if not found:
            return None
        dn, key = found[0]
        below = reader.search(
            connection, parent_dn(dn), RECOVERY_OBJECTS, LOCATE_ATTRIBUTES, "LEVEL"
        )
        siblings = reader.keys(below, warn)
        if key.volume_id is None:
            return siblings
        return [sibling for sibling in siblings if sibling.volume_id in (None, key.volume_id)]

    def iter_deleted_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        """Recovery objects below deleted computers (Deleted Objects, with the Show Deleted
        control): two paged searches, tombstones first for the OU each computer left."""
        # A generator: the directory is asked nothing until the first key is wanted.
        yield from self._deleted(self._connect(warn)).keys(warn, self._reader.key_attributes)

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        """Every computer with its number of keys and the newest key's date.

        Reads no password, nor any other attribute of the recovery objects: their names carry
        the date, and their DNs the computer. Two paged searches, joined here by DN.
        """
        from bitkey_dir.core.reports import Escrow

        reader = self._reader
        connection = self._connect(warn)
        base = self._base_dn(connection)
        counts: dict[str, tuple[int, datetime | None]] = {}
        for entry in reader.search(connection, base, RECOVERY_OBJECTS, [NO_ATTRIBUTES]):
            self._base_exists = True
            dn = entry.dn
            created = recovery_created(leaf_value(dn))
            computer = parent_dn(dn).lower()
            count, newest = counts.get(computer, (0, None))
            if created is not None and (newest is None or created > newest):
                newest = created
            counts[computer] = (count + 1, newest)
        seen_keys = bool(counts)
        computers = 0
        every = self._below_base(
            connection,
            base,
            reader.search(connection, base, "(objectCategory=computer)", [NO_ATTRIBUTES]),
        )
        for entry in every:
            dn = entry.dn
            count, newest = counts.pop(dn.lower(), (0, None))
            location = sys.intern(parent_dn(dn))  # one string per OU, not per computer
            computers += 1
            yield Escrow(self.name, leaf_value(dn), location, count, newest, location)
        if computers and not seen_keys:
            warn(unseen("escrow", f"{computers} computers", self.account))
