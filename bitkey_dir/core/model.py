"""The shapes every part of bitkey-dir agrees on: Key IDs, recovery passwords, keys and queries.

Pure code, no I/O. Parsers take what a person types or a file holds and either return a
canonical value or raise :class:`~bitkey_dir.core.errors.InputError` with a message that shows the
expected forms. Recovery passwords hide their digits from ``repr()`` and ``str()`` so that a
key can be logged, put in an exception or a container, and printed without leaking.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
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
        object.__setattr__(key_id, "hex", digits)
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


_PASSWORD_GROUPS: Final = 8
_GROUP_DIGITS: Final = 6
# ASCII digits only: str.isdigit() would accept Arabic-Indic or full-width digits.
_PASSWORD_SHAPE: Final = re.compile(r"[0-9]{6}(?:(?:-| +|)[0-9]{6}){7}")
_GROUP_LIMIT: Final = 11 * 65536
_CANONICAL_PASSWORD: Final = re.compile(r"[0-9]{6}(?:-[0-9]{6}){7}")
_NOT_DIGITS: Final = re.compile(r"[^0-9]+")
_PASSWORD_CHARS: Final = frozenset("0123456789- ")


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The result of checking a typed recovery password, without the digits themselves."""

    valid: bool
    problem: str | None = None
    bad_groups: tuple[int, ...] = ()  # 1-based, as a person counts them


def group_is_valid(group: str) -> bool:
    """A group is 11 * k with k < 65536: six digits carry 16 bits of the key plus a checksum.

    >>> group_is_valid("531058"), group_is_valid("531059"), group_is_valid("720896")
    (True, False, False)
    """
    return _groups_valid((group,))


def check_password(text: str) -> PasswordCheck:
    """Say whether ``text`` is a well-formed recovery password and, if not, what is wrong.

    >>> check_password("531058-303050-716078-383614-460922-106975-083446-139161").valid
    True
    >>> check_password("531058-303050-716079-383614-460922-106975-083446-139161")
    PasswordCheck(valid=False, problem='group 3 is wrong: ...', bad_groups=(3,))
    """
    stripped = text.strip()
    if not stripped:
        return PasswordCheck(False, "no recovery password given")
    if _PASSWORD_SHAPE.fullmatch(stripped) is None:
        if set(stripped) - _PASSWORD_CHARS:
            detail = "characters other than digits, dashes and spaces"
        elif (digits := sum(c.isdecimal() for c in stripped)) != 48:
            detail = f"{digits} digits"
        else:
            detail = "digits not in groups of 6"
        return PasswordCheck(
            False,
            f"expected 48 digits in 8 groups of 6 (dashes or spaces between groups), got {detail}",
        )
    digits_only = _NOT_DIGITS.sub("", stripped)
    groups = [digits_only[i : i + _GROUP_DIGITS] for i in range(0, 48, _GROUP_DIGITS)]
    bad = tuple(n for n, group in enumerate(groups, start=1) if not group_is_valid(group))
    if bad:
        which = ", ".join(str(n) for n in bad)
        noun = "group" if len(bad) == 1 else "groups"
        verb = "is" if len(bad) == 1 else "are"
        return PasswordCheck(
            False,
            f"{noun} {which} {verb} wrong: each group must be a multiple of 11 below 720896 "
            "(a digit was probably misheard or mistyped)",
            bad,
        )
    return PasswordCheck(True)


def _groups_valid(groups: Iterable[str]) -> bool:
    """group_is_valid for every group, in one loop: exports check thousands of passwords."""
    for group in groups:
        value = int(group)
        if value % 11 or value >= _GROUP_LIMIT:
            return False
    return True


# Two or more groups of six digits with a dash or a space between them, or all 48 at once:
# what a recovery password looks like when it is pasted into the wrong field.
_PASTED_PASSWORD: Final = re.compile(
    r"(?<![0-9])(?:[0-9]{6}(?:[- ][0-9]{6}){1,7}|[0-9]{48})(?![0-9])"
)


def holds_password(text: str) -> bool:
    """Whether ``text`` holds something shaped like (part of) a recovery password.

    >>> holds_password("INC0012345 user locked out"), holds_password("read 531058-303050 out")
    (False, True)
    """
    return _PASTED_PASSWORD.search(text) is not None


def mask_passwords(text: str) -> str:
    """``text`` with anything shaped like a recovery password masked.

    >>> mask_passwords("key 531058-303050-716078 read out")
    'key ######-######-###### read out'
    """
    return _PASTED_PASSWORD.sub(lambda m: re.sub(r"[0-9]", "#", m.group()), text)


