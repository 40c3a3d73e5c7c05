"""Names Active Directory gives things: DNs, recovery object names and GUIDs in AD's byte order.

Pure code (no ldap3), cheap to import and tested with hostile input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KeyId


def key_id_from_bytes(value: bytes | None) -> KeyId | None:
    """msFVE-RecoveryGuid's 16 bytes as a Key ID, without a round trip through text."""
    if value is None or len(value) != 16:
        return None
    return KeyId.from_hex(_guid_hex(value))


def guid_from_bytes(value: bytes) -> str | None:
    """The canonical upper-case GUID from AD's 16 bytes, or None for anything else: the same
    dashed form as a Key ID's."""
    if len(value) != 16:
        return None
    h = _guid_hex(value)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _guid_hex(value: bytes) -> str:
    # What uuid.UUID(bytes_le=value).hex.upper() gives, at a third of the cost: the first
    # three fields are little-endian.
    return (value[3::-1] + value[5:3:-1] + value[7:5:-1] + value[8:]).hex().upper()


_DN_ESCAPE: Final = re.compile(r"\\([0-9A-Fa-f]{2}|.)", re.DOTALL)


def _split_unescaped(text: str, separator: str) -> list[str]:
    r"""Split at separators that are not escaped; escapes stay as they are.

    >>> _split_unescaped(r"CN=a\,b,OU=c\\,DC=d", ",")
    ['CN=a\\,b', 'OU=c\\\\', 'DC=d']
    """
    if "\\" not in text:
        return text.split(separator)  # the common case, and by far the fastest
    if separator != "+" and text.count("\\") == text.count("\\+"):
        # Every backslash escapes a "+" (a recovery object's name: "…T12:00:00\+05:30{…}"),
        # so none escapes a separator: the next most common case, as fast.
        return text.split(separator)
    # A separator is escaped when an odd run of backslashes precedes it: RFC 4514's
    # backslash escapes the one character after it or starts two hex digits.
    parts, start, search = [], 0, 0
    while True:
        at = text.find(separator, search)
        if at < 0:
            parts.append(text[start:])
            return parts
        run = at
        while run > start and text[run - 1] == "\\":
            run -= 1
        search = at + 1
        if (at - run) % 2 == 0:
            parts.append(text[start:at])
            start = search


def unescape_dn_value(value: str) -> str:
    r"""An RDN value without RFC 4514 escapes (``\+`` → ``+``, ``\0A`` → newline).

    >>> unescape_dn_value(r"2024-04-05T12:00:00\+05:30{X}")
    '2024-04-05T12:00:00+05:30{X}'
    """

    if "\\" not in value:
        return value
    if value.isascii() and value.count("\\") == value.count("\\+"):
        return value.replace("\\+", "+")  # a recovery object's name: "…T12:00:00\+05:30{…}"

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        return chr(int(code, 16)) if len(code) == 2 else code

    # Hex escapes encode UTF-8 bytes; decode them as such when they do not form plain ASCII.
    raw = _DN_ESCAPE.sub(replace, value)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def split_dn(dn: str) -> list[tuple[str, str]]:
    """``[(attribute, unescaped value), ...]`` from the leaf up; multi-valued RDNs keep their
    first value, which is all this tool needs.

    >>> split_dn(r"CN=PC\\, 1,OU=Corp,DC=x")
    [('CN', 'PC, 1'), ('OU', 'Corp'), ('DC', 'x')]
    """
    rdns = []
    for rdn in _split_unescaped(dn, ","):
        first = _split_unescaped(rdn, "+")[0]
        attribute, _, value = first.partition("=")
        rdns.append((attribute.strip(), unescape_dn_value(value.strip())))
    return rdns


def leaf_value(dn: str) -> str:
    r"""The unescaped value of a DN's first RDN: what ``split_dn(dn)[0][1]`` is, cheaper.

    >>> leaf_value(r"CN=PC\, 1,OU=Corp,DC=x")
    'PC, 1'
    """
    return rdn_value(_split_unescaped(dn, ",")[0])


