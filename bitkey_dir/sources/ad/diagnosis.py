"""`doctor` for Active Directory: servers, TLS, bind, clock, and the rights on recovery objects.

Per server, probe.py's checks: does it answer, does its certificate chain to the configured
CA, does it carry the host name of the URL, when does it expire. Then one bind (with
failover, as a lookup binds), the DC's clock against ours (Kerberos refuses more than 5
minutes), and per OU, in the order of the tree, ou_rights.py's sample of recovery objects:
how many exist, how many this account sees and reads, and which ACE gives or lacks each
right, with the command that grants what is missing.

The pure parts (GeneralizedTime, the OUs' order) come first, then the network parts.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from bitkey_dir.core.errors import AuthError, BitkeyError, SourceError
from bitkey_dir.sources.ad.base_dn import missing_base
from bitkey_dir.sources.ad.names import split_dn
from bitkey_dir.sources.ad.ou_rights import rights_checks
from bitkey_dir.sources.ad.probe import server_checks
from bitkey_dir.sources.ad.reader import Reader
from bitkey_dir.sources.ad.search import paged_search, who_am_i
from bitkey_dir.sources.ad.servers import ServerUrl
from bitkey_dir.sources.ad.settings import ADConfig
from bitkey_dir.sources.base import Check, Warn

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.simple_bind import Connection

MAX_OUS: Final = 500  # OUs looked at, the first in the tree's order; a warning names the cap
MAX_SKEW: Final = timedelta(minutes=5)  # Kerberos' default tolerance

# -- pure helpers ------------------------------------------------------------------------------


def generalized_time(text: str) -> datetime | None:
    """An LDAP GeneralizedTime (``20261204051000.0Z``) as an aware datetime, or None.

    >>> generalized_time("20261204051000.0Z")
    datetime.datetime(2026, 12, 4, 5, 10, tzinfo=datetime.timezone.utc)
    """
    found = re.fullmatch(r"(\d{14})(?:[.,]\d+)?Z", text.strip())
    if found is None:
        return None
    try:
        return datetime.strptime(found.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def skew_words(seconds: float) -> str:
    """>>> skew_words(-400), skew_words(3)
    ('6 min 40 s behind this machine', '3 s ahead of this machine')"""
    amount = abs(round(seconds))
    minutes, rest = divmod(amount, 60)
    size = f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f"{size} {'ahead of' if seconds >= 0 else 'behind'} this machine"


def tree_order(dn: str) -> tuple[tuple[str, str], ...]:
    """Where ``dn`` sits in the tree, to sort by: its RDNs from the root down, compared
    without regard to case, so that an OU comes right before the OUs below it.

    >>> sorted(["OU=b,DC=x", "OU=c,OU=A,DC=x", "ou=a,DC=X"], key=tree_order)
    ['ou=a,DC=X', 'OU=c,OU=A,DC=x', 'OU=b,DC=x']
    """
    return tuple((name.casefold(), value.casefold()) for name, value in reversed(split_dn(dn)))


def ous_in_tree_order(dns: Iterable[str], limit: int) -> tuple[list[str], bool]:
    """The first ``limit`` of these DNs in tree order, and whether there were more.

    The directory's own order differs between DCs provisioned alike; this one does not, so
    the same directory gives the same report, and a cap checks the same OUs every time.
    Only ``limit + 1`` DNs are held at once, however many the directory has.
    """
    first = heapq.nsmallest(limit + 1, dns, key=lambda dn: (tree_order(dn), dn))
    return first[:limit], len(first) > limit


# -- the whole source --------------------------------------------------------------------------


def diagnose(source: ADConfig, warn: Warn) -> list[Check]:
    connector = source.connector
    checks: list[Check] = []
    servers: Sequence[ServerUrl] = connector.servers
    if not servers and connector.discover is not None:
        try:
            servers = connector.servers = connector.discover()
        except BitkeyError as exc:
            return [Check("discovery", source.domain or source.name, "unreachable", exc.message)]
        checks.append(
            Check(
                "discovery",
                source.domain or source.name,
                "ok",
                "DNS names " + ", ".join(s.url for s in servers),
            )
        )
    catalog = source.global_catalog.servers if source.global_catalog is not None else ()
    per_server: list[Check] = []
    for server in (*servers, *catalog):
        per_server += server_checks(server, connector.ca_file, connector.timeout)
    try:
        connection = connector.connect(warn)
    except AuthError as exc:
        return [
            *checks,
            *per_server,
            Check("bind", connector.account, "missing-right", exc.message),
        ]
    except SourceError as exc:
        return [*checks, *per_server, Check("bind", connector.account, "unreachable", exc.message)]
    used = connector.server.url if connector.server else "?"
    # A server that failed while another answered is worth a look, not a failed source.
    checks += [
        Check(c.area, c.subject, "warn", c.detail + f" (lookups use {used})", c.fix)
        if c.status == "unreachable"
        else c
        for c in per_server
    ]
    who = _who_am_i(connection)
    account = who or connector.principal or connector.account
    detail = f"bound to {used} as {account}"
    if connector.auth == "kerberos":
        detail += " with Kerberos"
    checks.append(Check("bind", connector.account, "ok", detail))
    root = _root_dse(source, connection)
    checks.append(
        _clock_check(used, root.get("currenttime"), kerberos=connector.auth == "kerberos")
    )
    base = source.base_dn or root.get("defaultnamingcontext")
    if not base:
        checks.append(
            Check("recovery objects", used, "unreachable", "no naming context; set base_dn")
        )
        return checks
    if base == source.base_dn and (gone := _missing_base(source, connection, used, account)):
        return [*checks, Check("base_dn", base, "unreachable", gone.message, gone.hint)]
    source.base_dn = base
    principal = _grantee(who, connector.principal, connector.account)
    ous = _ous(source, connection, base, warn)
    checks += rights_checks(connection, base, ous, source.connector, principal, who)
    return checks


def _missing_base(
    source: ADConfig, connection: Connection, server: str, account: str
) -> SourceError | None:
    """A configured base_dn the DC does not have: every lookup would find nothing under it."""
    reader = Reader(source.name, source.page_size, source.connector.timeout)
    return missing_base(
        reader,
        connection,
        source.base_dn or "",
        setting=source.base_setting,
        account=account,
        server=server,
    )


def _ous(source: ADConfig, connection: Connection, base: str, warn: Warn) -> list[str]:
    """The OUs whose rights are checked: the first MAX_OUS in tree order, and the
    container computers join by default."""
    found = paged_search(
        connection,
        base,
        "(objectClass=organizationalUnit)",
        ["1.1"],
        page_size=source.page_size,
        timeout=source.connector.timeout,
    )
    ous, more = ous_in_tree_order((entry.dn for entry in found), MAX_OUS)
    if more:
        warn(
            f"more than {MAX_OUS} OUs: the rights of the first {MAX_OUS} in tree order were checked"
        )
    return [*ous, f"CN=Computers,{base}"]


def _who_am_i(connection: Connection) -> str | None:
    """The bound identity as the DC names it (``BITKEY\\helpdesk1``), by the Who am I?
    extended operation; None when the DC does not say."""
    try:
        answer = who_am_i(connection)
    except Exception:
        return None
    text = str(answer or "")
    return text[2:] if text.startswith("u:") else (text or None)


def _grantee(who: str | None, principal: str | None, account: str) -> str:
    """Whom the dsacls lines name: DOMAIN\\user as the DC said it, else the bind name."""
    return who or principal or account


def _root_dse(source: ADConfig, connection: Connection) -> dict[str, str]:
    found = {}
    wanted = ["currentTime", "defaultNamingContext"]
    try:
        for entry in paged_search(
            connection,
            "",
            "(objectClass=*)",
            wanted,
            page_size=1,
            timeout=source.connector.timeout,
            scope="BASE",
        ):
            for name in wanted:
                value = entry.text(name)
                if value:
                    found[name.lower()] = value
    except BitkeyError:
        pass
    return found


def _clock_check(server: str, current: str | None, *, kerberos: bool) -> Check:
    theirs = generalized_time(current or "")
    if theirs is None:
        return Check("clock", server, "warn", "the DC does not say its time (rootDSE currentTime)")
    offset = (theirs - datetime.now(UTC)).total_seconds()
    words = f"the DC's clock is {skew_words(offset)}"
    if abs(offset) > MAX_SKEW.total_seconds():
        use = "Kerberos sign-in fails" if kerberos else "Kerberos would fail"
        return Check(
            "clock",
            server,
            "warn",
            f"{words}: more than 5 minutes, {use}",
            "synchronise this machine's clock with the domain (chronyc makestep, w32tm /resync)",
        )
    return Check("clock", server, "ok", f"{words} (Kerberos allows 5 minutes)")
