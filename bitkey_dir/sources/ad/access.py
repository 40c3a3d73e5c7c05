"""Reading and writing who may read recovery keys, over LDAP: an object's DACL (with the
SD-flags control, DACL only), an account's group SIDs (``tokenGroups``), SIDs and names
resolved both ways, and the one modify that replaces a DACL.

The security descriptors themselves are descriptor.py's; what a DACL grants, delegation.py's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from bitkey_dir.core.errors import AuthError, BitkeyError, InputError, SourceError
from bitkey_dir.core.rights import principal_form
from bitkey_dir.sources.ad.ber import Control
from bitkey_dir.sources.ad.descriptor import DescriptorError, SecurityDescriptor, Sid
from bitkey_dir.sources.ad.filters import escape_filter_bytes, escape_filter_value
from bitkey_dir.sources.ad.search import Entry, paged_search
from bitkey_dir.sources.ad.simple_bind import SimpleBindConnection

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.simple_bind import Connection

SD_FLAGS: Final = "1.2.840.113556.1.4.801"
# The SD-flags control's value: BER SEQUENCE { INTEGER 4 } (DACL_SECURITY_INFORMATION), so a
# read returns, and a write replaces, the DACL alone: owner, group and SACL are not touched
# (and reading them is not needed).
DACL_ONLY: Final[Control] = (SD_FLAGS, True, bytes.fromhex("3003020104"))
INSUFFICIENT_ACCESS: Final = 50
# SIDs every signed-in token holds besides its account and groups (tokenGroups omits them).
IN_EVERY_TOKEN: Final = tuple(map(Sid.parse, ("S-1-1-0", "S-1-5-11", "S-1-5-15")))
WELL_KNOWN: Final = {
    Sid.parse(text): name
    for text, name in (
        ("S-1-1-0", "Everyone"),
        ("S-1-3-0", "CREATOR OWNER"),
        ("S-1-5-9", "NT AUTHORITY\\ENTERPRISE DOMAIN CONTROLLERS"),
        ("S-1-5-10", "NT AUTHORITY\\SELF"),
        ("S-1-5-11", "NT AUTHORITY\\Authenticated Users"),
        ("S-1-5-15", "NT AUTHORITY\\This Organization"),
        ("S-1-5-18", "NT AUTHORITY\\SYSTEM"),
    )
}
_AT_ONCE: Final = 50  # SIDs asked for in one search


@dataclass(frozen=True, slots=True)
class Principal:
    """An account or group: the name to show and to give dsacls, its SID, its DN (when it
    has an object in the domain)."""

    name: str
    sid: Sid
    dn: str | None = None


@dataclass
class Directory:
    """One bound connection to a DC; accounts and SIDs are looked up in the DC's own domain
    (its default naming context), whatever part of it a source is confined to."""

    connection: Connection
    timeout: int
    account: str  # for messages: the account bound as
    _domain: str | None = field(default=None, repr=False)
    _domain_sid: Sid | None = field(default=None, repr=False)
    _netbios: str | None = field(default=None, repr=False)

    def _search(
        self, base: str, search_filter: str, attributes: list[str], *, scope: str = "SUBTREE"
    ) -> list[Entry]:
        controls = (DACL_ONLY,) if "nTSecurityDescriptor" in attributes else ()
        return list(
            paged_search(
                self.connection,
                base,
                search_filter,
                attributes,
                page_size=_AT_ONCE,
                timeout=self.timeout,
                scope="BASE" if scope == "BASE" else "SUBTREE",
                controls=controls,
            )
        )

    @property
    def domain(self) -> str:
        if self._domain is None:
            self._domain = self._root("defaultNamingContext")
            if not self._domain:
                raise SourceError("the DC does not say its naming context (defaultNamingContext)")
        return self._domain

    # -- security descriptors ---------------------------------------------------------------

    def descriptor(self, dn: str) -> SecurityDescriptor:
        """The DACL of ``dn``, as a descriptor holding nothing else."""
        found = self._search(dn, "(objectClass=*)", ["nTSecurityDescriptor"], scope="BASE")
        if not found:
            raise InputError(f"no object {dn} is visible to {self.account}")
        raw = found[0].first("nTSecurityDescriptor")
        if raw is None:
            raise AuthError(
                f"{self.account} may not read the security descriptor of {dn} "
                "(that takes Read Permissions on it)"
            )
        try:
            return SecurityDescriptor.parse(raw)
        except DescriptorError as exc:
            raise SourceError(f"the security descriptor of {dn} cannot be read: {exc}") from None

    def replace_dacl(self, dn: str, descriptor: SecurityDescriptor) -> None:
        """Write ``descriptor``'s DACL to ``dn``, and nothing else of its security."""
        from ldap3 import MODIFY_REPLACE
        from ldap3.core.exceptions import LDAPException

        if isinstance(self.connection, SimpleBindConnection):
            # Connector.writable() gives ldap3's connection: a read-only one never writes.
            raise BitkeyError(f"changing the DACL of {dn} needs a writable connection")
        change = {"nTSecurityDescriptor": [(MODIFY_REPLACE, [descriptor.to_bytes()])]}
        try:
            done = self.connection.modify(dn, change, controls=[DACL_ONLY])
        except LDAPException as exc:
            raise SourceError(f"changing the DACL of {dn} failed: {type(exc).__name__}") from None
        if done:
            return
        result = self.connection.result or {}
        code = int(result.get("result", 0) or 0)
        detail = str(result.get("message") or result.get("description") or code)[:200]
        if code == INSUFFICIENT_ACCESS:
            raise AuthError(
                f"{self.account} may not change the DACL of {dn} (that takes Modify "
                "Permissions on it): run as an account that may, or run the dsacls lines"
            )
        raise SourceError(f"changing the DACL of {dn} failed: {detail}")

    # -- names and SIDs ---------------------------------------------------------------------

    def domain_sid(self) -> Sid:
        if self._domain_sid is None:
            found = self._search(self.domain, "(objectClass=*)", ["objectSid"], scope="BASE")
            raw = found[0].first("objectSid") if found else None
            if raw is None:
                raise SourceError(f"{self.domain} does not give its domain's SID (objectSid)")
            self._domain_sid = _sid(raw, self.domain)
        return self._domain_sid

    def netbios(self) -> str | None:
        """The domain's NetBIOS name (``CORP``), from its crossRef in CN=Partitions."""
        if self._netbios is None:
            config = self._root("configurationNamingContext")
            if config:
                found = self._search(
                    f"CN=Partitions,{config}",
                    f"(&(nCName={escape_filter_value(self.domain)})(nETBIOSName=*))",
                    ["nETBIOSName"],
                )
                self._netbios = found[0].text("nETBIOSName") if found else None
        return self._netbios

    def _root(self, name: str) -> str | None:
        found = self._search("", "(objectClass=*)", [name], scope="BASE")
        return found[0].text(name) if found else None

    def _down_level(self, entry: Entry, sid: Sid) -> str:
        account = entry.text("sAMAccountName") or str(sid)
        if _is_builtin(sid):
            return f"BUILTIN\\{account}"
        domain = self.netbios()
        return f"{domain}\\{account}" if domain else account

    def names(self, sids: Iterable[Sid]) -> dict[Sid, str]:
        """Names for the SIDs the domain or the well-known ones know; others are left out."""
        every = list(dict.fromkeys(sids))
        wanted = [sid for sid in every if sid not in WELL_KNOWN]
        named = {sid: WELL_KNOWN[sid] for sid in every if sid in WELL_KNOWN}
        for start in range(0, len(wanted), _AT_ONCE):
            chunk = wanted[start : start + _AT_ONCE]
            terms = "".join(f"(objectSid={escape_filter_bytes(s.to_bytes())})" for s in chunk)
            for entry in self._search(self.domain, f"(|{terms})", ["objectSid", "sAMAccountName"]):
                raw = entry.first("objectSid")
                with contextlib.suppress(SourceError):
                    if raw is not None:
                        sid = _sid(raw, entry.dn)
                        named[sid] = self._down_level(entry, sid)
        return named

    def principal(self, text: str) -> Principal:
        """The account or group ``text`` names (name@domain, DOMAIN\\name or a SID)."""
        form = principal_form(text)
        text = text.strip()
        if form == "sid":
            try:
                sid = Sid.parse(text)
            except DescriptorError as exc:
                raise InputError(f"{text[:80]}: {exc}") from None
            if sid in WELL_KNOWN:
                return Principal(WELL_KNOWN[sid], sid)
            search = f"(objectSid={escape_filter_bytes(sid.to_bytes())})"
        elif form == "upn":
            search = f"(userPrincipalName={escape_filter_value(text)})"
        else:
            domain, _, name = text.partition("\\")
            search = f"(sAMAccountName={escape_filter_value(name)})"
            if domain.casefold() not in {"builtin", (self.netbios() or "").casefold()}:
                raise InputError(f"{text}: {domain} is not this source's domain ({self.netbios()})")
        found = [
            (entry, _sid(raw, entry.dn))
            for entry in self._search(self.domain, search, ["objectSid", "sAMAccountName"])
            if (raw := entry.first("objectSid")) is not None
        ]
        if form == "down-level":
            builtin = text.casefold().startswith("builtin\\")
            found = [(entry, sid) for entry, sid in found if _is_builtin(sid) == builtin]
        if len(found) != 1:
            many = f"{len(found)} accounts or groups" if found else "no account or group"
            raise InputError(f"{many} in {self.domain} answer to {text}")
        entry, sid = found[0]
        return Principal(self._down_level(entry, sid), sid, entry.dn)

    def token(self, account: Principal) -> set[Sid]:
        """The SIDs an access check of ``account`` holds: its own, its groups' (nested,
        from ``tokenGroups``) and those every signed-in account holds."""
        sids = {account.sid, *IN_EVERY_TOKEN}
        if account.dn is None:
            return sids
        for entry in self._search(account.dn, "(objectClass=*)", ["tokenGroups"], scope="BASE"):
            for raw in entry.attributes.get("tokengroups", []):
                with contextlib.suppress(SourceError):
                    sids.add(_sid(raw, account.dn))
        return sids


def _is_builtin(sid: Sid) -> bool:
    """A group of the BUILTIN domain (S-1-5-32-…): Administrators, Account Operators."""
    return sid.authority == 5 and sid.subs[:1] == (32,) and len(sid.subs) == 2


def _sid(raw: bytes, where: str) -> Sid:
    try:
        return Sid.from_bytes(raw)
    except DescriptorError as exc:
        raise SourceError(f"{where}: a SID that cannot be read ({exc})") from None
