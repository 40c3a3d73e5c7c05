"""The shapes every part of bitkey-dir agrees on: keys, index entries, computer names and
queries, over the Key IDs (core/key_id.py) and recovery passwords (core/passwords.py) that
this module also offers, so that one import names them all.

Pure code, no I/O. Parsers take what a person types or a file holds and either return a
canonical value or raise :class:`~bitkey_dir.core.errors.InputError` with a message that shows
the expected forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.key_id import KEY_ID_FORMS, MIN_PREFIX, KeyId, shown
from bitkey_dir.core.passwords import (
    KEY_PACKAGE_MAX,
    KeyPackage,
    PasswordCheck,
    RecoveryPassword,
    check_password,
    group_is_valid,
    holds_password,
    mask_passwords,
)

__all__ = [
    "KEY_ID_FORMS",
    "KEY_PACKAGE_MAX",
    "MIN_PREFIX",
    "VOLUME_TYPES",
    "ComputerName",
    "KeyEntry",
    "KeyId",
    "KeyPackage",
    "PasswordCheck",
    "Query",
    "RecoveryKey",
    "RecoveryPassword",
    "check_password",
    "group_is_valid",
    "holds_password",
    "mask_passwords",
    "shown",
]

VOLUME_TYPES: Final = (
    "operatingSystemVolume",
    "fixedDataVolume",
    "removableDataVolume",
)


@dataclass(frozen=True, slots=True)
class RecoveryKey:
    """One escrowed recovery key, wherever it was found.

    ``recovery_password`` is None when the source proved the key exists but could not read the
    password (missing rights). ``created`` is timezone-aware or None when the source does not say.
    ``key_package`` is read only when asked for (``find --key-package``, ``export
    --key-packages``), and only sources that escrow one (AD, our own exports) fill it.
    """

    source: str
    key_id: KeyId
    recovery_password: RecoveryPassword | None
    computer: str | None = None
    created: datetime | None = None
    volume_type: str | None = None
    volume_id: str | None = None
    device_id: str | None = None
    location: str | None = None
    deleted: bool = False
    key_package: KeyPackage | None = None

    def __post_init__(self) -> None:
        if not self.key_id.is_full:
            raise ValueError("a RecoveryKey needs a full Key ID, not a prefix")
        if self.created is not None and self.created.utcoffset() is None:
            raise ValueError("RecoveryKey.created must be timezone-aware")

    @classmethod
    def checked(
        cls,
        source: str,
        key_id: KeyId,
        recovery_password: RecoveryPassword | None,
        computer: str | None,
        created: datetime | None,
        volume_id: str | None,
        location: str | None,
        deleted: bool,
        key_package: KeyPackage | None,
    ) -> RecoveryKey:
        """A key from a caller that made its values itself and so knows what __post_init__
        checks (a full Key ID, a timezone-aware date): half the cost of the checks and the
        keyword call, which the AD reader pays once per key it reads."""
        key = object.__new__(cls)
        # Written out: a loop over the fields costs what it saves.
        _set_source(key, source)
        _set_key_id(key, key_id)
        _set_recovery_password(key, recovery_password)
        _set_computer(key, computer)
        _set_created(key, created)
        _set_volume_type(key, None)
        _set_volume_id(key, volume_id)
        _set_device_id(key, None)
        _set_location(key, location)
        _set_deleted(key, deleted)
        _set_key_package(key, key_package)
        return key


# Each slot's own setter, found once: what object.__setattr__ looks up by name on every call.
_slots = vars(RecoveryKey)
_set_source = _slots["source"].__set__
_set_key_id = _slots["key_id"].__set__
_set_recovery_password = _slots["recovery_password"].__set__
_set_computer = _slots["computer"].__set__
_set_created = _slots["created"].__set__
_set_volume_type = _slots["volume_type"].__set__
_set_volume_id = _slots["volume_id"].__set__
_set_device_id = _slots["device_id"].__set__
_set_location = _slots["location"].__set__
_set_deleted = _slots["deleted"].__set__
_set_key_package = _slots["key_package"].__set__


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key as the Key ID index keeps it: where it is and what it belongs to, never its
    password (there is no field for one). ``created`` is timezone-aware or None."""

    key_id: KeyId
    computer: str | None = None
    device_id: str | None = None
    created: datetime | None = None
    location: str | None = None
    deleted: bool = False

    def __post_init__(self) -> None:
        if not self.key_id.is_full:
            raise ValueError("a KeyEntry needs a full Key ID, not a prefix")
        if self.created is not None and self.created.utcoffset() is None:
            raise ValueError("KeyEntry.created must be timezone-aware")

    @classmethod
    def of(cls, key: RecoveryKey) -> KeyEntry:
        """The entry for a key that was read: everything but its password."""
        return cls(
            key_id=key.key_id,
            computer=key.computer,
            device_id=key.device_id,
            created=key.created,
            location=key.location,
            deleted=key.deleted,
        )


