"""The serialised form of a key: what `find --format json|csv` writes and the file source reads.

Field names are a contract with runbooks and with old exports: add fields, never rename them.
``export --key-packages`` adds one field after KEY_FIELDS, ``key_package``: the package in
base64 (RFC 4648, padded), null in JSON and empty in CSV when the key has none. Without that
option, and in `find` output, the field is absent; records without it read back as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from json.encoder import encode_basestring  # what ensure_ascii=False encodes strings with
from typing import Final

from bitkey_dir.core.display import no_formula, safe_cell
from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KeyId, KeyPackage, RecoveryKey, RecoveryPassword, shown

KEY_FIELDS: Final = (
    "source",
    "computer",
    "key_id",
    "recovery_password",
    "created",
    "volume_type",
    "volume_id",
    "device_id",
    "location",
    "deleted",
)

KEY_PACKAGE_FIELD: Final = "key_package"
# What `export --key-packages` writes: KEY_FIELDS, then the key package.
PACKAGE_FIELDS: Final = (*KEY_FIELDS, KEY_PACKAGE_FIELD)

Record = dict[str, str | bool | None]


def csv_line(values: Iterable[object]) -> str:
    r"""One CSV row (RFC 4180 quoting, LF line ends), quoting CR as well as LF.

    The csv module leaves a bare CR unquoted when the line end is LF, and a name holding one
    would split its row in two when read back.

    >>> csv_line(["PC,01", 'a"b', None, "c\rd", 3])
    '"PC,01","a""b",,"c\rd",3\n'
    """
    return ",".join(_csv_cell(value) for value in values) + "\n"


# What keyfiles.decode() takes for binary data: a few in a name would make a whole CSV
# file unreadable, so in CSV they become U+FFFD (JSON escapes them and keeps them).
_CSV_UNSAFE: Final = re.compile(r"[\x00-\x08\x0e-\x19\x1b-\x1f]")


def _csv_cell(value: object) -> str:
    text = safe_cell(_CSV_UNSAFE.sub("\ufffd", "" if value is None else str(value)))
    if any(char in text for char in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


# Fields whose text comes from a directory or a file: in CSV they never start a formula.
DATA_TEXT_FIELDS: Final = (
    "source",
    "computer",
    "volume_type",
    "volume_id",
    "device_id",
    "location",
)


def key_csv_row(key: RecoveryKey, *, key_package: bool = False) -> str:
    """A key as a CSV row of KEY_FIELDS (PACKAGE_FIELDS with ``key_package``): this reveals
    the password and the package, so only output calls it."""
    record = to_record(key, key_package=key_package)
    record["deleted"] = "true" if key.deleted else "false"
    # base64 may start with "+", which a spreadsheet would take for a formula.
    for name in (*DATA_TEXT_FIELDS, KEY_PACKAGE_FIELD) if key_package else DATA_TEXT_FIELDS:
        value = record[name]
        if isinstance(value, str):
            record[name] = no_formula(value)
    return csv_line(record[name] for name in (PACKAGE_FIELDS if key_package else KEY_FIELDS))


def to_record(key: RecoveryKey, *, key_package: bool = False) -> Record:
    """The key as JSON-ready values (with its key package in base64 when ``key_package``);
    this reveals the password, so only output calls it."""
    record: Record = {
        "source": key.source,
        "computer": key.computer,
        "key_id": str(key.key_id),
        "recovery_password": key.recovery_password.reveal() if key.recovery_password else None,
        "created": key.created.isoformat() if key.created else None,
        "volume_type": key.volume_type,
        "volume_id": key.volume_id,
        "device_id": key.device_id,
        "location": key.location,
        "deleted": key.deleted,
    }
    if key_package:
        record[KEY_PACKAGE_FIELD] = key.key_package.to_base64() if key.key_package else None
    return record


def key_json(key: RecoveryKey, *, key_package: bool = False) -> str:
    """``json.dumps(to_record(key), ensure_ascii=False)``, written out: an export writes one per
    key, and this takes a third of the time. This reveals the password (and the key package
    with ``key_package``): only output calls it."""
    password = f'"{key.recovery_password.reveal()}"' if key.recovery_password else "null"
    created = f'"{key.created.isoformat()}"' if key.created else "null"  # only ASCII in it
    package = ""
    if key_package:
        sealed = f'"{key.key_package.to_base64()}"' if key.key_package else "null"
        package = f', "{KEY_PACKAGE_FIELD}": {sealed}'
    # The texts inline rather than through _json_text: seven calls a key, at 14,000 keys.
    text = encode_basestring
    computer, volume_type, volume_id = key.computer, key.volume_type, key.volume_id
    device_id, location = key.device_id, key.location
    return (
        f'{{"source": {text(key.source)}, '
        f'"computer": {"null" if computer is None else text(computer)}, '
        f'"key_id": "{key.key_id}", "recovery_password": {password}, "created": {created}, '
        f'"volume_type": {"null" if volume_type is None else text(volume_type)}, '
        f'"volume_id": {"null" if volume_id is None else text(volume_id)}, '
        f'"device_id": {"null" if device_id is None else text(device_id)}, '
        f'"location": {"null" if location is None else text(location)}, '
        f'"deleted": {"true" if key.deleted else "false"}{package}}}'
    )


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


class RecordProblem(InputError):
    """A record that cannot become a key; the message never contains the password."""


def _required_text(record: dict[str, object], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordProblem(f"field {name} is not a string")
    return value


_FALSE: Final = ("", "false", "0", "no")
_TRUE: Final = ("true", "1", "yes")


def from_record(record: dict[str, object], source: str) -> tuple[RecoveryKey, list[str]]:
    """A key read back from our own output, plus notes about fields that had to be dropped.

    A missing Key ID or a damaged password raises :class:`RecordProblem`; bad metadata (a
    number where a name belongs, a date without an offset) only drops that field, because
    losing a key over its metadata would be worse.
    """
    raw_id = _required_text(record, "key_id")
    if raw_id is None:
        raise RecordProblem("no key_id")
    try:
        key_id = KeyId.parse(raw_id)
    except InputError:
        raise RecordProblem(f"key_id {shown(raw_id)} is not a Key ID") from None
    if not key_id.is_full:
        raise RecordProblem(f"key_id {key_id} is not a full GUID")
    raw_password = _required_text(record, "recovery_password")
    password = None
    if raw_password is not None:
        try:
            password = RecoveryPassword.parse(raw_password)
        except InputError as exc:
            raise RecordProblem(f"Key ID {key_id}: damaged recovery password ({exc})") from None
    notes: list[str] = []

    def text(name: str) -> str | None:
        value = record.get(name)
        if value is None or value == "" or isinstance(value, str):
            return value or None
        notes.append(f"Key ID {key_id}: ignored {name} (not a string)")
        return None

    key = RecoveryKey(
        source=source,
        key_id=key_id,
        recovery_password=password,
        computer=text("computer"),
        created=_created(text("created"), key_id, notes),
        volume_type=text("volume_type"),
        volume_id=text("volume_id"),
        device_id=text("device_id"),
        location=text("location"),
        deleted=_deleted(record.get("deleted"), key_id, notes),
        key_package=_key_package(record.get(KEY_PACKAGE_FIELD), key_id, notes),
    )
    return key, notes


def _key_package(value: object, key_id: KeyId, notes: list[str]) -> KeyPackage | None:
    """The base64 key package of an export made with --key-packages; a damaged one is
    dropped with a note (never quoted: it is as secret as the password)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        notes.append(f"Key ID {key_id}: ignored key_package (not a string)")
        return None
    try:
        return KeyPackage.from_base64(value)
    except InputError as exc:
        notes.append(f"Key ID {key_id}: ignored key_package ({exc.message})")
        return None


def _created(value: str | None, key_id: KeyId, notes: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        created = datetime.fromisoformat(value)
    except ValueError:
        notes.append(f"Key ID {key_id}: ignored created {shown(value)} (not ISO 8601)")
        return None
    if created.utcoffset() is None:
        notes.append(f"Key ID {key_id}: ignored created {shown(value)} (no UTC offset)")
        return None
    return created


def _deleted(value: object, key_id: KeyId, notes: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, str) and value.strip().lower() in _FALSE):
        return False
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    notes.append(f"Key ID {key_id}: ignored deleted (not true or false)")
    return False
