"""Domain controllers and Global Catalogs from DNS: names, SRV records and their order.

Pure code (no DNS library): locate.py asks DNS and hands the answers here. Everything that
comes from DNS is untrusted: SRV targets must be host names, ports real ports, and a domain
taken from a DN must be made of DNS labels, or the answer is refused with a ValueError that
says what was expected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from bitkey_dir.sources.ad.names import split_dn
from bitkey_dir.sources.ad.servers import ServerUrl

Scheme = Literal["ldaps", "ldap"]
Kind = Literal["dc", "gc"]

MAX_RECORDS: Final = 64  # more SRV records than any site has DCs: the rest are ignored
# Servers tried from one discovery, in RFC 2782 order: DNS that names more (hostile, or
# broken) would otherwise hold a lookup for one time-out each.
MAX_SERVERS: Final = 10
DNS_PORT: Final = 53
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_NAME: Final = 253
# Ports bitkey-dir connects to for what DNS finds: LDAPS on the usual ports; with
# StartTLS, the port the SRV record names (389 for DCs, 3268 for Global Catalogs).
_LDAPS_PORTS: Final = {"dc": 636, "gc": 3269}


def dns_name(text: str) -> str:
    """A host or domain name, lower case, without a final dot; ValueError if not one.

    >>> dns_name("DC1.Corp.Example.")
    'dc1.corp.example'
    """
    name = text.lower().removesuffix(".")
    if not name or len(name) > _MAX_NAME:
        raise ValueError("a DNS name such as corp.example.com")
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError("a DNS name of letters, digits and '-', such as corp.example.com")
    return name


def dc_srv_name(domain: str) -> str:
    """Where AD publishes the writable DCs of ``domain`` (MS-ADTS 6.3.6)."""
    return f"_ldap._tcp.dc._msdcs.{domain}"


def gc_srv_name(forest: str) -> str:
    """Where AD publishes the Global Catalogs of the forest whose root domain is ``forest``."""
    return f"_gc._tcp.{forest}"


def srv_name(kind: Kind, domain: str) -> str:
    return dc_srv_name(domain) if kind == "dc" else gc_srv_name(domain)


def domain_dn(domain: str) -> str:
    """The naming context of an AD domain from its DNS name.

    >>> domain_dn("child.corp.example")
    'DC=child,DC=corp,DC=example'
    """
    return ",".join(f"DC={label}" for label in dns_name(domain).split("."))


def domain_of_dn(dn: str) -> str | None:
    """The DNS name of the domain holding the object ``dn``: its trailing DC= components.

    None when the DN has none, or they are not DNS labels.

    >>> domain_of_dn(r"CN=2024-01-01T00:00:00\\+00:00{X},CN=PC1,DC=Child,DC=corp,DC=example")
    'child.corp.example'
    >>> domain_of_dn("CN=PC1,OU=Corp") is None
    True
    """
    labels: list[str] = []
    for attribute, value in reversed(split_dn(dn)):
        if attribute.upper() != "DC":
            break
        labels.append(value.lower())
    if not labels or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    name = ".".join(reversed(labels))
    return name if len(name) <= _MAX_NAME else None


def in_domain(host: str, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or a name inside it (case and a final dot aside).

    >>> in_domain("DC1.Corp.Example.", "corp.example")
    True
    >>> in_domain("evilcorp.example", "corp.example"), in_domain("corp.example.io", "corp.example")
    (False, False)
    """
    name = host.lower().removesuffix(".")
    zone = domain.lower().removesuffix(".")
    return bool(zone) and (name == zone or name.endswith("." + zone))