_COMPUTER_MAX: Final = 255  # the longest DNS name; NetBIOS names are 15 characters
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ComputerName:
    """A computer name to look for; ``*`` is a wildcard, everything else is literal.

    Matching ignores case and a trailing ``$`` (the sAMAccountName form), and a short name
    matches the first label of a DNS name. It takes time in proportion to the name and the
    pattern, whatever the pattern: ``*a*a*a…*b`` cannot make it backtrack.

    >>> name = ComputerName.parse("pc-00*")
    >>> name.matches("PC-0042"), name.matches("PC-0042.corp.example.com"), name.matches("LAB-1")
    (True, True, False)
    >>> ComputerName.parse("PC(01)").matches("pc(01)$")
    True
    """

    text: str
    _parts: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parts", tuple(self.text.casefold().split("*")))

    @classmethod
    def parse(cls, text: str) -> ComputerName:
        name = text.strip().removesuffix("$").strip()
        if not name or not name.strip("*"):
            raise InputError(
                "expected a computer name such as PC-0042, pc-0042.corp.example.com "
                "or PC-00* (a * matches any characters)"
            )
        if len(name) > _COMPUTER_MAX:
            raise InputError(
                f"computer name {shown(name)} is longer than {_COMPUTER_MAX} characters"
            )
        if _CONTROL.search(name):
            raise InputError(f"computer name {shown(name)} contains control characters")
        return cls(name)

    @property
    def has_wildcard(self) -> bool:
        return "*" in self.text

    def matches(self, candidate: str) -> bool:
        name = candidate.strip().removesuffix("$").casefold()
        if _glob(self._parts, name):
            return True
        return "." not in self.text and _glob(self._parts, name.split(".", 1)[0])


def _glob(parts: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` matches the pattern whose pieces between the ``*`` are ``parts``:
    the first piece starts it, the last ends it, and the others come in order between, each
    at its first place (which leaves the most room for the rest).

    >>> _glob(("pc-", ""), "pc-01"), _glob(("a", "b", "c"), "axbyc"), _glob(("a", "b"), "ab")
    (True, True, True)
    >>> _glob(("",) + ("a",) * 30 + ("b",), "a" * 100)
    False
    """
    if len(parts) == 1:
        return text == parts[0]
    first, *middle, last = parts
    if len(text) < len(first) + len(last) or not text.startswith(first):
        return False
    if not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for part in middle:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@dataclass(frozen=True, slots=True)
class Query:
    """What the user asked for: keys by Key ID, or keys of a computer."""

    key_id: KeyId | None = None
    computer: ComputerName | None = None
    include_deleted: bool = False

    def __post_init__(self) -> None:
        if (self.key_id is None) == (self.computer is None):
            raise InputError("give exactly one of --key-id and --computer")

    def describe(self) -> str:
        if self.computer is not None:
            return f"computer {self.computer.text}"
        return f"Key ID {self.key_id}"

    def matches(self, key: RecoveryKey) -> bool:
        """Whether a key answers this query; sources that read everything filter with this."""
        if key.deleted and not self.include_deleted:
            return False
        if self.computer is not None:
            return key.computer is not None and self.computer.matches(key.computer)
        return self.key_id is not None and self.key_id.matches(key.key_id)
