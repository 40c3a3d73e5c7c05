"""Recovery passwords and key packages: checked when parsed, hidden from repr() and str().

Pure code, no I/O. A recovery password is 8 groups of 6 digits, each a multiple of 11 below
720896; one that fails that check is refused, never taken as valid. Both classes hide their
value so that a key can be logged, put in an exception or a container, and printed without
leaking: only :meth:`reveal` gives it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import AnyStr, Final

from bitkey_dir.core.errors import InputError

_PASSWORD_GROUPS: Final = 8
_GROUP_DIGITS: Final = 6
# ASCII digits only: str.isdigit() would accept Arabic-Indic or full-width digits.
_PASSWORD_SHAPE: Final = re.compile(r"[0-9]{6}(?:(?:-| +|)[0-9]{6}){7}")
_GROUP_LIMIT: Final = 11 * 65536
# The same language as [0-9]{6}(?:-[0-9]{6}){7}, which the regex engine matches at half the speed.
_CANONICAL_PASSWORD: Final = re.compile(r"(?:[0-9]{6}-){7}[0-9]{6}")
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


def _same(a: AnyStr, b: AnyStr) -> bool:
    """Compared in constant time. hmac is imported here, when two secrets are compared:
    it loads OpenSSL's digests (_hashlib), which most runs never use."""
    import hmac

    return hmac.compare_digest(a, b)


class RecoveryPassword:
    """A valid 48-digit recovery password. Hides its digits unless :meth:`reveal` is called.

    >>> p = RecoveryPassword.parse("531058 303050 716078 383614 460922 106975 083446 139161")
    >>> p, str(p), [p]
    (RecoveryPassword(hidden), '<recovery password hidden>', [RecoveryPassword(hidden)])
    >>> p.reveal()
    '531058-303050-716078-383614-460922-106975-083446-139161'
    """

    __slots__ = ("_text",)
    _text: str  # the canonical dashed form: exports write one per key, so it is kept ready

    def __init__(self, digits: str) -> None:
        # Only parse() builds these, so the invariant "48 digits, every group valid" holds.
        d = digits
        text = f"{d[:6]}-{d[6:12]}-{d[12:18]}-{d[18:24]}-{d[24:30]}-{d[30:36]}-{d[36:42]}-{d[42:]}"
        object.__setattr__(self, "_text", text)

    @classmethod
    def parse(cls, text: str) -> RecoveryPassword:
        if _CANONICAL_PASSWORD.fullmatch(text) is not None:
            # The form directories store, checked quickly (_groups_valid, inline: an export
            # checks one password per key) and kept as it is.
            for value in map(int, text.split("-")):
                if value % 11 or value >= _GROUP_LIMIT:
                    break
            else:
                password = object.__new__(cls)
                _set_text(password, text)
                return password
        check = check_password(text)
        if not check.valid:
            raise InputError(f"not a valid recovery password: {check.problem}")
        return cls(_NOT_DIGITS.sub("", text))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RecoveryPassword is immutable")

    def groups(self) -> tuple[str, ...]:
        return tuple(self._text.split("-"))

    def reveal(self) -> str:
        """The canonical dashed form. Call only to put the password on the user's screen."""
        return self._text

    def __repr__(self) -> str:
        return "RecoveryPassword(hidden)"

    def __str__(self) -> str:
        return "<recovery password hidden>"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecoveryPassword):
            return NotImplemented
        return _same(self._text, other._text)

    def __hash__(self) -> int:
        return hash(self._text)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a RecoveryPassword is not serialised implicitly")


_set_text = vars(RecoveryPassword)["_text"].__set__  # found once, not by name per key

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
        return _same(self._data, other._data)

    def __hash__(self) -> int:
        return hash(self._data)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a KeyPackage is not serialised implicitly")


# Volume types as Microsoft Graph names them; AD does not record one.
