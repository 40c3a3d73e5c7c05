"""Forest-wide lookups through a Global Catalog: locate, then read from the owning domain.

The Global Catalog holds every domain's recovery objects and computers, but not their
passwords (confidential attributes stay on the domain's own DCs). A lookup therefore finds
the recovery objects in the GC, never asking it for a password (forest.py builds only such
searches), then reads each one again, password included, with a base-object search on a DC
of the domain its DN names. A key whose domain cannot be read is still reported, without its
password, with one warning naming the domain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bitkey_dir.core.errors import BitkeyError, InputError, SourceError
from bitkey_dir.core.model import KeyId, Query, RecoveryKey
from bitkey_dir.sources.ad import forest
from bitkey_dir.sources.ad.discovery import domain_of_dn
from bitkey_dir.sources.ad.names import leaf_value
from bitkey_dir.sources.ad.reader import Reader
from bitkey_dir.sources.base import Warn

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.simple_bind import Connection

# A connection to a DC of the named domain (the source keeps and reuses them).
Reach = Callable[[str, Warn], "Connection"]
Located = tuple[str, RecoveryKey]  # a recovery object's DN, and its key without password


def locate(
    reader: Reader, catalog: Connection, query: Query, warn: Warn
) -> tuple[list[Located], list[str]]:
    """The recovery objects answering ``query`` anywhere in the forest, as the GC holds
    them (no password); for a lookup by name, also the names of the computers found."""
    hits: list[Located] = []
    names: list[str] = []
    if query.computer is not None:
        computers = list(reader.run(catalog, forest.locate_computers(query.computer)))
        names = [leaf_value(computer.dn) for computer in computers]
        for computer in computers:
            for entry in reader.run(catalog, forest.locate_children(computer.dn)):
                if (key := reader.key(entry, warn)) is not None:
                    hits.append((entry.dn, key))
    elif query.key_id is not None:
        key_id = query.key_id
        for entry in reader.run(catalog, forest.locate_key_id(key_id)):
            key = reader.key(entry, warn)
            if key is not None and key_id.matches(key.key_id):
                hits.append((entry.dn, key))
    else:
        raise InputError("a query needs a Key ID or a computer name")
    return hits, names


def read_from_owners(
    reader: Reader, hits: list[Located], reach: Reach, unreached: set[KeyId], warn: Warn
) -> list[RecoveryKey]:
    """Each located key read again, password included, with a base-object search on a
    DC of the domain its DN names; keys whose domain cannot be read stay as located
    (no password), counted in ``unreached`` and named in one warning per domain."""
    groups: dict[str | None, list[Located]] = {}
    for dn, key in hits:
        groups.setdefault(domain_of_dn(dn), []).append((dn, key))
    keys: list[RecoveryKey] = []
    for domain, members in groups.items():
        done = 0
        try:
            if domain is None:
                raise SourceError("the Global Catalog gave DNs that name no domain")
            connection = reach(domain, warn)
            for dn, located in members:
                search = forest.read_key(dn, key_package=reader.key_packages)
                found = [reader.key(e, warn) for e in reader.run(connection, search)]
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


def forest_domains(reader: Reader, catalog: Connection, warn: Warn) -> list[str]:
    """The forest's domains, from the crossRef objects the Global Catalog holds."""
    configuration = reader.root(catalog, "configurationNamingContext")
    if not configuration:
        raise SourceError("the Global Catalog does not name its configuration partition")
    domains: list[str] = []
    for entry in reader.run(catalog, forest.domain_partitions(configuration)):
        domain = domain_of_dn(entry.text("nCName") or "")
        if domain is None:
            warn(f"{entry.dn}: skipped, a domain partition without a usable name")
        elif domain not in domains:
            domains.append(domain)
    return domains