class RecoveryPassword:
    """A valid 48-digit recovery password. Hides its digits unless :meth:`reveal` is called.

    >>> p = RecoveryPassword.parse("531058 303050 716078 383614 460922 106975 083446 139161")
    >>> p, str(p), [p]
    (RecoveryPassword(hidden), '<recovery password hidden>', [RecoveryPassword(hidden)])
    >>> p.reveal()
    '531058-303050-716078-383614-460922-106975-083446-139161'
    """

    __slots__ = ("_digits",)
    _digits: str

    def __init__(self, digits: str) -> None:
        # Only parse() builds these, so the invariant "48 digits, every group valid" holds.
        object.__setattr__(self, "_digits", digits)

    @classmethod
    def parse(cls, text: str) -> RecoveryPassword:
        if _CANONICAL_PASSWORD.fullmatch(text) is not None and _groups_valid(text.split("-")):
            return cls(text.replace("-", ""))  # the form directories store, checked quickly
        check = check_password(text)
        if not check.valid:
            raise InputError(f"not a valid recovery password: {check.problem}")
        return cls(_NOT_DIGITS.sub("", text))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RecoveryPassword is immutable")

    def groups(self) -> tuple[str, ...]:
        return tuple(self._digits[i : i + _GROUP_DIGITS] for i in range(0, 48, _GROUP_DIGITS))

    def reveal(self) -> str:
        """The canonical dashed form. Call only to put the password on the user's screen."""
        d = self._digits
        return f"{d[:6]}-{d[6:12]}-{d[12:18]}-{d[18:24]}-{d[24:30]}-{d[30:36]}-{d[36:42]}-{d[42:]}"

    def __repr__(self) -> str:
        return "RecoveryPassword(hidden)"

    def __str__(self) -> str:
        return "<recovery password hidden>"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecoveryPassword):
            return NotImplemented
        return hmac.compare_digest(self._digits, other._digits)

    def __hash__(self) -> int:
        return hash(self._digits)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a RecoveryPassword is not serialised implicitly")


# A key package holds the volume's full-volume encryption key sealed with the recovery
# password: real ones are a few hundred bytes. The bound keeps a damaged export or a hostile
# directory from making a lookup hold megabytes.
KEY_PACKAGE_MAX: Final = 64 * 1024


class KeyPackage:
    """A BitLocker key package (AD's msFVE-KeyPackage): binary, and as sensitive as the
    recovery password it is sealed with. Hides its bytes unless :meth:`reveal` is called.

    >>> package = KeyPackage(bytes(range(8)))
    >>> package, str(package), len(package)
    (KeyPackage(hidden), '<key package hidden>', 8)
    >>> KeyPackage.from_base64(package.to_base64()) == package
    True
    """

    __slots__ = ("_data",)
    _data: bytes

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, bytes) or not 0 < len(data) <= KEY_PACKAGE_MAX:
            raise ValueError(f"a key package is 1 to {KEY_PACKAGE_MAX} bytes")
        object.__setattr__(self, "_data", data)

    @classmethod
    def from_base64(cls, text: str) -> KeyPackage:
        """Parse the base64 form exports hold; InputError (without the data) when damaged."""
        import base64
        import binascii

        if len(text) > KEY_PACKAGE_MAX * 2:
            raise InputError("a key package longer than any real one")
        try:
            data = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InputError("a key package that is not valid base64") from None
        if not 0 < len(data) <= KEY_PACKAGE_MAX:
            raise InputError(f"a key package must be 1 to {KEY_PACKAGE_MAX} bytes")
        return cls(data)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyPackage is immutable")

    def __len__(self) -> int:
        return len(self._data)

    def reveal(self) -> bytes:
        """The bytes. Call only to write them where the user asked (a file, an export)."""
        return self._data

    def to_base64(self) -> str:
        """The base64 form (RFC 4648, padded) exports hold. This reveals the package."""
        import base64

        return base64.b64encode(self._data).decode("ascii")

    def __repr__(self) -> str:
        return "KeyPackage(hidden)"

    def __str__(self) -> str:
        return "<key package hidden>"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyPackage):
            return NotImplemented
        return hmac.compare_digest(self._data, other._data)

    def __hash__(self) -> int:
        return hash(self._data)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a KeyPackage is not serialised implicitly")


# Volume types as Microsoft Graph names them; AD does not record one.
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