def rdn_value(rdn: str) -> str:
    """One RDN's (first) value, unescaped."""
    if "\\" not in rdn and "+" not in rdn:
        return rdn.partition("=")[2].strip()
    if rdn.isascii() and rdn.count("+") == rdn.count("\\") == rdn.count("\\+"):
        # Every "+" escaped and nothing else escaped (a recovery object's name): one value,
        # what unescape_dn_value gives it.
        return rdn.partition("=")[2].strip().replace("\\+", "+")
    first = _split_unescaped(rdn, "+")[0]
    return unescape_dn_value(first.partition("=")[2].strip())


def dn_levels(dn: str) -> list[str]:
    r"""The RDNs of a DN from the leaf up, still escaped: ``",".join(levels[n:])`` is the DN
    ``n`` levels up.

    >>> dn_levels(r"CN=a\,b,OU=c,DC=d")
    ['CN=a\\,b', 'OU=c', 'DC=d']
    """
    return _split_unescaped(dn, ",")


def dn_head(dn: str) -> tuple[str, str | None, str]:
    r"""A DN's first RDN, its second (None when it has one RDN) and the DN above those two,
    still escaped: ``dn_levels(dn)[0]``, ``[1]`` and ``",".join(dn_levels(dn)[2:])``, without
    splitting the whole DN (a key read per recovery object).

    >>> dn_head(r"CN=2024\+05:30{A},CN=PC\,1,OU=Corp,DC=x")
    ('CN=2024\\+05:30{A}', 'CN=PC\\,1', 'OU=Corp,DC=x')
    """
    if "\\" not in dn or dn.count("\\") == dn.count("\\+"):
        parts = dn.split(",", 2)  # no escaped separator: _split_unescaped's two fast cases
    else:
        levels = _split_unescaped(dn, ",")
        parts = [*levels[:2], ",".join(levels[2:])] if len(levels) > 2 else levels
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return parts[0], parts[1] if len(parts) > 1 else None, ""


def parent_dn(dn: str) -> str:
    """The DN one level up, keeping the server's escaping.

    >>> parent_dn(r"CN=2024\\+05:30{A},CN=PC1,OU=Corp,DC=x")
    'CN=PC1,OU=Corp,DC=x'
    """
    parts = _split_unescaped(dn, ",")
    return ",".join(parts[1:])


def deleted_name(value: str) -> str:
    """A tombstone's name without AD's ``\\nDEL:<guid>`` suffix."""
    return value.split("\nDEL:", 1)[0]


@dataclass(frozen=True)
class RecoveryName:
    """What a recovery object's name says: when it was created, and its Key ID."""

    created: datetime | None
    key_id: KeyId | None


_RECOVERY_NAME: Final = re.compile(r"^(?P<created>[^{]*)\{(?P<guid>[0-9A-Fa-f-]{36})\}")
_NAME_GUID: Final = re.compile(r"[0-9A-Fa-f-]{36}\}")  # what follows that "{"


def parse_recovery_name(name: str) -> RecoveryName:
    """``2005-09-30T17:08:23-08:00{063EA4E1-…}`` → its date (with its UTC offset) and ID.

    >>> parse_recovery_name("2005-09-30T17:08:23-08:00{063EA4E1-220C-4293-BA01-4754620A96E7}")
    RecoveryName(created=datetime.datetime(2005, 9, 30, 17, 8, 23, tzinfo=...), key_id=KeyId(...))
    """
    match = _RECOVERY_NAME.match(deleted_name(name))
    if match is None:
        return RecoveryName(None, None)
    try:
        key_id: KeyId | None = KeyId.parse(match["guid"])
    except InputError:
        key_id = None
    return RecoveryName(_created(match), key_id)


def recovery_created(name: str) -> datetime | None:
    """Only the date of a recovery object's name: what the export and audit loops need."""
    if "\n" in name:
        name = deleted_name(name)
    # _RECOVERY_NAME's match, without its groups: the date is what comes before the first "{".
    at = name.find("{")
    if at < 0 or _NAME_GUID.match(name, at + 1) is None:
        return None
    try:
        created = datetime.fromisoformat(name[:at].strip())
    except ValueError:
        return None
    return created if created.utcoffset() is not None else None


def _created(match: re.Match[str]) -> datetime | None:
    try:
        created = datetime.fromisoformat(match["created"].strip())
    except ValueError:
        return None
    # A name without an offset cannot be placed in time.
    return created if created.utcoffset() is not None else None
