"""Key IDs as people type them and directories store them, and how input is quoted back.

Pure code, no I/O. A Key ID is a full GUID or a prefix of at least 8 hex digits (what the
recovery screen shows); :func:`shown` quotes what a person typed for an error message, masking
anything that could be a recovery password.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Final

from bitkey_dir.core.errors import InputError

_HEX: Final = frozenset("0123456789ABCDEF")
# Dashes may only sit where a GUID has them, counted in hex digits from the start.
_GUID_DASHES: Final = (8, 12, 16, 20)
MIN_PREFIX: Final = 8
_MAX_SHOWN_INPUT: Final = 60
_DIGIT_RUN: Final = re.compile(r"[0-9]{6,}")

KEY_ID_FORMS: Final = (
    "expected a Key ID: the 8 hex digits shown on the recovery screen (063EA4E1), "
    "a longer prefix (063EA4E1-220C), or the full GUID "
    "(063EA4E1-220C-4293-BA01-4754620A96E7, braces and any case accepted)"
)


def shown(text: str) -> str:
    """Quote input for an error message: printable, short, and without anything that could be
    a recovery password (runs of 6 or more digits are masked), since people paste keys into the
    wrong field.

    >>> shown("abc")
    "'abc'"
    >>> shown("x" * 100)[-2:]
    "…'"
    >>> shown("531058-303050")
    "'######-######'"
    """
    cut = text if len(text) <= _MAX_SHOWN_INPUT else text[:_MAX_SHOWN_INPUT] + "…"
    return repr(_DIGIT_RUN.sub(lambda run: "#" * len(run.group()), cut))


@dataclass(frozen=True, slots=True)
class KeyId:
    """A recovery password ID: a full GUID, or a prefix of at least 8 hex digits.

    >>> KeyId.parse(" {063ea4e1-220c-4293-ba01-4754620a96e7} ")
    KeyId('063EA4E1-220C-4293-BA01-4754620A96E7')
    >>> KeyId.parse("063EA4E1220C")
    KeyId('063EA4E1-220C')
    >>> KeyId.parse("063EA4E1").matches(KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7"))
    True
    """

    hex: str  # upper-case hex digits, no dashes: 32 for a full ID, 8 to 31 for a prefix

    def __post_init__(self) -> None:
        if not MIN_PREFIX <= len(self.hex) <= 32 or not set(self.hex) <= _HEX:
            raise InputError(f"not a Key ID: {shown(self.hex)}; {KEY_ID_FORMS}")

    @classmethod
    def from_hex(cls, digits: str) -> KeyId:
        """A full ID from 32 upper-case hex digits its caller made itself (not user input)."""
        key_id = object.__new__(cls)
        _set_hex(key_id, digits)
        return key_id

    @classmethod
    def parse(cls, text: str) -> KeyId:
        """Parse what a person typed or a file holds; raise InputError with the expected forms."""
        candidate = text.strip()
        if candidate.startswith("{"):
            candidate = candidate[1:]
            if candidate.endswith("}"):
                candidate = candidate[:-1]
        elif candidate.endswith("}"):
            raise InputError(f"not a Key ID: {shown(text)}; {KEY_ID_FORMS}")
        digits: list[str] = []
        for char in candidate.upper():
            if char == "-":
                if len(digits) not in _GUID_DASHES:
                    raise InputError(f"not a Key ID: {shown(text)}; {KEY_ID_FORMS}")
            elif char in _HEX:
                digits.append(char)
            else:
                raise InputError(f"not a Key ID: {shown(text)}; {KEY_ID_FORMS}")
        if len(digits) < MIN_PREFIX:
            raise InputError(
                f"Key ID {shown(text)} is too short: give at least the {MIN_PREFIX} hex digits "
                f"shown on the recovery screen; {KEY_ID_FORMS}"
            )
        if len(digits) > 32:
            raise InputError(f"Key ID {shown(text)} has more than 32 hex digits; {KEY_ID_FORMS}")
        if candidate.endswith("-"):
            raise InputError(f"not a Key ID: {shown(text)}; {KEY_ID_FORMS}")
        return cls("".join(digits))

    @classmethod
    def from_uuid(cls, value: uuid.UUID) -> KeyId:
        return cls(value.hex.upper())

    @property
    def is_full(self) -> bool:
        return len(self.hex) == 32

    @property
    def short(self) -> str:
        """The 8 digits the recovery screen shows."""
        return self.hex[:MIN_PREFIX]

    @property
    def uuid(self) -> uuid.UUID:
        if not self.is_full:
            raise ValueError("a Key ID prefix has no UUID")
        return uuid.UUID(hex=self.hex)

    def matches(self, other: KeyId) -> bool:
        """True if ``other`` (normally a full ID) starts with this ID."""
        return other.hex.startswith(self.hex)

    def __str__(self) -> str:
        h = self.hex
        if len(h) == 32:  # the usual case, written out: exports format thousands of these
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        parts = []
        start = 0
        for end in (*_GUID_DASHES, 32):
            if start >= len(self.hex):
                break
            parts.append(self.hex[start:end])
            start = end
        return "-".join(parts)

    def __repr__(self) -> str:
        return f"KeyId('{self}')"


_set_hex = vars(KeyId)["hex"].__set__  # found once, not by name per key an export reads
