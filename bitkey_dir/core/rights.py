"""Who may read recovery keys, and changes to that (`bitkey-dir rights`). Plain values,
part of the source contract (re-exported by :mod:`bitkey_dir.sources.base`); never a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from bitkey_dir.core.errors import InputError

# What a holder may do. AD: see the recovery objects, read their passwords, read their key
# packages; Entra: read BitLocker key values (a role that includes bitlockerKeys/key/read).
RIGHT_NAMES: Final = (
    "see recovery objects",
    "read recovery passwords",
    "read key packages",
    "read BitLocker keys",
)
# Where a right comes from. AD: an ACE set on the OU itself ("explicit"), one the OU
# inherits from above ("inherited"), the recovery object class's default security
# descriptor ("class default"); Entra: a directory role assignment ("role").
ORIGINS: Final = ("explicit", "inherited", "class default", "role")

Action = Literal["grant", "revoke"]
PrincipalForm = Literal["sid", "upn", "down-level"]
_SID: Final = re.compile(r"S-1-\d{1,15}(?:-\d{1,10}){0,15}", re.IGNORECASE)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NETBIOS: Final = re.compile(r"[^\\/:*?\"<>|@]{1,15}")


def principal_form(text: str) -> PrincipalForm:
    r"""Which of the accepted forms ``text`` is, or InputError: a SID, name@domain (a UPN)
    or DOMAIN\name (down-level).

    >>> principal_form("helpdesk@corp.example"), principal_form("CORP\\Helpdesk Staff")
    ('upn', 'down-level')
    >>> principal_form("S-1-5-21-1-2-3-1105")
    'sid'
    """
    text = text.strip()
    if _CONTROL.search(text):
        raise InputError(
            "a principal holding a control character: name@domain, DOMAIN\\name or a SID"
        )
    if _SID.fullmatch(text):
        return "sid"
    user, at, domain = text.partition("@")
    if at and user and domain and "@" not in domain and "\\" not in text:
        return "upn"
    domain, slash, name = text.partition("\\")
    if slash and name.strip() and _NETBIOS.fullmatch(domain) and "\\" not in name:
        return "down-level"
    raise InputError(
        f"{text[:80]!r}: name the account or group as name@domain, DOMAIN\\name or a SID",
        hint="for example CORP\\Helpdesk Staff, helpdesk@corp.example or S-1-5-21-…-1105",
    )


@dataclass(frozen=True, slots=True)
class Via:
    """One thing that gives a right: an ACE (in SDDL, names for SIDs) or a role."""

    text: str
    origin: str

    def to_record(self) -> dict[str, str]:
        return {"text": self.text, "origin": self.origin}


@dataclass(frozen=True, slots=True)
class Holder:
    """One principal holding one right within a scope, and what gives it to them.

    ``principal`` is the name the directory resolves (``BITKEY\\helpdesk``, a display
    name), or the identifier when it cannot; ``ident`` the SID or object ID.
    """

    source: str
    scope: str
    principal: str
    ident: str
    right: str
    via: tuple[Via, ...]

    def to_record(self) -> dict[str, object]:
        return {
            "source": self.source,
            "scope": self.scope,
            "principal": self.principal,
            "id": self.ident,
            "right": self.right,
            "via": [way.to_record() for way in self.via],
        }


@dataclass(frozen=True, slots=True)
class RightsRequest:
    """Grant or revoke, for ``principal`` (a UPN, DOMAIN\\name or a SID), the rights a
    helpdesk needs to read recovery passwords within ``scope`` (an OU's DN; None: the
    source's whole directory), with
    ``key_packages`` the key packages too. ``what_if``: say what would change, change
    nothing."""

    action: Action
    scope: str | None
    principal: str
    key_packages: bool = False
    what_if: bool = False


@dataclass(frozen=True, slots=True)
class RightsChange:
    """What a grant or revoke did (``applied``) or would do: the entries added or removed
    (``changed``), those already as asked (``unchanged``), and the same change as commands
    an administrator could run instead (``commands``)."""

    source: str
    scope: str
    action: Action
    principal: str
    ident: str
    applied: bool
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()

    def to_record(self) -> dict[str, object]:
        return {
            "source": self.source,
            "scope": self.scope,
            "action": self.action,
            "principal": self.principal,
            "id": self.ident,
            "applied": self.applied,
            "changed": list(self.changed),
            "unchanged": list(self.unchanged),
            "commands": list(self.commands),
        }
