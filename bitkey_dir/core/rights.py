"""Who may read recovery keys, and changes to that (`bitkey-dir rights`). Plain values,
part of the source contract (re-exported by :mod:`bitkey_dir.sources.base`); never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

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
    helpdesk needs to read recovery passwords within ``scope`` (an OU's DN), with
    ``key_packages`` the key packages too. ``what_if``: say what would change, change
    nothing."""

    action: Action
    scope: str
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
