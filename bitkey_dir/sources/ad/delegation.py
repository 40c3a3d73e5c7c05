"""Who may see and read BitLocker recovery information below an OU, from the OU's DACL. Pure.

The rights a helpdesk needs on the ``msFVE-RecoveryInformation`` objects below an OU:

- *see*: Read Property on the objects (without it no filter on them matches);
- *password*: Read Property **and** Control Access on ``msFVE-RecoveryPassword`` (the
  attribute is confidential);
- *key package*: the same on ``msFVE-KeyPackage``.

A recovery object's DACL is its class's default (Domain Admins and SYSTEM, full control)
followed by what it inherits, through its computer, from the OU: the OU's ACEs that
container-inherit, propagate past one level and either name no class or name
``msFVE-RecoveryInformation``. The access check walks those in order, as Windows does:
for each right, the first ACE that names one of the account's SIDs and covers the right
decides it. The GUIDs are the schemaIDGUIDs every AD schema gives these names (MS-ADA2),
checked against Samba's schema by the integration tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from bitkey_dir.sources.ad.descriptor import (
    ACCESS_ALLOWED,
    ACCESS_ALLOWED_OBJECT,
    CONTAINER_INHERIT,
    INHERIT_ONLY,
    INHERITED,
    NO_PROPAGATE_INHERIT,
    Ace,
    Sid,
)

RECOVERY_INFORMATION: Final = uuid.UUID("ea715d30-8f53-40d0-bd1e-6109186d782c")
RECOVERY_PASSWORD: Final = uuid.UUID("43061ac1-c8ad-4ccc-b785-2bfac20fc60a")
KEY_PACKAGE: Final = uuid.UUID("1fd55ea8-88a7-47dc-8129-0daa97186a54")
SCHEMA_NAMES: Final = {
    RECOVERY_INFORMATION: "msFVE-RecoveryInformation",
    RECOVERY_PASSWORD: "msFVE-RecoveryPassword",
    KEY_PACKAGE: "msFVE-KeyPackage",
}

# Access rights of directory objects (MS-ADTS 5.1.3.2) and the generic ones they map from.
CREATE_CHILD, DELETE_CHILD, LIST, SELF_WRITE = 0x1, 0x2, 0x4, 0x8
READ_PROPERTY, WRITE_PROPERTY, DELETE_TREE, LIST_OBJECT = 0x10, 0x20, 0x40, 0x80
CONTROL_ACCESS: Final = 0x100
DELETE, READ_CONTROL, WRITE_DAC, WRITE_OWNER = 0x10000, 0x20000, 0x40000, 0x80000
GENERIC_ALL, GENERIC_EXECUTE = 0x10000000, 0x20000000
GENERIC_WRITE, GENERIC_READ = 0x40000000, 0x80000000
FULL_CONTROL: Final = 0xF01FF
_GENERIC: Final = {
    GENERIC_READ: READ_CONTROL | LIST | READ_PROPERTY | LIST_OBJECT,
    GENERIC_WRITE: READ_CONTROL | SELF_WRITE | WRITE_PROPERTY,
    GENERIC_EXECUTE: READ_CONTROL | LIST,
    GENERIC_ALL: FULL_CONTROL,
}
# SDDL's letters for the rights, in the order SDDL writes them.
_LETTERS: Final = (
    (GENERIC_ALL, "GA"),
    (GENERIC_READ, "GR"),
    (GENERIC_WRITE, "GW"),
    (GENERIC_EXECUTE, "GX"),
    (READ_CONTROL, "RC"),
    (DELETE, "SD"),
    (WRITE_DAC, "WD"),
    (WRITE_OWNER, "WO"),
    (READ_PROPERTY, "RP"),
    (WRITE_PROPERTY, "WP"),
    (CREATE_CHILD, "CC"),
    (DELETE_CHILD, "DC"),
    (LIST, "LC"),
    (SELF_WRITE, "SW"),
    (LIST_OBJECT, "LO"),
    (DELETE_TREE, "DT"),
    (CONTROL_ACCESS, "CR"),
)
_FLAG_LETTERS: Final = (
    (0x01, "OI"),
    (CONTAINER_INHERIT, "CI"),
    (NO_PROPAGATE_INHERIT, "NP"),
    (INHERIT_ONLY, "IO"),
    (INHERITED, "ID"),
)
_TYPE_LETTERS: Final = {0: "A", 1: "D", 2: "AU", 5: "OA", 6: "OD", 7: "OU"}

# Well-known SIDs and the RIDs of a domain's groups that hold rights by default.
SYSTEM: Final = Sid.parse("S-1-5-18")
DOMAIN_ADMINS_RID: Final = 512

Right = Literal["see", "password", "key-package"]
RIGHTS: Final[tuple[Right, ...]] = ("see", "password", "key-package")
RIGHT_WORDS: Final[dict[Right, str]] = {
    "see": "see recovery objects",
    "password": "read recovery passwords",
    "key-package": "read key packages",
}
NEEDS: Final[dict[Right, str]] = {
    "see": "Read Property on msFVE-RecoveryInformation objects",
    "password": "Read Property and Control Access on msFVE-RecoveryPassword",
    "key-package": "Read Property and Control Access on msFVE-KeyPackage",
}
# Each right as the (access bit, property) pairs that must all be granted; None: any property.
_PARTS: Final[dict[Right, tuple[tuple[int, uuid.UUID | None], ...]]] = {
    "see": ((READ_PROPERTY, None),),
    "password": ((READ_PROPERTY, RECOVERY_PASSWORD), (CONTROL_ACCESS, RECOVERY_PASSWORD)),
    "key-package": ((READ_PROPERTY, KEY_PACKAGE), (CONTROL_ACCESS, KEY_PACKAGE)),
}


@dataclass(frozen=True, slots=True)
class Effective:
    """An ACE as it acts on a recovery object below the OU, and where it comes from:
    "explicit" or "inherited" in the OU's DACL, or "class default"."""

    ace: Ace
    origin: Literal["explicit", "inherited", "class default"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One right for one set of SIDs: granted or not, the ACEs that granted its parts, and
    the ACE that denied one (if any)."""

    right: Right
    granted: bool
    granting: tuple[Effective, ...] = ()
    denying: Effective | None = None


def mapped(mask: int) -> int:
    """``mask`` with generic rights replaced by the object rights they stand for.

    >>> hex(mapped(GENERIC_READ))
    '0x20094'
    """
    for generic, rights in _GENERIC.items():
        if mask & generic:
            mask = (mask & ~generic) | rights
    return mask


def class_default(domain: Sid) -> tuple[Effective, ...]:
    """The ACEs msFVE-RecoveryInformation's default security descriptor puts on every
    recovery object: full control for Domain Admins and SYSTEM."""
    return tuple(
        Effective(Ace(ACCESS_ALLOWED, 0, FULL_CONTROL, sid), "class default")
        for sid in (domain.child(DOMAIN_ADMINS_RID), SYSTEM)
    )


def reaching_recovery_objects(dacl: Iterable[Ace]) -> list[Effective]:
    """The OU's ACEs that a recovery object below it (the child of a computer in the OU, or
    deeper) inherits, in the DACL's order."""
    reaching = []
    for ace in dacl:
        if not ace.known or ace.sid is None:
            continue
        if not ace.flags & CONTAINER_INHERIT or ace.flags & NO_PROPAGATE_INHERIT:
            continue
        if ace.inherited_object_type not in (None, RECOVERY_INFORMATION):
            continue
        reaching.append(Effective(ace, "inherited" if ace.inherited else "explicit"))
    return reaching


