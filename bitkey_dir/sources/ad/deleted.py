"""Keys of deleted computers: CN=Deleted Objects of one domain, read with Show Deleted.

A deleted computer becomes a tombstone there, and its recovery objects follow it, each
naming the tombstone as its lastKnownParent; the tombstone's own lastKnownParent is the OU
the computer lived in, which is what a key's location says. Usually only domain admins may
search Deleted Objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from bitkey_dir.core.model import ComputerName, KeyId, RecoveryKey
from bitkey_dir.sources.ad.filters import computer_filter, escape_filter_value, key_id_filter
from bitkey_dir.sources.ad.forest import RECOVERY_OBJECTS
from bitkey_dir.sources.ad.names import deleted_name, leaf_value
from bitkey_dir.sources.ad.reader import NO_ATTRIBUTES, Reader
from bitkey_dir.sources.ad.search import Entry, Scope
from bitkey_dir.sources.base import Warn

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.simple_bind import Connection

SHOW_DELETED: Final = ("1.2.840.113556.1.4.417", True, None)
DELETED_ATTRIBUTES: Final = ["isDeleted", "lastKnownParent"]


@dataclass(frozen=True)
class DeletedObjects:
    """The Deleted Objects container of the domain ``base`` names, on one connection."""

    reader: Reader
    connection: Connection
    base: str  # the domain's naming context, or a DN within it

    @property
    def container(self) -> str:
        domain = [part for part in self.base.split(",") if part.strip().upper().startswith("DC=")]
        return "CN=Deleted Objects," + ",".join(domain)

    def keys(self, warn: Warn, attributes: list[str]) -> Iterator[RecoveryKey]:
        """Every recovery object below a deleted computer, read with ``attributes``: two
        paged searches, tombstones first for the OU each computer left."""
        origins: dict[str, str | None] = {}
        for tombstone in self._search(
            self.container,
            "(objectClass=computer)",  # tombstones keep objectClass, not objectCategory
            ["lastKnownParent"],
        ):
            origins[tombstone.dn.lower()] = tombstone.text("lastKnownParent")
        for entry in self._search(
            self.container,
            RECOVERY_OBJECTS,
            attributes + DELETED_ATTRIBUTES,
        ):
            key = self.reader.key(entry, warn)
            if key is not None and key.deleted:
                parent = entry.text("lastKnownParent") or ""
                yield replace(key, location=origins.get(parent.lower()))

    def keys_by_id(self, key_id: KeyId, warn: Warn) -> list[RecoveryKey]:
        """The keys with this Key ID (full, or a prefix), each placed in the OU its
        computer left."""
        deleted = self._search(
            self.container,
            key_id_filter(key_id),
            self.reader.key_attributes + DELETED_ATTRIBUTES,
        )
        keys = []
        origins: dict[str, str | None] = {}
        for entry in deleted:
            key = self.reader.key(entry, warn)
            if key is not None:
                # The tombstone's parent is the deleted computer; its parent is the OU.
                computer = entry.text("lastKnownParent") or ""
                if computer not in origins:
                    origins[computer] = self._origin(computer)
                keys.append(replace(key, location=origins[computer]))
        return [key for key in keys if key_id.matches(key.key_id)]

    def holds(self, key_id: KeyId) -> bool:
        """Whether a recovery object with this ID is here: one search that reads no
        attribute, made only when the live directory had none."""
        found = self._search(
            self.container,
            key_id_filter(key_id),
            [NO_ATTRIBUTES],
        )
        return any(True for _ in found)

    def computer_keys(self, name: ComputerName, warn: Warn) -> tuple[list[RecoveryKey], list[str]]:
        """The keys of the deleted computers ``name`` matches, and those computers' names."""
        tombstones = self._search(
            self.container,
            computer_filter(name, deleted=True),
            ["sAMAccountName", "lastKnownParent"],
        )
        keys: list[RecoveryKey] = []
        names: list[str] = []
        for tombstone in tombstones:
            names.append(deleted_name(leaf_value(tombstone.dn)))
            origin = tombstone.text("lastKnownParent")
            children = self._search(
                self.container,
                f"(&{RECOVERY_OBJECTS}(lastKnownParent={escape_filter_value(tombstone.dn)}))",
                self.reader.key_attributes + DELETED_ATTRIBUTES,
            )
            for entry in children:
                key = self.reader.key(entry, warn)
                if key is not None:
                    keys.append(replace(key, location=origin or None))
        return keys, names

    def _search(
        self, base: str, search_filter: str, attributes: list[str], scope: Scope = "SUBTREE"
    ) -> Iterator[Entry]:
        return self.reader.search(
            self.connection, base, search_filter, attributes, scope, controls=[SHOW_DELETED]
        )

    def _origin(self, tombstone_dn: str) -> str | None:
        """Where a deleted computer lived: its tombstone's lastKnownParent."""
        if not tombstone_dn:
            return None
        found = self._search(
            tombstone_dn,
            "(objectClass=*)",
            ["lastKnownParent"],
            "BASE",
        )
        for entry in found:
            return entry.text("lastKnownParent")
        return None
