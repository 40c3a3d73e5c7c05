"""How one AD source reads recovery objects: its paged searches, and the keys made of them.

Every search the source makes goes through :meth:`Reader.search` (with the source's page
size and time-out), and every recovery object it finds becomes a key in :meth:`Reader.key`,
whether it came from the source's own DC, a DC of another domain, the Global Catalog or
Deleted Objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.core.model import KeyPackage, RecoveryKey, RecoveryPassword
from bitkey_dir.sources.ad import forest
from bitkey_dir.sources.ad.ber import Control
from bitkey_dir.sources.ad.names import (
    deleted_name,
    dn_head,
    guid_from_bytes,
    key_id_from_bytes,
    leaf_value,
    parse_recovery_name,
    rdn_value,
    recovery_created,
)
from bitkey_dir.sources.ad.search import Entry, Scope, paged_search
from bitkey_dir.sources.base import Warn

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.simple_bind import Connection

KEY_ATTRIBUTES: Final = list(forest.KEY_ATTRIBUTES)
LOCATE_ATTRIBUTES: Final = list(forest.LOCATE_ATTRIBUTES)  # no password
NO_ATTRIBUTES: Final = "1.1"  # RFC 4511: the DNs only


@dataclass(frozen=True)
class Reader:
    """The searches of one source, and the keys it makes of what they find."""

    source: str  # the name every key carries
    page_size: int
    timeout: int
    key_packages: bool = False  # also read msFVE-KeyPackage (only when the user asked)

    @property
    def key_attributes(self) -> list[str]:
        """What a key is read with: its key package too only when it was asked for."""
        if self.key_packages:
            return [*KEY_ATTRIBUTES, forest.KEY_PACKAGE]
        return list(KEY_ATTRIBUTES)

    def search(
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
            timeout=self.timeout,
            scope=scope,
            controls=controls,
        )

    def run(self, connection: Connection, search: forest.Search) -> Iterator[Entry]:
        return self.search(connection, search.base, search.filter, search.attributes, search.scope)

    def root(self, connection: Connection, attribute: str) -> str | None:
        """One attribute of the DC's rootDSE (defaultNamingContext, …), if it says."""
        entries = list(self.search(connection, "", "(objectClass=*)", [attribute], "BASE"))
        return entries[0].text(attribute) if entries else None

    def keys(self, entries: Iterable[Entry], warn: Warn) -> list[RecoveryKey]:
        return [key for entry in entries if (key := self.key(entry, warn)) is not None]

    def key(self, entry: Entry, warn: Warn) -> RecoveryKey | None:
        """The key a recovery object holds; None (with a warning) for one without a
        readable Key ID or with a damaged password."""
        dn = entry.dn
        # The attributes by their lower-case names, without Entry.first: once per key.
        attributes = entry.attributes
        leaf_rdn, parent_rdn, above = dn_head(dn)
        leaf = rdn_value(leaf_rdn)
        values = attributes.get("msfve-recoveryguid")
        key_id = key_id_from_bytes(values[0]) if values else None  # full, when there is one
        if key_id is None:  # the name carries the GUID too
            key_id = parse_recovery_name(leaf).key_id
            if key_id is None or not key_id.is_full:  # a name's "{…--…}" parses as a prefix
                warn(f"{dn}: skipped, a recovery object without a readable Key ID")
                return None
        password = None
        values = attributes.get("msfve-recoverypassword")
        if values:
            try:
                password = RecoveryPassword.parse(values[0].decode("utf-8", "replace"))
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
        values = attributes.get("isdeleted")
        deleted = values[0] == b"TRUE" if values else False
        if deleted:
            last_parent = entry.text("lastKnownParent")
            computer = deleted_name(leaf_value(last_parent)) if last_parent else None
            location = None
        else:
            computer = rdn_value(parent_rdn) if parent_rdn is not None else None
            location = above
        values = attributes.get("msfve-volumeguid")
        volume = guid_from_bytes(values[0]) if values else None
        # Checked already: a full Key ID, and a name's date only with its UTC offset.
        return RecoveryKey.checked(
            self.source,
            key_id,
            password,
            computer,
            recovery_created(leaf),
            volume,
            location,
            deleted,
            package,
        )
