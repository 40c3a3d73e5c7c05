"""Parse the files people keep recovery keys in. Pure functions over bytes and text.

Handled: the text files Windows saves ("BitLocker Recovery Key <GUID>.TXT", Windows 7 and 8+
layouts, in any language), saved ``manage-bde -protectors -get`` output, notes that pair a GUID
with a password, and bitkey-dir's own JSON and CSV output. Files are recognised by content, not
by name, because users rename and re-encode them.

Text formats share one rule, which also holds for localised Windows: a recovery password
belongs to the nearest Key ID (a full GUID) before it, with no other GUID in between. Other
protectors (TPM, startup keys) have IDs but no password, so they pair with nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from bitkey_dir.core.display import without_formula_guard
from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KeyId, RecoveryKey, RecoveryPassword, check_password
from bitkey_dir.core.records import (
    DATA_TEXT_FIELDS,
    KEY_FIELDS,
    KEY_PACKAGE_FIELD,
    RecordProblem,
    from_record,
)


class NotText(Exception):
    """The bytes are not a text file (binary data, or broken UTF-16)."""


Kind = Literal[
    "windows-key-file",  # as Windows saves it
    "manage-bde",  # `manage-bde -protectors -get` output
    "text",  # a note pairing a Key ID and a password
    "json",  # bitkey-dir's own output
    "csv",
    "broken-json",  # meant to be an export, but damaged
    "unrelated",  # holds no key, nor looks as if it should
]


@dataclass
class Parsed:
    """What one file held: keys, keys whose password is damaged, and file-level problems."""

    kind: Kind
    keys: list[RecoveryKey] = field(default_factory=list)
    damaged: list[tuple[RecoveryKey, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_CONTROL_LIMIT: Final = 0.01
# Control characters that text files do not contain (tab, CR, LF, FF, VT and the DOS
# end-of-file marker \x1a are allowed).
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0e-\x19\x1b-\x1f]")


def decode(data: bytes) -> str:
    """Text from bytes in the encodings Windows and editors write; raise NotText for binary.

    >>> decode("Recovery Key".encode("utf-16"))
    'Recovery Key'
    >>> decode(b"caf\\xe9")  # Windows-1252, as an old editor saves it
    'café'
    """
    if data.startswith(codecs.BOM_UTF8):
        text = data[3:].decode("utf-8", errors="replace")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16-le" if data.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"
        try:
            text = data[2:].decode(encoding)
        except UnicodeDecodeError:
            raise NotText("broken UTF-16 text") from None
    elif b"\x00" in data:
        text = _decode_utf16_without_bom(data)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    if len(_CONTROLS.findall(text)) > max(2, len(text) * _CONTROL_LIMIT):
        raise NotText("binary data")
    return text


def _decode_utf16_without_bom(data: bytes) -> str:
    # UTF-16 text in Latin script has a zero in every other byte; binary data does not.
    if len(data) % 2:
        raise NotText("binary data")
    even_zeros = data[0::2].count(0)
    odd_zeros = data[1::2].count(0)
    half = len(data) // 2
    if odd_zeros > 0.9 * half and even_zeros < 0.1 * half:
        encoding = "utf-16-le"
    elif even_zeros > 0.9 * half and odd_zeros < 0.1 * half:
        encoding = "utf-16-be"
    else:
        raise NotText("binary data")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise NotText("broken UTF-16 text") from None


_GUID: Final = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_TOKENS: Final = re.compile(
    rf"""
      (?P<guid>(?<![0-9A-Fa-f-]){_GUID}(?![0-9A-Fa-f-]))
    | (?P<password>(?<![0-9-])[0-9]{{6}}(?:[-\x20][0-9]{{6}}){{7}}(?![0-9-]))
    | (?P<mangled>(?<![0-9-])[0-9]{{3,9}}(?:[-\x20][0-9]{{3,9}}){{5,9}}(?![0-9-]))
    | ^[^\S\n]*\S+[^\S\n]+(?P<drive>[A-Za-z]:)[^\S\n]*\[(?P<label>[^\]\n]*)\][^\S\n]*$
    """,
    re.VERBOSE | re.MULTILINE,
)
# Every Windows key file, in any language, opens with a title that starts with "BitLocker".
_WINDOWS_KEY_FILE: Final = re.compile(r"\A\W*BitLocker", re.IGNORECASE)
_MANAGE_BDE: Final = re.compile(
    r"Key Protectors|Numerical Password|Configuration Tool|manage-bde", re.IGNORECASE
)
# Windows 7 files repeat the first 16 digits on their own line; they must agree with the full ID.
_WIN7_SHORT_ID: Final = re.compile(
    r"^[^\n:]*:\s*([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{2})\s*$", re.MULTILINE
)


def _kind(text: str) -> Kind:
    if _MANAGE_BDE.search(text):
        return "manage-bde"
    if _WINDOWS_KEY_FILE.search(text):
        return "windows-key-file"
    return "text"


def parse_text(text: str) -> Parsed:
    """Keys in a Windows recovery key file, manage-bde output, or a note pairing ID and key."""
    parsed = Parsed(_kind(text))
    pending: KeyId | None = None
    volume: str | None = None
    orphan_passwords = 0
    for token in _TOKENS.finditer(text):
        if token["guid"]:
            pending = KeyId.parse(token["guid"])
        elif token["drive"]:
            volume = f"{token['drive'].upper()} [{token['label'].strip()}]"
            pending = None
        elif pending is None:
            orphan_passwords += 1
        else:
            location = f"volume {volume}" if volume else None  # the file source adds the path
            _add_pair(parsed, pending, token["password"] or token["mangled"], location)
            pending = None
    _check_windows7_short_ids(text, parsed)
    if not parsed.keys and not parsed.damaged:
        _explain_nothing_found(parsed, orphan_passwords)
    return parsed


def _add_pair(parsed: Parsed, key_id: KeyId, typed: str, location: str | None) -> None:
    try:
        password = RecoveryPassword.parse(typed)
    except InputError:
        damaged = RecoveryKey("", key_id, None, location=location)
        problem = check_password(typed).problem
        parsed.damaged.append((damaged, f"damaged recovery password: {problem}"))
    else:
        parsed.keys.append(RecoveryKey("", key_id, password, location=location))


def _explain_nothing_found(parsed: Parsed, orphan_passwords: int) -> None:
    """A key file without a usable key is worth a warning; an unrelated text file is not."""
    looks = {
        "manage-bde": "manage-bde output",
        "windows-key-file": "a recovery key file",
        "text": "a recovery key note",
    }[parsed.kind]
    if orphan_passwords:
        parsed.problems.append(f"looks like {looks} but has a recovery password without a Key ID")
    elif parsed.kind == "windows-key-file":
        parsed.problems.append(f"looks like {looks} but holds no Key ID with a recovery password")
    else:
        # Includes manage-bde output of a volume protected without a numerical password.
        parsed.kind = "unrelated"


def _check_windows7_short_ids(text: str, parsed: Parsed) -> None:
    if not parsed.keys:
        return
    full_ids = {str(key.key_id) for key in parsed.keys}
    for match in _WIN7_SHORT_ID.finditer(text):
        short = match.group(1).upper()
        if not any(full.startswith(short) for full in full_ids):
            parsed.problems.append(
                f"the short identification {short} does not match the full Key ID; "
                "the file was edited: check the key with the user"
            )


_EXPORT_MARK: Final = re.compile(r'"(?:keys|key_id|recovery_password)"\s*:')


def parse_json(text: str) -> Parsed:
    """bitkey-dir's JSON output: ``{"keys": [...]}`` or a bare list of key records."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Parsed("broken-json", problems=[f"not valid JSON ({exc.msg})"])
    except (ValueError, RecursionError):  # integers of thousands of digits, deep nesting
        problem = "not valid JSON (a number too long or nesting too deep)"
        return Parsed("broken-json", problems=[problem])
    records = data.get("keys") if isinstance(data, dict) else data
    if not isinstance(records, list):
        return Parsed("unrelated")
    parsed = Parsed("json")
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            parsed.problems.append(f"key {number}: not a JSON object")
            continue
        _add_record(parsed, record, f"key {number}")
    return parsed


