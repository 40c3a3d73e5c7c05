"""The serialised form of a key: what `find --format json|csv` writes and the file source reads.

Field names are a contract with runbooks and with old exports: add fields, never rename them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from bitkey_dir.errors import InputError
from bitkey_dir.model import KeyId, RecoveryKey, RecoveryPassword, shown

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

Record = dict[str, str | bool | None]


def to_record(key: RecoveryKey) -> Record:
    """The key as JSON-ready values; this reveals the password, so only output calls it."""
    return {
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


class RecordProblem(InputError):
    """A record that cannot become a key; the message never contains the password."""


def _text(record: dict[str, object], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordProblem(f"field {name} is not a string")
    return value


def _deleted(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "false", "0")):
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "1"):
        return True
    raise RecordProblem("field deleted is not true or false")


def from_record(record: dict[str, object], source: str) -> tuple[RecoveryKey, list[str]]:
    """A key read back from our own output, plus notes about fields that had to be dropped.

    A damaged password raises :class:`RecordProblem`; bad metadata (a date without an offset)
    only drops that field, because losing a key over its metadata would be worse.
    """
    raw_id = _text(record, "key_id")
    if raw_id is None:
        raise RecordProblem("no key_id")
    try:
        key_id = KeyId.parse(raw_id)
    except InputError:
        raise RecordProblem(f"key_id {shown(raw_id)} is not a Key ID") from None
    if not key_id.is_full:
        raise RecordProblem(f"key_id {key_id} is not a full GUID")
    raw_password = _text(record, "recovery_password")
    password = None
    if raw_password is not None:
        try:
            password = RecoveryPassword.parse(raw_password)
        except InputError as exc:
            raise RecordProblem(f"Key ID {key_id}: damaged recovery password ({exc})") from None
    notes: list[str] = []
    created = None
    raw_created = _text(record, "created")
    if raw_created is not None:
        try:
            created = datetime.fromisoformat(raw_created)
        except ValueError:
            notes.append(f"Key ID {key_id}: ignored created {shown(raw_created)} (not ISO 8601)")
        else:
            if created.utcoffset() is None:
                notes.append(f"Key ID {key_id}: ignored created {shown(raw_created)} (no offset)")
                created = None
    key = RecoveryKey(
        source=source,
        key_id=key_id,
        recovery_password=password,
        computer=_text(record, "computer"),
        created=created,
        volume_type=_text(record, "volume_type"),
        volume_id=_text(record, "volume_id"),
        device_id=_text(record, "device_id"),
        location=_text(record, "location"),
        deleted=_deleted(record.get("deleted")),
    )
    return key, notes
