"""LDAP filters for recovery objects and computers, with every user-typed value escaped.

Pure code (no ldap3), cheap to import and tested with hostile input.
"""

from __future__ import annotations

from typing import Final

from bitkey_dir.core.model import ComputerName, KeyId

RECOVERY_CLASS: Final = "msFVE-RecoveryInformation"
_FILTER_SPECIALS: Final = {"\\": r"\5c", "*": r"\2a", "(": r"\28", ")": r"\29", "\x00": r"\00"}


def escape_filter_value(text: str) -> str:
    r"""Escape a literal for an LDAP filter (RFC 4515); every character stays literal.

    >>> escape_filter_value("PC(01)*\\")
    'PC\\2801\\29\\2a\\5c'
    """
    return "".join(_FILTER_SPECIALS.get(char, char) for char in text)


def wildcard_filter_value(text: str) -> str:
    r"""Escape a user's pattern: ``*`` stays a wildcard, everything else is literal.

    >>> wildcard_filter_value("PC(0*")
    'PC\\280*'
    """
    return "*".join(escape_filter_value(part) for part in text.split("*"))


def escape_filter_bytes(value: bytes) -> str:
    r"""Bytes as an LDAP filter value: every byte as ``\xx``.

    >>> escape_filter_bytes(bytes([0xE1, 0xA4, 0x00]))
    '\\e1\\a4\\00'
    """
    return "".join(f"\\{byte:02x}" for byte in value)


def guid_filter_bytes(key_id: KeyId) -> str:
    """AD stores GUIDs mixed-endian (MS-DTYP 2.3.4.2): Python's ``UUID.bytes_le``."""
    return escape_filter_bytes(key_id.uuid.bytes_le)


def key_id_filter(key_id: KeyId) -> str:
    """One indexed equality match for a full ID; a name wildcard for a prefix.

    The first 8 digits are stored byte-reversed in msFVE-RecoveryGuid, so a prefix can only
    be matched on the object's name, which carries the GUID as text: ``…{063EA4E1-…}``.
    """
    if key_id.is_full:
        return f"(&(objectClass={RECOVERY_CLASS})(msFVE-RecoveryGuid={guid_filter_bytes(key_id)}))"
    return f"(&(objectClass={RECOVERY_CLASS})(name=*{{{escape_filter_value(str(key_id))}*))"


def computer_filter(name: ComputerName, *, deleted: bool = False) -> str:
    """Computers whose cn, sAMAccountName (with its $) or DNS name match the typed name.

    Tombstones of deleted computers lose objectCategory but keep objectClass.
    """
    value = wildcard_filter_value(name.text)
    account = value if name.text.endswith("*") else value + "$"
    alternatives = [f"(cn={value})", f"(sAMAccountName={account})", f"(dNSHostName={value})"]
    if "." not in name.text:
        alternatives.append(f"(dNSHostName={value}.*)")
    kind = "(objectClass=computer)" if deleted else "(objectCategory=computer)"
    return f"(&{kind}(|{''.join(alternatives)}))"
