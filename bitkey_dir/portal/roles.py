"""Roles from directory groups, as MBAM's Helpdesk, Advanced Helpdesk and Report Users.

``helpdesk``  every agent who signs in: looks a key up by its Key ID (8 digits or more),
              reads it out, rotates it after the call
``advanced``  an agent in a group of ``[serve] advanced``: also searches by computer name and
              downloads key packages
``auditor``   an agent in a group of ``[serve] auditors``: the trail, the directories' own
              record of reads and the disclosed keys, never a password. An account in both
              lists is an auditor: one session never both reads keys and audits the reading.

The groups are read once, at sign-in, from the agent's own directory as the agent (AD: the
``tokenGroups`` of their own object, nested groups included), and kept in the session.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

HELPDESK: Final = "helpdesk"
ADVANCED: Final = "advanced"
AUDITOR: Final = "auditor"
READS_KEYS: Final = frozenset({HELPDESK, ADVANCED})


def _names(group: str) -> set[str]:
    """``DOMAIN\\name`` answers to itself and to ``name``, compared without case."""
    full = group.strip().casefold()
    return {full, full.rpartition("\\")[2]}


def role_of(groups: Iterable[str], advanced: Iterable[str], auditors: Iterable[str]) -> str:
    """The role of an agent in ``groups``, given the groups of each role.

    >>> role_of(["CORP\\\\Domain Users", "CORP\\\\BitLocker Advanced"], ["bitlocker advanced"], [])
    'advanced'
    >>> role_of(["CORP\\\\Audit"], ["CORP\\\\Audit"], ["audit"])
    'auditor'
    >>> role_of([], ["x"], ["y"])
    'helpdesk'
    """
    held = set().union(*(_names(group) for group in groups))

    def within(configured: Iterable[str]) -> bool:
        return any(name.strip().casefold() in held for name in configured)

    if within(auditors):
        return AUDITOR
    return ADVANCED if within(advanced) else HELPDESK


def refusal(role: str, what: str) -> str:
    """The 403 page's sentence: what this role may not do, and who can."""
    if role == AUDITOR:
        return f"Auditors see the trail and reports, never a recovery key: {what} is not yours."
    return f"{what[:1].upper()}{what[1:]} is for advanced helpdesk agents only ([serve] advanced)."
