"""Finding a domain's DCs, or the forest's Global Catalogs, through DNS SRV records.

dnspython is imported inside :meth:`Locator.servers`, only when a source has no ``servers``
for a domain it must read. The system resolver is used unless ``dns_servers`` names DNS
servers; then the SRV targets' addresses are asked from those servers too (the system's
resolver may not know the domain's names), and the certificate is still checked against the
target's host name. Every DNS failure becomes one SourceError line naming the SRV name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bitkey_dir.core.errors import SourceError
from bitkey_dir.sources.ad.discovery import (
    Kind,
    NameServer,
    Scheme,
    SrvRecord,
    order_records,
    server_urls,
    srv_name,
)
from bitkey_dir.sources.ad.servers import ServerUrl

if TYPE_CHECKING:
    from dns.resolver import Resolver

log = logging.getLogger(__name__)

MAX_ADDRESSES: Final = 8  # per host name; more is a DNS answer to distrust, not a cluster


@dataclass(frozen=True)
class Locator:
    """Asks DNS where a domain's DCs (or the forest's GCs) are; no state between calls."""

    dns_servers: tuple[NameServer, ...] = ()
    timeout: int = 10

    def describe(self) -> str:
        if not self.dns_servers:
            return "DNS"
        return "DNS at " + ", ".join(f"{s.address}:{s.port}" for s in self.dns_servers)

    def servers(self, kind: Kind, domain: str, scheme: Scheme) -> tuple[ServerUrl, ...]:
        """The servers the SRV records of ``domain`` name, in RFC 2782 order."""
        name = srv_name(kind, domain)
        resolver = self._resolver(name)
        answer = self._ask(resolver, name, "SRV")
        records, problems = [], []
        for rdata in answer:
            try:
                records.append(
                    SrvRecord.checked(rdata.priority, rdata.weight, rdata.port, str(rdata.target))
                )
            except ValueError as exc:
                problems.append(str(exc))
        ordered = order_records(records)
        if not ordered:
            why = f"expected {problems[0]}" if problems else "every record says it has no server"
            raise SourceError(f"{self.describe()}: {name}: no usable SRV record ({why})")
        for problem in problems:
            log.info("%s: ignored an SRV record: expected %s", name, problem)
        addresses = None
        if self.dns_servers:
            addresses = {r.target: self._addresses(resolver, r.target) for r in ordered}
        urls = server_urls(ordered, kind, scheme, addresses)
        if not urls:
            targets = ", ".join(r.target for r in ordered)
            raise SourceError(f"{self.describe()}: {name}: no address for {targets}")
        return urls

    def _resolver(self, name: str) -> Resolver:
        import dns.nameserver
        import dns.resolver

        try:
            resolver = dns.resolver.Resolver(configure=not self.dns_servers)
        except dns.resolver.NoResolverConfiguration:
            raise SourceError(
                f"{name}: this machine has no DNS servers configured; set dns_servers"
            ) from None
        if self.dns_servers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(s.address, s.port) for s in self.dns_servers
            ]
        resolver.lifetime = float(self.timeout)
        resolver.timeout = min(float(self.timeout), 3.0)
        return resolver

    def _ask(self, resolver: Resolver, name: str, rdtype: str) -> Sequence[Any]:
        import dns.exception
        import dns.resolver

        where = self.describe()
        try:
            return list(resolver.resolve(name, rdtype, search=False))
        except dns.resolver.NXDOMAIN:
            problem = "no such name (NXDOMAIN): check the domain's name and the DNS servers"
        except dns.resolver.NoAnswer:
            problem = f"no {rdtype} records"
        except dns.resolver.NoNameservers:
            problem = "no DNS server gave a usable answer"
        except dns.exception.Timeout:
            problem = f"no answer within {self.timeout} s"
        except dns.exception.DNSException as exc:
            problem = f"the lookup failed ({type(exc).__name__})"
        raise SourceError(f"{where}: {name}: {problem}")

    def _addresses(self, resolver: Resolver, host: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found += [str(r.address) for r in self._ask(resolver, host, rdtype)]
            except SourceError as exc:
                log.info("%s", exc.message)
        return found[:MAX_ADDRESSES]
