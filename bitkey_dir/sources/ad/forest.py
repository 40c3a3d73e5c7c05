"""What is asked of a Global Catalog, and of the DC that owns each key: pure planning.

A forest-wide lookup is two steps (MS-ADTS): the Global Catalog holds msFVE-RecoveryGuid
and the objects' names for every domain, but not msFVE-RecoveryPassword, which is
confidential and read only from a writable DC of the domain holding the object. This module
builds both kinds of search, and refuses to build a Global Catalog search that would ask
for a confidential attribute (the GC does not hold them; asking would only hide the fact
that the read went to the wrong server). catalog.py runs the searches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from bitkey_dir.core.model import ComputerName, KeyId
from bitkey_dir.sources.ad.discovery import domain_of_dn
from bitkey_dir.sources.ad.filters import RECOVERY_CLASS, computer_filter, key_id_filter
from bitkey_dir.sources.ad.servers import ServerUrl

Scope = Literal["BASE", "LEVEL", "SUBTREE"]

PASSWORD: Final = "msFVE-RecoveryPassword"  # noqa: S105 - an attribute name
# Confidential (searchFlags 0x80), not in the GC's partial attribute set.
CONFIDENTIAL: Final = frozenset({"msfve-recoverypassword", "msfve-keypackage"})
KEY_PACKAGE: Final = "msFVE-KeyPackage"
# What a key is read with from its own domain's DC; KEY_PACKAGE is added only when the
# user asked for key packages (it is confidential too, and as sensitive as the password).
KEY_ATTRIBUTES: Final = ("msFVE-RecoveryGuid", PASSWORD, "msFVE-VolumeGuid")
# What a key is located with, in the GC or when keys are listed without passwords.
LOCATE_ATTRIBUTES: Final = ("msFVE-RecoveryGuid", "msFVE-VolumeGuid")
COMPUTER_ATTRIBUTES: Final = ("cn", "sAMAccountName", "dNSHostName")
NO_ATTRIBUTES: Final = ("1.1",)  # RFC 4511: the DNs only
FOREST: Final = ""  # a GC search from the root covers every domain of the forest
RECOVERY_OBJECTS: Final = f"(objectClass={RECOVERY_CLASS})"
# Domain partitions (FLAG_CR_NTDS_NC | FLAG_CR_NTDS_DOMAIN), below CN=Partitions.
DOMAIN_PARTITIONS: Final = "(&(objectClass=crossRef)(systemFlags:1.2.840.113556.1.4.803:=3))"


@dataclass(frozen=True, slots=True)
class Search:
    """One LDAP search: where from, what to match, which attributes, how deep."""

    base: str
    filter: str
    attributes: tuple[str, ...]
    scope: Scope = "SUBTREE"

    @property
    def reads_confidential(self) -> bool:
        """Whether it asks for a confidential attribute, or for all of them ("*")."""
        return any(name.lower() in CONFIDENTIAL or name == "*" for name in self.attributes)


def for_catalog(search: Search) -> Search:
    """``search``, checked fit for a Global Catalog: ValueError if it asks for a password."""
    if search.reads_confidential:
        raise ValueError(f"a Global Catalog search may not ask for {search.attributes}")
    return search


def locate_key_id(key_id: KeyId) -> Search:
    """Recovery objects with this Key ID (full, or an 8+ digit prefix) anywhere in the forest."""
    return for_catalog(Search(FOREST, key_id_filter(key_id), LOCATE_ATTRIBUTES))


def locate_computers(name: ComputerName) -> Search:
    """Computers by name anywhere in the forest (cn, sAMAccountName, dNSHostName are in
    the GC's partial attribute set)."""
    return for_catalog(Search(FOREST, computer_filter(name), COMPUTER_ATTRIBUTES))


def locate_children(computer_dn: str) -> Search:
    """The recovery objects below one computer, as the GC holds them."""
    return for_catalog(Search(computer_dn, RECOVERY_OBJECTS, LOCATE_ATTRIBUTES, "LEVEL"))


def list_keys(base: str = FOREST) -> Search:
    """Every recovery object under ``base`` (the whole forest by default), no password."""
    return for_catalog(Search(base, RECOVERY_OBJECTS, LOCATE_ATTRIBUTES))


def domain_partitions(configuration_dn: str) -> Search:
    """The forest's domains: their crossRef objects in the configuration partition."""
    return for_catalog(
        Search(f"CN=Partitions,{configuration_dn}", DOMAIN_PARTITIONS, ("nCName", "dnsRoot"))
    )


def read_key(dn: str, *, key_package: bool = False) -> Search:
    """The password read: a base-object search of one recovery object, on a DC of its domain
    (with its key package when ``key_package``)."""
    attributes = (*KEY_ATTRIBUTES, KEY_PACKAGE) if key_package else KEY_ATTRIBUTES
    return Search(dn, RECOVERY_OBJECTS, attributes, "BASE")


def by_domain(dns: Iterable[str]) -> dict[str | None, list[str]]:
    """DNs grouped by the domain that holds them (None: a DN without DC= components), in the
    order they came.

    >>> by_domain(["CN=a,DC=x,DC=example", "CN=b,DC=y,DC=example", "CN=c,DC=x,DC=example"])
    {'x.example': ['CN=a,DC=x,DC=example', 'CN=c,DC=x,DC=example'], 'y.example': [...]}
    """
    groups: dict[str | None, list[str]] = {}
    for dn in dns:
        groups.setdefault(domain_of_dn(dn), []).append(dn)
    return groups


Way = Literal["configured", "own", "dns"]


@dataclass(frozen=True, slots=True)
class Route:
    """How to reach a domain's DCs: the servers configured for it, the source's own
    connection (its own domain), or DNS SRV records."""

    domain: str
    way: Way
    servers: tuple[ServerUrl, ...] = ()


def route(
    domain: str, configured: Mapping[str, tuple[ServerUrl, ...]], own_domain: str | None
) -> Route:
    """``[sources.NAME.domains."<domain>"] servers`` first; then, for the source's own
    domain, its own connection; else the domain's SRV records.

    >>> route("child.corp.example", {}, "corp.example").way
    'dns'
    >>> route("corp.example", {}, "corp.example").way
    'own'
    """
    if domain in configured:
        return Route(domain, "configured", configured[domain])
    if own_domain is not None and domain == own_domain:
        return Route(domain, "own")
    return Route(domain, "dns")
