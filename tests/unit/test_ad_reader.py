"""The AD reader's keys: what a recovery object becomes, whatever its name and attributes.

Reader.key runs once per key of an export, so it takes shortcuts (RecoveryKey.checked, the
attributes read straight from the entry); these tests hold it to what the general code
(split_dn, RecoveryKey's own checks, to_record) makes of the same object.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.model import KeyId, RecoveryKey, RecoveryPassword
from bitkey_dir.core.records import key_json, to_record
from bitkey_dir.sources.ad.names import split_dn
from bitkey_dir.sources.ad.reader import Reader
from bitkey_dir.sources.ad.search import Entry

PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
GUID = uuid.UUID("063ea4e1-220c-4293-ba01-4754620a96e7")
READER = Reader("lab", page_size=1000, timeout=30)


def _escape(value: str) -> str:
    """RFC 4514 escaping, as a directory would send the value."""
    escaped = "".join("\\" + char if char in ',+"\\<>;=' else char for char in value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped


def _entry(dn: str, **attributes: list[bytes]) -> Entry:
    return Entry(dn, {name.lower(): values for name, values in attributes.items()})


def _read(entry: Entry) -> tuple[RecoveryKey | None, list[str]]:
    warnings: list[str] = []
    return READER.key(entry, warnings.append), warnings


def test_a_name_whose_guid_reads_only_as_a_prefix_is_skipped_with_a_warning() -> None:
    # No msFVE-RecoveryGuid, and "{…--…}" in the name parses as a 31-digit prefix: once a
    # ValueError out of RecoveryKey that ended the whole export.
    dn = "CN=2024-01-01T00:00:00\\+00:00{00000000--0000-0000-0000-00000000000},CN=PC1,DC=x"
    key, warnings = _read(_entry(dn, **{"msFVE-RecoveryPassword": [PASSWORD.encode()]}))
    assert key is None
    assert warnings == [f"{dn}: skipped, a recovery object without a readable Key ID"]


_names = st.text(st.sampled_from('ab Z0,+"\\<>;=#éÃ©{}'), min_size=1, max_size=12).filter(
    lambda name: name == name.strip()
)
_offsets = st.sampled_from([0, 60, 330, -300, -480])


@given(
    computer=_names,
    ou=_names,
    created=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)),
    offset=_offsets,
    key_guid=st.uuids(),
    volume=st.one_of(st.none(), st.uuids()),
    in_attribute=st.booleans(),
)
def test_keys_are_what_the_general_code_makes_of_the_object(
    computer: str,
    ou: str,
    created: datetime,
    offset: int,
    key_guid: uuid.UUID,
    volume: uuid.UUID | None,
    in_attribute: bool,
) -> None:
    when = created.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset)))
    name = f"{when.isoformat()}{{{str(key_guid).upper()}}}"
    dn = f"CN={_escape(name)},CN={_escape(computer)},OU={_escape(ou)},DC=corp,DC=example"
    attributes = {"msFVE-RecoveryPassword": [PASSWORD.encode()]}
    if in_attribute:
        attributes["msFVE-RecoveryGuid"] = [key_guid.bytes_le]
    if volume is not None:
        attributes["msFVE-VolumeGuid"] = [volume.bytes_le]
    key, warnings = _read(_entry(dn, **attributes))
    assert warnings == []
    expected = RecoveryKey(
        source="lab",
        key_id=KeyId.parse(str(key_guid)),
        recovery_password=RecoveryPassword.parse(PASSWORD),
        computer=split_dn(dn)[1][1],
        created=when,
        volume_id=str(volume).upper() if volume else None,
        location=f"OU={_escape(ou)},DC=corp,DC=example",
        deleted=False,
    )
    assert key == expected
    assert key is not None
    assert json.loads(key_json(key)) == to_record(expected)
    assert key_json(key) == json.dumps(to_record(expected), ensure_ascii=False)


@given(st.lists(st.integers(0, 65535), min_size=8, max_size=8), st.sampled_from(["-", " ", ""]))
def test_a_password_reads_the_same_in_every_form(groups: list[int], separator: str) -> None:
    digits = [f"{group * 11:06d}" for group in groups]
    password = RecoveryPassword.parse(separator.join(digits))
    dashed = RecoveryPassword.parse("-".join(digits))
    assert password.reveal() == dashed.reveal() == "-".join(digits)
    assert password.groups() == tuple(digits)
    assert password == dashed
    assert hash(password) == hash(dashed)


def test_a_deleted_objects_key_keeps_its_computer_and_no_location() -> None:
    dn = f"CN=2024-01-01T00:00:00\\+00:00{{{GUID}}}\\0ADEL:1234,CN=Deleted Objects,DC=x"
    entry = _entry(
        dn,
        isDeleted=[b"TRUE"],
        lastKnownParent=[b"CN=PC\\, 9\\0ADEL:5678,CN=Deleted Objects,DC=x"],
        **{"msFVE-RecoveryGuid": [GUID.bytes_le]},
    )
    key, warnings = _read(entry)
    assert warnings == []
    assert key is not None
    assert (key.computer, key.location, key.deleted) == ("PC, 9", None, True)
    assert key.created == datetime(2024, 1, 1, tzinfo=UTC)
