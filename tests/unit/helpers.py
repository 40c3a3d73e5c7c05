"""Shared helpers for the unit tests: sample keys, key file builders, strategies, leak checks.

Everything here is built from the formats in the reference notes, independently of the parsers
under test, so that a test compares the parser against a second opinion rather than itself.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLE_KEYS = EXAMPLES / "keys"


def example_key_files() -> list[Path]:
    """Every file below examples/keys, and the JSON and CSV exports anywhere in examples."""
    files = {path for path in EXAMPLE_KEYS.rglob("*") if path.is_file()}
    files |= {path for path in EXAMPLES.rglob("*") if path.suffix.lower() in (".json", ".csv")}
    return sorted(files)


# The valid example from the reference notes, and a second valid key built from 11 * k groups.
KEY_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
OTHER_KEY_ID = "C1ACC990-6424-450A-A36B-F9B3DDCB369D"
OTHER_PASSWORD = "000011-000022-000033-000044-000055-000066-000077-000088"
# Shares its first 8 hex digits with KEY_ID: a prefix search finds both.
SAME_PREFIX_KEY_ID = "063EA4E1-9D3A-4F5E-8B2C-ABCDEFABCDEF"
SAME_PREFIX_PASSWORD = "720885-000000-111111-222222-333333-444444-555555-666666"

MAX_GROUP_FACTOR = 65535  # a group is 11 * k with 0 <= k < 65536
GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
PASSWORD_TEXT = r"[0-9]{6}(?:-[0-9]{6}){7}"


def password_from(factors: Sequence[int], separator: str = "-") -> str:
    """A valid recovery password whose groups are 11 * factor."""
    assert len(factors) == 8
    return separator.join(f"{11 * k:06d}" for k in factors)


def group_ok(group: str) -> bool:
    """A second, independent statement of the group rule: 11 * k, 0 <= k < 65536."""
    value = int(group)
    return value % 11 == 0 and 0 <= value // 11 <= MAX_GROUP_FACTOR


factors = st.lists(st.integers(0, MAX_GROUP_FACTOR), min_size=8, max_size=8)
passwords = factors.map(password_from)


# ---------------------------------------------------------------------------------------------
# Key files as Windows and manage-bde write them.


def windows_key_file(key_id: str, password: str, *, newline: str = "\r\n") -> str:
    """The Windows 8+ "save to a file" layout."""
    lines = [
        "BitLocker Drive Encryption recovery key",
        "",
        "To verify that this is the correct recovery key, compare the start of the following "
        "identifier with the identifier value displayed on your PC.",
        "",
        "Identifier:",
        "",
        f"\t{key_id}",
        "",
        "If the above identifier matches the one displayed by your PC, then use the following "
        "key to unlock your drive.",
        "",
        "Recovery Key:",
        "",
        f"\t{password}",
        "",
        "If the above identifier doesn't match the one displayed by your PC, then this isn't "
        "the right key to unlock your drive.",
        "Try another recovery key, or refer to https://go.microsoft.com/fwlink/?LinkID=260589 "
        "for additional assistance.",
    ]
    return newline.join(lines) + newline


def windows7_key_file(
    key_id: str, password: str, *, short_id: str | None = None, newline: str = "\r\n"
) -> str:
    """The Windows 7 layout, which repeats the first 16 digits of the ID on their own line."""
    short = key_id[:16] if short_id is None else short_id
    lines = [
        "BitLocker Drive Encryption Recovery Key ",
        "",
        "The recovery key is used to recover the data on a BitLocker protected drive.",
        "",
        "To verify that this is the correct recovery key compare the identification with what "
        "is presented on the recovery screen.",
        "",
        f"Recovery key identification: {short}",
        f"Full recovery key identification: {key_id}",
        "",
        "BitLocker Recovery Key:",
        password,
        "",
    ]
    return newline.join(lines) + newline


Protector = tuple[str, str, str | None]  # (kind, key id, password or None)


def manage_bde_output(volumes: Sequence[tuple[str, str, Sequence[Protector]]]) -> str:
    """`manage-bde -protectors -get` output for each (drive, label, protectors)."""
    lines: list[str] = []
    for drive, label, protectors in volumes:
        lines += [
            "BitLocker Drive Encryption: Configuration Tool version 10.0.22621",
            "Copyright (C) 2013 Microsoft Corporation. All rights reserved.",
            "",
            f"Volume {drive} [{label}]",
            "All Key Protectors",
            "",
        ]
        for kind, key_id, password in protectors:
            lines += [f"    {kind}:", f"      ID: {{{key_id}}}"]
            if kind == "Numerical Password":
                assert password is not None
                lines += ["      Password:", f"        {password}"]
            elif kind == "TPM":
                lines += ["      PCR Validation Profile:", "        7, 11"]
            elif kind == "External Key":
                lines += ["      External Key File Name:", f"        {key_id}.BEK"]
            lines.append("")
    return "\r\n".join(lines) + "\r\n"


def utf16_le_bom(text: str) -> bytes:
    """How Windows saves key files: UTF-16 LE with a byte order mark."""
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


# ---------------------------------------------------------------------------------------------
# Leak checks.


def secret_forms(password: str) -> set[str]:
    """Every form in which a (possibly damaged) password could show up in a message."""
    digits = re.sub(r"[^0-9]", "", password)
    forms = {digits, *re.findall(r"[0-9]{5,}", password)}
    if len(digits) == 48:
        groups = [digits[i : i + 6] for i in range(0, 48, 6)]
        forms |= {"-".join(groups), " ".join(groups), *groups}
    return forms


def leaked(texts: Iterable[str], secrets: Iterable[str]) -> list[tuple[str, str]]:
    """(text, form) pairs where a text shows a secret or any 5+ digit part of it."""
    forms = set().union(*(secret_forms(s) for s in secrets))
    return [(text, form) for text in texts for form in forms if form in text]


def assert_no_password(texts: Iterable[str], secrets: Iterable[str]) -> None:
    found = leaked(list(texts), list(secrets))
    assert not found, f"recovery password digits in messages: {found}"


# ---------------------------------------------------------------------------------------------
# What people and spreadsheets must be shown instead of control and bidi characters: a second
# statement of the rule in bitkey_dir/core/display.py, written independently of it.

_C1_AND_BIDI = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_SEPARATORS = re.compile("[\u2028\u2029]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def csv_shown(text: str) -> str:
    """A CSV cell's text: C1 and bidi controls escaped (line breaks stay, inside quotes)."""
    return _C1_AND_BIDI.sub(lambda m: _escape(m.group()), text)


def terminal_shown(text: str) -> str:
    """Text as people must see it: every C0, C1, bidi and line-separator character escaped."""
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
    text = re.sub("[\x00-\x1f]", lambda m: named.get(m.group(), _escape(m.group())), text)
    text = _LINE_SEPARATORS.sub(lambda m: _escape(m.group()), text)
    return csv_shown(text)
