"""Finding a domain's DCs, or the forest's Global Catalogs, through DNS SRV records.

dnspython is imported inside :meth:`Locator.servers`, only when a source has no ``servers``
for a domain it must read. The system resolver is used unless ``dns_servers`` names DNS
servers; then the SRV targets' addresses are asked from those servers too (the system's
resolver may not know the domain's names), and the certificate is still checked against the
target's host name. Every DNS failure becomes one SourceError line naming the SRV name.

DNS is not trusted to say where to send a password: an SRV target outside the domain being
discovered (or the forest, for Global Catalogs) is skipped unless ``discovery_allowed`` names
it, since its certificate proves only its own name. DNS is not trusted to be quick either:
the targets' addresses are asked within one ``timeout`` in all, and at most MAX_SERVERS
servers come back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bitkey_dir.core.errors import SourceError
from bitkey_dir.sources.ad.discovery import (
    MAX_SERVERS,
    Kind,
    NameServer,
    Scheme,
    SrvRecord,
    order_records,
    server_urls,
    srv_name,
    trusted_target,
)
from bitkey_dir.sources.ad.servers import ServerUrl

if TYPE_CHECKING:
    from dns.resolver import Resolver

log = logging.getLogger(__name__)

MAX_ADDRESSES: Final = 4  # per host name; more is a DNS answer to distrust, not a cluster


@dataclass(frozen=True)
class Locator:
    """Asks DNS where a domain's DCs (or the forest's GCs) are; no state between calls."""

    dns_servers: tuple[NameServer, ...] = ()
    timeout: int = 10
    allowed: tuple[str, ...] = ()  # discovery_allowed: names outside the domain to trust

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
        ordered = self._inside(name, domain, ordered)
        addresses = None
        if self.dns_servers:
            addresses = self._addresses_of(resolver, ordered)
        urls = server_urls(ordered, kind, scheme, addresses)
        if not urls:
            targets = _few([r.target for r in ordered])
            raise SourceError(f"{self.describe()}: {name}: no address for {targets}")
        return urls

    def _inside(self, name: str, domain: str, records: list[SrvRecord]) -> list[SrvRecord]:
        """The records whose targets may be trusted with a bind; the others are said."""
        kept = [r for r in records if trusted_target(r.target, domain, self.allowed)]
        outside = sorted({r.target for r in records} - {r.target for r in kept})
        if outside and not kept:
            raise SourceError(
                f"{self.describe()}: {name}: every SRV record names a host outside {domain} "
                f"({_few(outside)}): not trusted with a bind",
                hint="if these are your domain controllers, list them in discovery_allowed",
            )
        if outside:
            from bitkey_dir.runtime import interaction

            interaction.current().notice(
                f"{name}: skipped {_few(outside)}, outside {domain} (discovery_allowed lists "
                "hosts to trust)"
            )
        return kept

    def _addresses_of(self, resolver: Resolver, records: list[SrvRecord]) -> dict[str, list[str]]:
        """The addresses of as many targets as give MAX_SERVERS servers, asked within one
        time-out in all: a DNS server that never answers costs that time-out, not one per
        target."""
        deadline = time.monotonic() + self.timeout
        found: dict[str, list[str]] = {}
        for record in records:
            left = deadline - time.monotonic()
            if left <= 0 or sum(map(len, found.values())) >= MAX_SERVERS:
                break
            found[record.target] = self._addresses(resolver, record.target, left)
        return found

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

    def _ask(
        self, resolver: Resolver, name: str, rdtype: str, lifetime: float | None = None
    ) -> Sequence[Any]:
        import dns.exception
        import dns.resolver

        where = self.describe()
        try:
            return list(resolver.resolve(name, rdtype, search=False, lifetime=lifetime))
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

    def _addresses(self, resolver: Resolver, host: str, within: float) -> list[str]:
        deadline = time.monotonic() + within
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                found += [str(r.address) for r in self._ask(resolver, host, rdtype, left)]
            except SourceError as exc:
                log.info("%s", exc.message)
        return found[:MAX_ADDRESSES]


def _few(names: list[str], shown: int = 3) -> str:
    """A few names, and how many more: DNS may send dozens."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
