"""`doctor`'s rights per OU: do recovery objects exist below the sampled computers, how many
does the account see and read, and which ACE gives or lacks each right.

"Not escrowed" and "not allowed to see" look alike to a search for recovery objects: AD
leaves out what an account may not read, and a filter on an attribute it may not read
matches nothing. They are told apart by the objects' names: a one-level search under a
computer with ``(objectClass=*)`` lists every child to whoever may list the computer,
readable or not (checked against Samba, as AD does it), and a recovery object's name is its
creation time and Key ID. So: names seen but no object readable is a missing right, exit 3,
with the ACE that is missing (from the OU's DACL and the account's ``tokenGroups``) and the
command that grants it. A password that comes back is dropped at once (only whether it came
is kept), and never reaches a result.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bitkey_dir.sources.ad.access import Directory
from bitkey_dir.sources.ad.delegation import NEEDS, Right
from bitkey_dir.sources.ad.dsacls import PASSWORD_ATTRIBUTE, dsacls_lines, shell_quoted
from bitkey_dir.sources.ad.filters import RECOVERY_CLASS
from bitkey_dir.sources.ad.names import leaf_value, parse_recovery_name
from bitkey_dir.sources.ad.rights import Explainer, bound_account
from bitkey_dir.sources.ad.search import paged_search
from bitkey_dir.sources.base import Check

if TYPE_CHECKING:
    from bitkey_dir.sources.ad.connection import Connector
    from bitkey_dir.sources.ad.simple_bind import Connection

SAMPLE: Final = 10  # recovery objects sampled per OU (and computers looked into)


@dataclass
class OuSample:
    """One OU's sample: computers looked into, recovery objects whose names are listed,
    those the account sees as recovery objects, and those whose password it reads."""

    dn: str
    computers: int = 0
    named: int = 0
    visible: int = 0
    readable: int = 0


def sample(connection: Connection, ou: str, timeout: int) -> OuSample:
    """Up to SAMPLE computers right below ``ou``, and up to SAMPLE recovery objects below
    them in all."""
    found = OuSample(ou)
    computers = paged_search(
        connection,
        ou,
        "(objectCategory=computer)",
        ["1.1"],
        page_size=SAMPLE,
        timeout=timeout,
        scope="LEVEL",
    )
    for computer in list(itertools.islice(computers, SAMPLE)):
        found.computers += 1
        left = SAMPLE - found.named
        if left <= 0:
            break
        # (objectClass=*) is true of every object, readable or not: the names come back.
        children = paged_search(
            connection,
            computer.dn,
            "(objectClass=*)",
            ["objectClass", PASSWORD_ATTRIBUTE],
            page_size=SAMPLE,
            timeout=timeout,
            scope="LEVEL",
        )
        for entry in children:
            if parse_recovery_name(leaf_value(entry.dn)).key_id is None:
                continue  # another kind of child (a service connection point)
            found.named += 1
            classes = {
                value.decode("utf-8", "replace").casefold()
                for value in entry.attributes.get("objectclass", [])
            }
            if RECOVERY_CLASS.casefold() in classes:
                found.visible += 1
                if entry.first(PASSWORD_ATTRIBUTE) is not None:
                    found.readable += 1
            del entry  # the password's bytes are not kept past this point
            if found.named >= SAMPLE:
                break
    return found


def rights_checks(
    connection: Connection,
    base: str,
    ous: Sequence[str],
    connector: Connector,
    principal: str,
    who: str | None,
) -> list[Check]:
    """One check per OU holding a computer, in the order given."""
    timeout = connector.timeout
    directory = Directory(connection, timeout, principal)
    explainer: Explainer | None = None
    checks: list[Check] = []
    for ou in ous:
        found = sample(connection, ou, timeout)
        if found.computers == 0:
            continue
        if found.readable < found.named and explainer is None:
            explainer = Explainer(directory, bound_account(directory, who, connector.user))
        checks.append(ou_check(found, principal, explainer, connector.source))
    if not checks:
        checks.append(
            Check(
                "recovery objects", base, "warn", "no computer is visible to this account in any OU"
            )
        )
    return checks


def ou_check(found: OuSample, principal: str, explainer: Explainer | None, source: str) -> Check:
    counts = (
        f"recovery objects: {found.named}, visible: {found.visible}, readable: {found.readable}"
    )
    plural = "s" if found.computers != 1 else ""
    of = f" (sampled below {found.computers} computer{plural})"
    if found.named == 0:
        # Their names would be listed whatever the rights on them: none is escrowed here.
        return Check(
            "recovery objects",
            found.dn,
            "warn",
            f"{counts}{of}: no key is escrowed below these computers",
        )
    if found.readable == found.named:
        return Check("recovery objects", found.dn, "ok", f"{counts}{of}")
    right: Right = "see" if found.visible < found.named else "password"
    if found.visible == 0:
        what = f"{principal} cannot see recovery objects that exist"
    elif right == "see":
        what = f"{principal} cannot see all the recovery objects that exist"
    else:
        what = f"{principal} sees recovery objects but cannot read " + (
            "their passwords" if found.readable == 0 else "all their passwords"
        )
    why = explainer.why(found.dn, right) if explainer is not None else ""
    if why.startswith("the OU's DACL gives it"):
        why += ", yet not on every object: look at the computers' own ACEs"
    detail = f"{counts}{of}: {what}: {why or 'it needs ' + NEEDS[right]}"
    return Check(
        "recovery objects",
        found.dn,
        "missing-right",
        detail,
        grant_fix(found.dn, principal, source),
    )


def grant_fix(ou: str, principal: str, source: str) -> str:
    """The commands that grant what is missing: `bitkey-dir rights grant`, run as an
    account that may change the OU's DACL, or the same as dsacls lines on a DC."""
    lines = dsacls_lines(ou, principal)
    parts = [shell_quoted(text) for text in (source, ou, principal)]
    command = None
    if all(part is not None for part in parts):
        name, dn, who = parts
        command = f"bitkey-dir rights grant -s {name} --ou {dn} --principal {who}"
    if command and lines:
        return f"{command} (or on Windows: {' && '.join(lines)})"
    if lines:
        return " && ".join(lines)
    return command or (
        "grant Read Property on msFVE-RecoveryInformation objects and Read Property and "
        "Control Access on msFVE-RecoveryPassword (inherited by msFVE-RecoveryInformation "
        "objects) on this OU"
    )