def trusted_target(host: str, domain: str, allowed: Iterable[str] = ()) -> bool:
    """Whether an SRV answer for ``domain`` may send bitkey-dir (and its password) to
    ``host``: a name inside the domain being discovered, or inside a name of ``allowed``
    (the ``discovery_allowed`` setting). A certificate proves only the name it was issued
    for; a name outside the domain could be any machine with a certificate of its own.

    >>> trusted_target("gc1.partner.example", "corp.example", ["partner.example"])
    True
    """
    return in_domain(host, domain) or any(in_domain(host, name) for name in allowed)


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV answer (RFC 2782), checked: a target of "." means "no such service here"."""

    priority: int
    weight: int
    port: int
    target: str

    @classmethod
    def checked(cls, priority: int, weight: int, port: int, target: str) -> SrvRecord:
        for what, number, low in (("priority", priority, 0), ("weight", weight, 0)):
            if not low <= number <= 0xFFFF:
                raise ValueError(f"an SRV {what} from 0 to 65535, got {number}")
        if target in (".", ""):
            return cls(priority, weight, 0, ".")
        if not 1 <= port <= 0xFFFF:
            raise ValueError(f"an SRV port from 1 to 65535, got {port}")
        try:
            host = dns_name(target)
        except ValueError:
            raise ValueError(f"an SRV target that is a host name, got {target[:80]!r}") from None
        return cls(priority, weight, port, host)

    @classmethod
    def parse(cls, text: str) -> SrvRecord:
        """An SRV record in its text form: ``priority weight port target``.

        >>> SrvRecord.parse("0 100 389 dc1.corp.example.")
        SrvRecord(priority=0, weight=100, port=389, target='dc1.corp.example')
        """
        fields = text.split()
        if len(fields) != 4 or not all(f.isascii() and f.isdigit() for f in fields[:3]):
            raise ValueError(f"an SRV record 'priority weight port target', got {text[:80]!r}")
        priority, weight, port = (int(f) for f in fields[:3])
        return cls.checked(priority, weight, port, fields[3])

    @property
    def refuses(self) -> bool:
        """RFC 2782: a target of "." says the service is decidedly not available."""
        return self.target == "."


def _random_below(bound: int) -> int:
    import secrets  # here: it loads OpenSSL's digests, which a source with servers never needs

    return secrets.randbelow(bound)


def order_records(
    records: Iterable[SrvRecord], pick: Callable[[int], int] = _random_below
) -> list[SrvRecord]:
    """RFC 2782's order: lowest priority first; within a priority, a weighted random choice
    (``pick(n)`` returns 0 <= r < n), records of weight 0 first so that they are rarely
    chosen. Refusing records and repeated targets are left out.

    >>> order_records([SrvRecord(10, 0, 389, "b"), SrvRecord(0, 0, 389, "a")])
    [SrvRecord(priority=0, weight=0, port=389, target='a'), SrvRecord(priority=10, ...)]
    """
    unique: dict[tuple[str, int], SrvRecord] = {}
    for record in records:
        if not record.refuses and len(unique) < MAX_RECORDS:
            unique.setdefault((record.target, record.port), record)
    ordered: list[SrvRecord] = []
    for priority in sorted({record.priority for record in unique.values()}):
        group = [record for record in unique.values() if record.priority == priority]
        remaining = sorted(group, key=lambda record: record.weight != 0)
        while remaining:
            total = sum(record.weight for record in remaining)
            chosen = pick(total + 1)
            running = 0
            for index, record in enumerate(remaining):
                running += record.weight
                if running >= chosen:
                    ordered.append(remaining.pop(index))
                    break
    return ordered


def server_urls(
    records: Sequence[SrvRecord],
    kind: Kind,
    scheme: Scheme,
    addresses: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ServerUrl, ...]:
    """Where to connect for each ordered record: LDAPS on 636 (DCs) or 3269 (GCs), or
    StartTLS on the port the record names. With ``addresses`` (host → addresses, from the
    same DNS server), one entry per address, in order; the host name stays the name the
    certificate is checked against. At most MAX_SERVERS of them.

    >>> [s.url for s in server_urls([SrvRecord(0, 0, 3268, "gc1.corp.example")], "gc", "ldaps")]
    ['ldaps://gc1.corp.example:3269']
    """
    urls: list[ServerUrl] = []
    for record in records:
        port = _LDAPS_PORTS[kind] if scheme == "ldaps" else record.port
        url = f"{scheme}://{record.target}:{port}"
        ldaps = scheme == "ldaps"
        if addresses is None:
            urls.append(ServerUrl(url, record.target, port, ldaps))
            continue
        for address in addresses.get(record.target, ()):
            urls.append(ServerUrl(url, record.target, port, ldaps, address))
    return tuple(urls[:MAX_SERVERS])


@dataclass(frozen=True, slots=True)
class NameServer:
    """One ``dns_servers`` entry: an IP address and a port."""

    address: str
    port: int = DNS_PORT

    @classmethod
    def parse(cls, text: str) -> NameServer:
        """``127.0.0.53``, ``127.0.0.1:5353``, ``::1`` or ``[::1]:5353``; ValueError else.

        >>> NameServer.parse("127.0.0.1:5353"), NameServer.parse("[::1]:53")
        (NameServer(address='127.0.0.1', port=5353), NameServer(address='::1', port=53))
        """
        expected = "an IP address, optionally with a port: 10.0.0.53, 10.0.0.53:5353 or [::1]:53"
        entry = text.strip()
        host, port_text = entry, ""
        if entry.startswith("["):
            host, bracket, rest = entry[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(expected)
            port_text = rest[1:] if rest else ""
            if rest and not port_text:
                raise ValueError(expected)
        elif entry.count(":") == 1:
            host, _, port_text = entry.partition(":")
            if not port_text:
                raise ValueError(expected)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(expected) from None
        if entry.startswith("[") and address.version != 6:
            raise ValueError(expected)
        port = DNS_PORT
        if port_text:
            if (
                not (port_text.isascii() and port_text.isdigit())
                or not 1 <= int(port_text) <= 0xFFFF
            ):
                raise ValueError(expected)
            port = int(port_text)
        return cls(str(address), port)