def looks_like_csv(text: str) -> bool:
    header = text.split("\n", 1)[0].strip().lstrip("\ufeff")
    columns = {column.strip().strip('"') for column in header.split(",")}
    return {"key_id", "recovery_password"} <= columns


def parse_csv(text: str) -> Parsed:
    """bitkey-dir's CSV output: a header row of field names, then one key per row."""
    parsed = Parsed("csv")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        for row in reader:
            line = f"line {reader.line_num}"
            if None in row:
                parsed.problems.append(f"{line}: more values than columns")
                continue
            # as key_csv_row guarded them against formulas
            for name in (*DATA_TEXT_FIELDS, KEY_PACKAGE_FIELD):
                value = row.get(name)
                if value:
                    row[name] = without_formula_guard(value)
            _add_record(parsed, dict(row), line)
    except csv.Error as exc:
        parsed.problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
    return parsed


def _add_record(parsed: Parsed, record: dict[str, object], where: str) -> None:
    try:
        key, notes = from_record(record, source="")
    except RecordProblem as exc:
        raw_id = record.get("key_id")
        damaged_id = _full_key_id(raw_id) if isinstance(raw_id, str) else None
        if damaged_id is not None and "recovery password" in exc.message:
            damaged = RecoveryKey(
                "", damaged_id, None, computer=_optional_text(record.get("computer"))
            )
            parsed.damaged.append((damaged, exc.message))
        else:
            parsed.problems.append(f"{where}: {exc.message}")
        return
    parsed.keys.append(key)
    parsed.problems.extend(f"{where}: {note}" for note in notes)


def _full_key_id(text: str) -> KeyId | None:
    try:
        key_id = KeyId.parse(text)
    except InputError:
        return None
    return key_id if key_id.is_full else None


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_bytes(data: bytes, wanted: re.Pattern[str] | None = None) -> Parsed:
    """Recognise and parse one file's content; raises NotText for binary data.

    With ``wanted``, text in which it does not occur is not parsed (kind "unrelated"): a
    lookup by Key ID skips the files that cannot hold that ID, and their problems with them.
    """
    text = decode(data)
    if wanted is not None and wanted.search(text) is None:
        return Parsed("unrelated")
    start = text.lstrip("\ufeff \t\r\n")[:1]
    if start in ("{", "["):
        parsed = parse_json(text)
        if parsed.kind == "json":
            return parsed
        # Not our JSON: a note that opens with "{GUID}" or "[Laptop]" may still hold a key,
        # and desktop.ini files open with "[" too.
        as_text = parse_text(text)
        if (
            parsed.kind == "broken-json"
            and as_text.kind == "unrelated"
            and _EXPORT_MARK.search(text)
        ):
            return parsed  # a damaged export: worth its "not valid JSON" warning
        return as_text
    if looks_like_csv(text):
        return parse_csv(text)
    return parse_text(text)


__all__ = ["KEY_FIELDS", "NotText", "Parsed", "decode", "parse_bytes"]
