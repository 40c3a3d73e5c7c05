"""`bitkey-dir rights` for Active Directory: who may read the recovery keys below an OU, and
granting or revoking exactly the ACEs a helpdesk needs.

``show`` reads the OU's DACL (DACL only, with the SD-flags control), takes the ACEs that
reach the recovery objects below it, adds the class's default ones, and lists each SID that
holds a right by its own ACEs, with the ACEs and names resolved from the SIDs. ``grant`` and
``revoke`` resolve the principal, compute the new DACL and, unless it is a what-if, write it
back with one modify of ``nTSecurityDescriptor`` under the same control, on a connection of
its own that may write. What it would take by hand is given as dsacls lines either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bitkey_dir.core.errors import AuthError, BitkeyError, InputError, SourceError
from bitkey_dir.core.rights import Holder, RightsChange, RightsRequest, Via
from bitkey_dir.sources.ad.access import IN_EVERY_TOKEN, Directory, Principal
from bitkey_dir.sources.ad.delegation import (
    RIGHT_WORDS,
    RIGHTS,
    Effective,
    Right,
    class_default,
    evaluate,
    explain,
    helpdesk_aces,
    holders,
    reaching_recovery_objects,
    sddl,
    with_granted,
    with_revoked,
)
from bitkey_dir.sources.ad.descriptor import SecurityDescriptor, Sid
from bitkey_dir.sources.ad.dsacls import dsacls_lines, dsacls_removal
from bitkey_dir.sources.ad.names import split_dn
from bitkey_dir.sources.ad.search import paged_search
from bitkey_dir.sources.ad.settings import ADConfig
from bitkey_dir.sources.base import Warn

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.simple_bind import Connection


_ORDER = {words: number for number, words in enumerate(RIGHT_WORDS.values())}


def directory(source: ADConfig, connection: Connection) -> Directory:
    return Directory(connection, source.connector.timeout, source.connector.account)


def _base_dn(source: ADConfig, connection: Connection) -> str:
    """The configured base DN, else the DC's default naming context (kept)."""
    if source.base_dn:
        return source.base_dn
    for entry in paged_search(
        connection,
        "",
        "(objectClass=*)",
        ["defaultNamingContext"],
        page_size=1,
        timeout=source.connector.timeout,
        scope="BASE",
    ):
        source.base_dn = entry.text("defaultNamingContext")
    if not source.base_dn:
        raise SourceError("the server does not say its naming context; set base_dn")
    return source.base_dn


def effective_below(found: Directory, ou: str) -> list[Effective]:
    """What acts on a recovery object below ``ou``: the class's default ACEs, then the
    OU's that reach it."""
    dacl = found.descriptor(ou).dacl
    return [
        *class_default(found.domain_sid()),
        *reaching_recovery_objects(dacl.aces if dacl else ()),
    ]


def _scope(source: ADConfig, connection: Connection, scope: str | None) -> str:
    if scope is None:
        return _base_dn(source, connection)
    if not split_dn(scope):
        raise InputError(
            f"{scope[:120]!r} is not a DN", hint="for example OU=Laptops,DC=corp,DC=example"
        )
    return scope


def show(source: ADConfig, scope: str | None, warn: Warn) -> list[Holder]:
    """Every principal that can see recovery objects, read their passwords or their key
    packages below ``scope`` (default: the domain, i.e. every OU), by its own ACEs."""
    connection = source.connector.connect(warn)
    found = directory(source, connection)
    ou = _scope(source, connection, scope)
    effective = effective_below(found, ou)
    per_right = {right: holders(effective, right) for right in RIGHTS}
    names = found.names(sid for held in per_right.values() for sid in held)
    rows = []
    for right, held in per_right.items():
        for sid, verdict in held.items():
            via = tuple(Via(sddl(entry.ace, names), entry.origin) for entry in verdict.granting)
            name = names.get(sid, str(sid))
            rows.append(Holder(source.name, ou, name, str(sid), RIGHT_WORDS[right], via))
    rows.sort(key=lambda row: (_ORDER[row.right], row.principal.casefold()))
    return rows


