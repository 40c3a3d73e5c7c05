"""One Key ID on several computers: a conflict to stop at, never a list of keys to try.

A Key ID names one protector of one volume, and its recovery password never changes. The
same full Key ID held by two computers (or devices, in one directory or across sources and
tenants), or with two different passwords, is a copy someone made: whoever holds a stolen
laptop can escrow its Key ID under their own computer and ask the helpdesk for "their" key.
So a lookup that meets one reveals nothing (ops/lookup.py) and an export warns (ops/export.py).

The same key seen twice for the same computer is no conflict: two sources over one directory
(a domain controller and the Global Catalog, one tenant configured twice), a directory and
its export, a computer re-joined under its old name. Two sightings are of the same computer
unless both name it and the names differ (ignoring case, a trailing ``$`` or ``.``, and a
short name against the first label of a DNS name), or both carry device IDs that differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from bitkey_dir.core.display import safe
from bitkey_dir.core.key_id import KeyId
from bitkey_dir.core.model import RecoveryKey

_NAMED_AT_MOST: Final = 5  # computers named in one message; more are counted


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a key, as far as a source says: a computer name and a device ID."""

    computer: str | None
    device_id: str | None

    @classmethod
    def of(cls, key: RecoveryKey) -> Holder:
        return cls(key.computer, key.device_id)

    def same_as(self, other: Holder) -> bool:
        """Not shown to differ: what one of them does not say cannot disagree."""
        mine, theirs = _device(self.device_id), _device(other.device_id)
        if mine and theirs and mine != theirs:
            return False
        if self.computer and other.computer:
            return same_computer(self.computer, other.computer)
        return True


def same_computer(a: str, b: str) -> bool:
    """The same computer name: case, a trailing ``$`` or ``.`` and a DNS suffix aside.

    >>> same_computer("PC-0042", "pc-0042.corp.example"), same_computer("PC-0042$", "pc-0042")
    (True, True)
    >>> same_computer("pc-0042.corp.example", "pc-0042.lab.example"), same_computer("A", "B")
    (False, False)
    """
    first, second = _folded(a), _folded(b)
    if first == second:
        return True
    if "." in first and "." in second:
        return False
    return first.split(".", 1)[0] == second.split(".", 1)[0]


def _device(device_id: str | None) -> str | None:
    return device_id.strip().strip("{}").casefold() if device_id else None


def _folded(name: str) -> str:
    return name.strip().casefold().rstrip(".").rstrip("$")


@dataclass(frozen=True)
class Conflict:
    """A full Key ID found on more than one computer, or with different passwords."""

    key_id: KeyId
    sightings: tuple[RecoveryKey, ...]

    @property
    def computers(self) -> list[str]:
        """Each computer once per source, as the source names it (or by its device ID)."""
        named: list[str] = []
        for key in self.sightings:
            label = key.computer or (f"device {key.device_id}" if key.device_id else "unnamed")
            shown = f"{label} ({key.source})"
            if shown not in named:
                named.append(shown)
        return named

    @property
    def sources(self) -> list[str]:
        return sorted({key.source for key in self.sightings})

    @property
    def several_computers(self) -> bool:
        holders = [Holder.of(key) for key in self.sightings]
        return any(not a.same_as(b) for i, a in enumerate(holders) for b in holders[i + 1 :])

    def describe(self) -> str:
        """One sentence naming the computers (escaped: the names come from directories)."""
        names = self.computers
        shown = ", ".join(names[:_NAMED_AT_MOST])
        if len(names) > _NAMED_AT_MOST:
            shown += f" and {len(names) - _NAMED_AT_MOST} more"
        if self.several_computers:
            what = f"Key ID {self.key_id} is escrowed for more than one computer: {shown}"
        else:
            what = f"Key ID {self.key_id} has different recovery passwords for {shown}"
        return safe(what)


def find_conflicts(keys: Iterable[RecoveryKey]) -> list[Conflict]:
    """Every full Key ID among ``keys`` that is on several computers or has several
    passwords, in Key ID order."""
    by_id: dict[KeyId, list[RecoveryKey]] = {}
    for key in keys:
        by_id.setdefault(key.key_id, []).append(key)
    found = []
    for key_id, sightings in sorted(by_id.items(), key=lambda item: item[0].hex):
        if len(sightings) < 2:
            continue
        conflict = Conflict(key_id, tuple(sightings))
        passwords = {key.recovery_password for key in sightings if key.recovery_password}
        if conflict.several_computers or len(passwords) > 1:
            found.append(conflict)
    return found


def refusal(conflicts: list[Conflict]) -> str:
    """Why nothing is revealed, and what to check: one line."""
    told = "; ".join(conflict.describe() for conflict in conflicts)
    return (
        f"{told}. Nothing is revealed: a Key ID belongs to one volume, so one of these is a "
        "copy (escrowed under another computer, or altered). Check the recovery objects of "
        "each computer (who created them and when, and which computer the caller's really "
        "is) before reading any key out"
    )


class ConflictWatch:
    """For a stream of keys (an export): the Key IDs seen on more than one computer,
    keeping one small holder per Key ID, so that memory grows with the number of IDs only."""

    def __init__(self) -> None:
        # Each Key ID's first holder as a (computer, device ID) pair: a tuple costs a tenth
        # of a Holder to make, and nearly every Key ID of an export is seen only once.
        self._holders: dict[str, tuple[str | None, str | None]] = {}
        self.conflicting: dict[KeyId, list[str]] = {}

    def see(self, key: RecoveryKey) -> None:
        # The Key ID's own hex digits (a full ID's): kept alive by the holder's entry
        # instead of a new 16-byte copy, and no UUID made per key of an export.
        raw = key.key_id.hex
        first = self._holders.get(raw)
        if first is None:
            self._holders[raw] = (key.computer, key.device_id)
            return
        seen, holder = Holder(*first), Holder.of(key)
        if not seen.same_as(holder):
            names = self.conflicting.setdefault(key.key_id, [seen.computer or "unnamed"])
            names.append(holder.computer or "unnamed")
        elif not (seen.computer and seen.device_id):
            # What the first sighting did not say, a later one may: keep the fuller holder.
            self._holders[raw] = (
                seen.computer or holder.computer,
                seen.device_id or holder.device_id,
            )

    def warning(self) -> str | None:
        if not self.conflicting:
            return None
        key_id, names = next(iter(self.conflicting.items()))
        return safe(
            f"{len(self.conflicting)} Key ID(s) are escrowed for more than one computer "
            f"(Key ID {key_id}: {', '.join(names[:_NAMED_AT_MOST])}): every row is kept in "
            "this backup, but a Key ID belongs to one volume, and `find` reveals none of "
            "them until the copies are resolved"
        )