def _covers(ace: Ace, bit: int, prop: uuid.UUID | None) -> bool:
    if not mapped(ace.mask) & bit:
        return False
    return ace.object_type is None or ace.object_type == prop


def evaluate(effective: Sequence[Effective], sids: Collection[Sid], right: Right) -> Verdict:
    """Whether an account holding ``sids`` has ``right`` on a recovery object whose DACL
    is ``effective``, and through which ACEs."""
    granting: list[Effective] = []
    for bit, prop in _PARTS[right]:
        decided = None
        for entry in effective:
            ace = entry.ace
            if ace.sid not in sids or not (ace.allows or ace.denies) or not _covers(ace, bit, prop):
                continue
            decided = entry
            break
        if decided is None:
            return Verdict(right, False, tuple(granting))
        if decided.ace.denies:
            return Verdict(right, False, tuple(granting), decided)
        if decided not in granting:
            granting.append(decided)
    return Verdict(right, True, tuple(granting))


def holders(effective: Sequence[Effective], right: Right) -> dict[Sid, Verdict]:
    """Every SID an ACE names that holds ``right`` by its own ACEs (members of a group hold
    it through the group's SID, listed once)."""
    named = dict.fromkeys(entry.ace.sid for entry in effective if entry.ace.sid is not None)
    found = {}
    for sid in named:
        if sid is None:
            continue
        verdict = evaluate(effective, {sid}, right)
        if verdict.granted:
            found[sid] = verdict
    return found