def change(source: ADConfig, request: RightsRequest, warn: Warn) -> RightsChange:
    """Grant or revoke the helpdesk's ACEs on the OU; with ``what_if`` nothing is written."""
    connection = source.connector.connect(warn)
    found = directory(source, connection)
    ou = _scope(source, connection, request.scope)
    who = found.principal(request.principal)
    descriptor = found.descriptor(ou)
    current = descriptor.dacl.aces if descriptor.dacl else ()
    if request.action == "grant":
        wanted = helpdesk_aces(who.sid, key_packages=request.key_packages)
        dacl, changed = with_granted(current, wanted)
        lines = dsacls_lines(ou, who.name, key_packages=request.key_packages)
        commands = lines or ()
    else:
        every = helpdesk_aces(who.sid, key_packages=True)
        wanted = every[2:] if request.key_packages else every
        dacl, changed = with_revoked(current, wanted)
        removal = dsacls_removal(ou, who.name)
        commands = (removal,) if removal else ()
    names = {who.sid: who.name}
    unchanged = [ace for ace in wanted if not any(ace.same_grant(done) for done in changed)]
    applied = bool(changed) and not request.what_if
    if applied:
        _write(source, ou, descriptor.with_dacl(dacl), warn)
    return RightsChange(
        source.name,
        ou,
        request.action,
        who.name,
        str(who.sid),
        applied,
        tuple(sddl(ace, names) for ace in changed),
        tuple(sddl(ace, names) for ace in unchanged),
        commands,
    )


def _write(source: ADConfig, ou: str, descriptor: SecurityDescriptor, warn: Warn) -> None:
    writer = source.connector.writable()
    try:
        connection = writer.connect(warn)
        directory(source, connection).replace_dacl(ou, descriptor)
    finally:
        writer.close()


def bound_account(found: Directory, who: str | None, user: str | None) -> Principal | None:
    """The account the connection is bound as, from Who am I? (DOMAIN\\name) or the bind
    name; None when neither names an account the domain has."""
    for name in (who, user):
        if not name:
            continue
        try:
            return found.principal(name)
        except InputError:
            continue
    return None


def own_groups(source: ADConfig, warn: Warn) -> list[str]:
    """The groups the bound account is in, nested ones too: its own object's
    ``tokenGroups`` (what AD's access checks use: security groups only, the primary group
    included), resolved to names in one search."""
    found = directory(source, source.connector.connect(warn))
    account = bound_account(found, None, source.connector.user)
    if account is None:
        raise AuthError(f"{source.connector.account} is not an account of this domain")
    sids = found.token(account) - {account.sid, *IN_EVERY_TOKEN}
    return sorted(found.names(sids).values(), key=str.casefold)


@dataclass
class Explainer:
    """Why an account lacks a right below an OU, from the OU's DACL and the account's token
    (for `doctor`); read once per account, and per OU only when asked."""

    found: Directory
    account: Principal | None
    _token: set[Sid] | None = None

    def why(self, ou: str, right: Right) -> str:
        """One clause: the ACE that grants or denies ``right``, or that none gives it."""
        if self.account is None:
            return "the account's own object is not visible, so its groups are unknown"
        try:
            if self._token is None:
                self._token = self.found.token(self.account)
            effective = effective_below(self.found, ou)
        except BitkeyError as exc:
            return f"the OU's security descriptor could not be read ({exc.message})"
        verdict = evaluate(effective, self._token, right)
        names = self.found.names(
            entry.ace.sid
            for entry in (*verdict.granting, *([verdict.denying] if verdict.denying else []))
            if entry.ace.sid is not None
        )
        names[self.account.sid] = self.account.name
        return explain(verdict, names, self.account.name)
