"""What an AD source is built with, from ``[sources.NAME]`` or from ``--source ldaps://host``.

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
``ca_file``          CA bundle for the DCs' certificates (default: the system trust store;
                     required when servers are found through DNS)
``discovery_allowed`` host or domain names outside the domain (or forest) whose SRV records
                     may name them: DNS is trusted with nothing else
``base_dn``          where to search (default: from ``domain``, else the rootDSE's
                     defaultNamingContext, one more query)
``user``             UPN or DOMAIN\\user for simple binds
``auth``             ``"simple"`` (default) or ``"kerberos"`` (SASL GSSAPI with the ticket cache)
``kerberos_host``    the DC's host name for its Kerberos principal when servers are IP addresses
``timeout``          seconds to connect and for each answer (default 10)
``page_size``        entries per page of a paged search (default 1000, the AD maximum)
``allow_plaintext``  let ``ldap://`` bind without TLS (default false; warned about on every run)

Building touches no network: servers named only through DNS are found when the first
connection is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Self

from bitkey_dir.core.env import CA_FILE_ENV, USER_ENV
from bitkey_dir.core.errors import InputError
from bitkey_dir.runtime.config import Settings
from bitkey_dir.sources.ad.connection import Connector
from bitkey_dir.sources.ad.discovery import Kind, NameServer, Scheme, dns_name, domain_dn
from bitkey_dir.sources.ad.locate import Locator
from bitkey_dir.sources.ad.servers import ServerUrl

MAX_TIMEOUT: Final = 3600  # seconds; beyond an hour a wait is a hang
MAX_PAGE_SIZE: Final = 100_000  # AD answers at most its MaxPageSize (1,000) anyway


@dataclass
class ADConfig:
    """Where an AD source's keys are and how it binds: what ``ADSource`` works with."""

    name: str
    connector: Connector
    base_dn: str | None = None  # configured, else asked of the DC once and kept
    base_setting: str = "base_dn"  # where a configured base_dn came from, for its errors
    page_size: int = 1000
    domain: str | None = None  # the source's own domain, when configured
    locator: Locator = field(default_factory=Locator)
    scheme: Scheme = "ldaps"  # for servers found through DNS
    global_catalog: Connector | None = None
    domain_servers: dict[str, tuple[ServerUrl, ...]] = field(default_factory=dict)
    key_packages: bool = False  # also read msFVE-KeyPackage (only when the user asked)

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> Self:
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
        discovers = (domain is not None and not servers) or catalog_servers == ()
        if discovers and ca_file is None:
            raise settings.error(
                "ca_file",
                "the CA bundle that issued the domain controllers' certificates: servers "
                "found through DNS are trusted with a bind only when the domain's own CA "
                "vouches for them, not any CA of the system's trust store",
            )
        timeout = settings.integer("timeout", 10, minimum=1, maximum=MAX_TIMEOUT)
        locator = Locator(tuple(dns_servers), timeout, _allowed(settings))
        connector = Connector(
            source=name,
            servers=servers,
            user=user,
            auth=auth,
            ca_file=ca_file,
            kerberos_host=settings.string("kerberos_host"),
            timeout=timeout,
            allow_plaintext=settings.boolean("allow_plaintext", False),
            discover=discovery(locator, "dc", domain, scheme) if domain and not servers else None,
        )
        global_catalog = None
        if catalog_servers is not None:
            discover = None
            if not catalog_servers and forest_root is not None:
                discover = discovery(locator, "gc", forest_root, scheme)
            global_catalog = connector.sibling(
                catalog_servers, discover, same_hosts=bool(catalog_servers)
            )
        source = cls(
            name=name,
            connector=connector,
            base_dn=settings.string("base_dn") or (domain_dn(domain) if domain else None),
            base_setting="base_dn" if settings.string("base_dn") else "base_dn (from domain)",
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
    def from_url(cls, url: str) -> Self:
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


def discovery(
    locator: Locator, kind: Kind, domain: str, scheme: Scheme
) -> Callable[[], tuple[ServerUrl, ...]]:
    """Finds the servers when the first connection is made, never when the source is built."""

    def discover() -> tuple[ServerUrl, ...]:
        return locator.servers(kind, domain, scheme)

    return discover


def _allowed(settings: Settings) -> tuple[str, ...]:
    """``discovery_allowed``: DNS names (hosts, or domains of hosts) that SRV records may
    name outside the domain being discovered."""
    names = []
    for entry in settings.string_list("discovery_allowed"):
        try:
            names.append(dns_name(entry.strip()))
        except ValueError as exc:
            raise settings.item_error("discovery_allowed", entry, str(exc)) from None
    return tuple(names)


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