def helpdesk_aces(sid: Sid, *, key_packages: bool = False) -> tuple[Ace, ...]:
    """The inheritable ACEs a helpdesk needs on an OU: see the recovery objects, read their
    passwords, and with ``key_packages`` their key packages too (SDDL
    ``(OA;CIIO;RP;;msFVE-RecoveryInformation;SID)`` and ``(OA;CIIO;CRRP;ATTRIBUTE;…)``)."""
    flags = CONTAINER_INHERIT | INHERIT_ONLY
    aces = [
        Ace(ACCESS_ALLOWED_OBJECT, flags, READ_PROPERTY, sid, None, RECOVERY_INFORMATION),
        Ace(
            ACCESS_ALLOWED_OBJECT,
            flags,
            READ_PROPERTY | CONTROL_ACCESS,
            sid,
            RECOVERY_PASSWORD,
            RECOVERY_INFORMATION,
        ),
    ]
    if key_packages:
        aces.append(
            Ace(
                ACCESS_ALLOWED_OBJECT,
                flags,
                READ_PROPERTY | CONTROL_ACCESS,
                sid,
                KEY_PACKAGE,
                RECOVERY_INFORMATION,
            )
        )
    return tuple(aces)


def with_granted(dacl: Sequence[Ace], wanted: Iterable[Ace]) -> tuple[tuple[Ace, ...], list[Ace]]:
    """The DACL with each ACE of ``wanted`` it lacks placed after its explicit ACEs (before
    the inherited ones, the canonical order), and the ACEs added."""
    added = [
        ace for ace in wanted if not any(ace.same_grant(old) and not old.inherited for old in dacl)
    ]
    explicit = [ace for ace in dacl if not ace.inherited]
    inherited = [ace for ace in dacl if ace.inherited]
    return (*explicit, *added, *inherited), added


def with_revoked(dacl: Sequence[Ace], unwanted: Iterable[Ace]) -> tuple[tuple[Ace, ...], list[Ace]]:
    """The DACL without the explicit ACEs equal to those of ``unwanted``, and those removed.
    Inherited ACEs stay: they are the parent's to change."""
    gone = list(unwanted)
    kept, removed = [], []
    for ace in dacl:
        if not ace.inherited and any(ace.same_grant(other) for other in gone):
            removed.append(ace)
        else:
            kept.append(ace)
    return tuple(kept), removed


def sddl(ace: Ace, names: dict[Sid, str] | None = None) -> str:
    """One ACE in SDDL's form, GUIDs of the recovery schema and SIDs given ``names``
    written as names.

    >>> sid = Sid.parse("S-1-5-11")
    >>> sddl(helpdesk_aces(sid)[1], {sid: "Authenticated Users"})
    '(OA;CIIO;RPCR;msFVE-RecoveryPassword;msFVE-RecoveryInformation;Authenticated Users)'
    """
    kind = _TYPE_LETTERS.get(ace.type, f"0x{ace.type:02x}")
    flags = "".join(letters for bit, letters in _FLAG_LETTERS if ace.flags & bit)
    left, rights = ace.mask, []
    for bit, letters in _LETTERS:
        if left & bit:
            rights.append(letters)
            left &= ~bit
    text = "".join(rights) + (f"0x{left:x}" if left else "")
    sid = ace.sid
    who = (names or {}).get(sid, str(sid)) if sid is not None else "?"
    return (
        f"({kind};{flags};{text};{_guid(ace.object_type)};{_guid(ace.inherited_object_type)};{who})"
    )


def _guid(value: uuid.UUID | None) -> str:
    return "" if value is None else SCHEMA_NAMES.get(value, str(value))


def explain(verdict: Verdict, names: dict[Sid, str], account: str) -> str:
    """A verdict in words: which ACE gives, denies or would be needed for the right.

    >>> explain(Verdict("see", False), {}, "CORP\\\\helpdesk")
    'no ACE on the OU gives CORP\\\\helpdesk or its groups Read Property on msFVE-RecoveryInformation objects'
    """  # noqa: E501
    if verdict.denying is not None:
        return f"{NEEDS[verdict.right]} is denied to it by {sddl(verdict.denying.ace, names)}"
    if verdict.granted:
        given = ", ".join(f"{sddl(e.ace, names)} ({e.origin})" for e in verdict.granting)
        return f"the OU's DACL gives it through {given}"
    return f"no ACE on the OU gives {account} or its groups {NEEDS[verdict.right]}"
