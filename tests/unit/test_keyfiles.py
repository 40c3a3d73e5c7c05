"""Parsing the files people keep keys in: encodings, Windows and manage-bde layouts, exports."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.model import KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.ops.lookup import LookupResult
from bitkey_dir.render.keys import render_csv, render_json
from bitkey_dir.sources.files import parsers as keyfiles
from bitkey_dir.sources.files.parsers import NotText, Parsed, decode, parse_bytes
from tests.unit.helpers import (
    EXAMPLES,
    GUID,
    KEY_ID,
    OTHER_KEY_ID,
    OTHER_PASSWORD,
    PASSWORD,
    PASSWORD_TEXT,
    SAME_PREFIX_KEY_ID,
    assert_no_password,
    example_key_files,
    manage_bde_output,
    passwords,
    utf16_le_bom,
    windows7_key_file,
    windows_key_file,
)

TPM_ID = "186391DA-6BCA-4DAA-875D-779C23961C52"
EXTERNAL_KEY_ID = "1F1EABFA-A300-4324-8470-D28B48018F5E"
# PASSWORD with one digit of group 3 changed: the shape of a password, but not a valid one.
DAMAGED_PASSWORD = "531058-303050-716079-383614-460922-106975-083446-139161"


def fields(key: RecoveryKey) -> dict[str, object]:
    """A key as plain values, read attribute by attribute (not through records.to_record)."""
    return {
        "key_id": str(key.key_id),
        "recovery_password": key.recovery_password.reveal() if key.recovery_password else None,
        "computer": key.computer,
        "created": key.created,
        "volume_type": key.volume_type,
        "volume_id": key.volume_id,
        "device_id": key.device_id,
        "location": key.location,
        "deleted": key.deleted,
    }


def text_key(key_id: str, password: str, location: str | None = None) -> dict[str, object]:
    """What a key from a text file looks like: only the ID, the password and maybe a volume."""
    return {
        "key_id": key_id.upper(),
        "recovery_password": password,
        "computer": None,
        "created": None,
        "volume_type": None,
        "volume_id": None,
        "device_id": None,
        "location": location,
        "deleted": False,
    }


def only_key(parsed: Parsed) -> RecoveryKey:
    assert parsed.damaged == []
    assert parsed.problems == []
    assert len(parsed.keys) == 1, parsed
    return parsed.keys[0]


# ---------------------------------------------------------------------------------------------
# decode()

EN_DASH = "\u2013"
SAMPLE = (
    f"BitLocker-Laufwerkverschlüsselung {EN_DASH} Schlüssel für “Daten” (café)\r\n"
    "Bezeichner:\r\n\tsee the identifier below\n"
)
ENCODERS: dict[str, Callable[[str], bytes]] = {
    "utf-16-le with BOM": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be with BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "utf-16-le without BOM": lambda text: text.encode("utf-16-le"),
    "utf-16-be without BOM": lambda text: text.encode("utf-16-be"),
    "utf-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-8": lambda text: text.encode("utf-8"),
    "cp1252": lambda text: text.encode("cp1252"),
}


@pytest.mark.parametrize("encoding", ENCODERS)
def test_decode_reads_every_encoding_windows_and_editors_write(encoding: str) -> None:
    assert decode(ENCODERS[encoding](SAMPLE)) == SAMPLE


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_decode_keeps_line_ends(newline: str) -> None:
    text = f"one{newline}two{newline}"
    assert decode(text.encode()) == text
    assert decode(utf16_le_bom(text)) == text


def test_decode_accepts_a_few_control_characters() -> None:
    # Tabs, form feeds and the DOS end-of-file marker occur in real text files.
    text = "Recovery Key:\t\f" + "x" * 50 + "\x1a"
    assert decode(text.encode()) == text


def test_decode_empty_file() -> None:
    assert decode(b"") == ""
    assert parse_bytes(b"").kind == "unrelated"


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,
        b"\x01\x02\x03\x04\x05 mostly text but with control bytes",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
        b"-FVE-FS-\x00\x00\x00\x01" + bytes(100),  # BitLocker metadata, as a .BEK holds
        codecs.BOM_UTF16_LE + "odd length".encode("utf-16-le") + b"x",
        codecs.BOM_UTF16_LE + b"\x00\xd8A\x00",  # a lone surrogate
        "no BOM".encode("utf-16-le") + b"\x00",  # odd length
    ],
)
def test_decode_rejects_binary_data(data: bytes) -> None:
    with pytest.raises(NotText):
        decode(data)
    with pytest.raises(NotText):
        parse_bytes(data)


# ---------------------------------------------------------------------------------------------
# The example files, checked against a second reading with the known encoding and a regex.

EXAMPLE_FILES = example_key_files()


def _known_text(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")  # the BOM says which byte order
    else:
        text = data.decode("utf-8-sig")
    return text.replace("\r\n", "\n")


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _record_key(record: dict[str, object]) -> dict[str, object]:
    created = record.get("created")
    deleted = record.get("deleted")
    return {
        "key_id": str(record["key_id"]).upper(),
        "recovery_password": record["recovery_password"],
        "computer": _optional(record.get("computer")),
        "created": datetime.fromisoformat(created) if isinstance(created, str) else None,
        "volume_type": _optional(record.get("volume_type")),
        "volume_id": _optional(record.get("volume_id")),
        "device_id": _optional(record.get("device_id")),
        "location": _optional(record.get("location")),
        "deleted": deleted is True or deleted == "true",
    }


def expected_from_example(path: Path) -> tuple[str, list[dict[str, object]]]:
    """(kind, keys) for an example file, read without bitkey_dir."""
    text = _known_text(path)
    if path.suffix.lower() == ".json":
        document = json.loads(text)
        records = document["keys"] if isinstance(document, dict) else document
        return "json", [_record_key(record) for record in records]
    if path.suffix.lower() == ".csv":
        return "csv", [_record_key(dict(row)) for row in csv.DictReader(io.StringIO(text))]
    if "Numerical Password:" in text:
        keys = []
        for volume in re.finditer(
            r"^Volume (\w:) \[([^\]]*)\]$(.*?)(?=^Volume |\Z)", text, re.MULTILINE | re.DOTALL
        ):
            drive, label, body = volume.groups()
            for protector in re.finditer(
                rf"Numerical Password:\s*ID: \{{({GUID})\}}\s*Password:\s*({PASSWORD_TEXT})", body
            ):
                key_id, password = protector.groups()
                keys.append(text_key(key_id, password, location=f"volume {drive} [{label}]"))
        return "manage-bde", keys
    pairs = re.findall(
        rf"(?:Identifier:|Full recovery key identification:)\s*({GUID})"
        rf".*?Recovery Key:\s*({PASSWORD_TEXT})",
        text,
        re.DOTALL | re.IGNORECASE,
    )
    return "windows-key-file", [text_key(key_id, password) for key_id, password in pairs]


def test_there_are_examples_of_every_format() -> None:
    kinds = {expected_from_example(path)[0] for path in EXAMPLE_FILES}
    assert kinds == {"json", "csv", "manage-bde", "windows-key-file"}


@pytest.mark.parametrize(
    "path", EXAMPLE_FILES, ids=[str(p.relative_to(EXAMPLES)) for p in EXAMPLE_FILES]
)
def test_example_file_yields_exactly_its_keys(path: Path) -> None:
    kind, expected = expected_from_example(path)
    assert expected, f"the second reading found no key in {path}"
    parsed = parse_bytes(path.read_bytes())
    assert parsed.kind == kind
    assert parsed.problems == []
    assert parsed.damaged == []
    assert [fields(key) for key in parsed.keys] == expected
    assert all(key.source == "" for key in parsed.keys)  # the file source fills it in


# ---------------------------------------------------------------------------------------------
# Windows key files


@pytest.mark.parametrize("encoding", ["utf-16-le with BOM", "utf-16-be with BOM", "utf-8"])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("layout", [windows_key_file, windows7_key_file])
def test_windows_key_file_in_any_encoding_and_line_end(
    encoding: str, newline: str, layout: Callable[..., str]
) -> None:
    data = ENCODERS[encoding](layout(KEY_ID, PASSWORD, newline=newline))
    parsed = parse_bytes(data)
    assert parsed.kind == "windows-key-file"
    assert fields(only_key(parsed)) == text_key(KEY_ID, PASSWORD)


@given(
    st.uuids(),
    passwords,
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from(["utf-16-le with BOM", "utf-16-le without BOM", "utf-8 with BOM", "cp1252"]),
    st.booleans(),
)
def test_generated_windows_key_files_parse(
    key_id: uuid.UUID, password: str, newline: str, encoding: str, lower: bool
) -> None:
    guid = str(key_id) if lower else str(key_id).upper()
    parsed = parse_bytes(ENCODERS[encoding](windows_key_file(guid, password, newline=newline)))
    assert fields(only_key(parsed)) == text_key(guid, password)


def test_localised_windows_key_file() -> None:
    text = (
        f"BitLocker-Laufwerkverschlüsselung {EN_DASH} Wiederherstellungsschlüssel\r\n\r\n"
        "Vergleichen Sie den Anfang des folgenden Bezeichners mit dem auf dem PC angezeigten.\r\n"
        f"Bezeichner:\r\n\r\n\t{KEY_ID}\r\n\r\n"
        f"Wiederherstellungsschlüssel:\r\n\r\n\t{PASSWORD}\r\n"
    )
    parsed = parse_bytes(utf16_le_bom(text))
    assert parsed.kind == "windows-key-file"
    assert fields(only_key(parsed)) == text_key(KEY_ID, PASSWORD)


def test_windows7_short_identification_that_disagrees_is_a_problem() -> None:
    text = windows7_key_file(KEY_ID, PASSWORD, short_id="063EA4E1-220C-43")
    parsed = parse_bytes(utf16_le_bom(text))
    assert [fields(key) for key in parsed.keys] == [text_key(KEY_ID, PASSWORD)]
    assert len(parsed.problems) == 1
    assert "063EA4E1-220C-43" in parsed.problems[0]
    assert "does not match" in parsed.problems[0]


@pytest.mark.parametrize("short_id", ["063EA4E1-220C-42", "063ea4e1-220c-42"])
def test_windows7_short_identification_that_agrees_is_fine(short_id: str) -> None:
    parsed = parse_bytes(utf16_le_bom(windows7_key_file(KEY_ID, PASSWORD, short_id=short_id)))
    assert fields(only_key(parsed)) == text_key(KEY_ID, PASSWORD)


def test_windows_key_file_without_password_is_a_problem() -> None:
    text = windows_key_file(KEY_ID, "").replace("Recovery Key:", "Recovery Key: (cut off)")
    parsed = parse_bytes(utf16_le_bom(text))
    assert parsed.kind == "windows-key-file"
    assert parsed.keys == []
    assert len(parsed.problems) == 1
    assert "no Key ID with a recovery password" in parsed.problems[0]


def test_damaged_password_is_reported_and_not_a_key() -> None:
    parsed = parse_bytes(utf16_le_bom(windows_key_file(KEY_ID, DAMAGED_PASSWORD)))
    assert parsed.keys == []
    assert parsed.problems == []
    assert len(parsed.damaged) == 1
    damaged, problem = parsed.damaged[0]
    assert str(damaged.key_id) == KEY_ID
    assert damaged.recovery_password is None
    assert "damaged" in problem
    assert "group 3" in problem
    assert_no_password([problem, repr(parsed)], [DAMAGED_PASSWORD])


@pytest.mark.parametrize(
    "typed",
    [
        "53105-303050-716078-383614-460922-106975-083446-139161",  # a digit missing
        "531058-303050-716078-383614-460922-106975-083446",  # a group missing
        "531058-303050-716078-383614-460922-106975-083446-139161-000000",  # a group too many
        "531058 303050 7160788 383614 460922 106975 083446 139161",
    ],
)
def test_mangled_password_is_reported_as_damaged(typed: str) -> None:
    parsed = parse_bytes(f"Key ID: {KEY_ID}\nRecovery password: {typed}\n".encode())
    assert parsed.keys == []
    assert [str(key.key_id) for key, _ in parsed.damaged] == [KEY_ID]
    assert "damaged" in parsed.damaged[0][1]
    assert_no_password([parsed.damaged[0][1]], [typed])


# ---------------------------------------------------------------------------------------------
# manage-bde output


def test_manage_bde_ignores_protectors_without_password_and_names_the_volume() -> None:
    text = manage_bde_output(
        [
            (
                "C:",
                "Windows",
                [("TPM", TPM_ID, None), ("Numerical Password", KEY_ID, PASSWORD)],
            ),
            (
                "D:",
                "Data",
                [
                    ("External Key", EXTERNAL_KEY_ID, None),
                    ("Numerical Password", OTHER_KEY_ID, OTHER_PASSWORD),
                    ("TPM", TPM_ID.replace("1", "2"), None),
                ],
            ),
        ]
    )
    parsed = parse_bytes(utf16_le_bom(text))
    assert parsed.kind == "manage-bde"
    assert parsed.problems == []
    assert parsed.damaged == []
    assert [fields(key) for key in parsed.keys] == [
        text_key(KEY_ID, PASSWORD, "volume C: [Windows]"),
        text_key(OTHER_KEY_ID, OTHER_PASSWORD, "volume D: [Data]"),
    ]


def test_manage_bde_password_on_the_second_volume_only() -> None:
    text = manage_bde_output(
        [
            ("C:", "", [("TPM", TPM_ID, None)]),
            ("E:", "Backup disk", [("Numerical Password", KEY_ID, PASSWORD)]),
        ]
    )
    key = only_key(parse_bytes(text.encode("utf-8")))
    assert key.location == "volume E: [Backup disk]"
    assert str(key.key_id) == KEY_ID


def test_manage_bde_without_numerical_password_is_unrelated() -> None:
    text = manage_bde_output(
        [("C:", "Windows", [("TPM", TPM_ID, None), ("External Key", EXTERNAL_KEY_ID, None)])]
    )
    parsed = parse_bytes(utf16_le_bom(text))
    assert parsed.kind == "unrelated"
    assert parsed.keys == []
    assert parsed.problems == []


def test_manage_bde_damaged_password() -> None:
    text = manage_bde_output(
        [("C:", "Windows", [("Numerical Password", KEY_ID, DAMAGED_PASSWORD)])]
    )
    parsed = parse_bytes(utf16_le_bom(text))
    assert parsed.keys == []
    assert [(str(key.key_id), key.location) for key, _ in parsed.damaged] == [
        (KEY_ID, "volume C: [Windows]")
    ]


# ---------------------------------------------------------------------------------------------
# Notes people write


def test_note_pairing_id_and_password_on_one_line() -> None:
    note = f"laptop of J. Doe: id {{{KEY_ID.lower()}}} key {PASSWORD.replace('-', ' ')}\n"
    parsed = parse_bytes(note.encode("cp1252"))
    assert parsed.kind == "text"
    assert fields(only_key(parsed)) == text_key(KEY_ID, PASSWORD)


def test_note_with_two_keys() -> None:
    note = f"C: {KEY_ID}\n{PASSWORD}\n\nD: {OTHER_KEY_ID}\n{OTHER_PASSWORD}\n"
    parsed = parse_bytes(note.encode())
    assert [fields(key) for key in parsed.keys] == [
        text_key(KEY_ID, PASSWORD),
        text_key(OTHER_KEY_ID, OTHER_PASSWORD),
    ]


def test_password_without_key_id_is_a_problem() -> None:
    parsed = parse_bytes(f"the key for the lab laptop is {PASSWORD}\n".encode())
    assert parsed.keys == []
    assert len(parsed.problems) == 1
    assert "without a Key ID" in parsed.problems[0]
    assert_no_password(parsed.problems, [PASSWORD])


@pytest.mark.parametrize(
    "text",
    [
        "Meeting notes\n\nNothing about keys here, call 555-0100.\n",
        f"Event 4100: volume {KEY_ID} was mounted.\n",
        "manage-bde -protectors -get C: > \\\\server\\keys\\%COMPUTERNAME%.txt\n",
        '{"theme": "dark", "size": 12}\n',
        "name,size\nreport.pdf,1234\n",
    ],
)
def test_unrelated_text_is_not_a_problem(text: str) -> None:
    parsed = parse_bytes(text.encode())
    assert parsed.kind == "unrelated"
    assert parsed.keys == []
    assert parsed.damaged == []
    assert parsed.problems == []


@pytest.mark.parametrize(
    "note",
    [
        f"{{{KEY_ID}}}\r\n{PASSWORD}\r\n",  # an ID copied with its braces from manage-bde
        f"[Lab laptop]\nID: {KEY_ID}\nKey: {PASSWORD}\n",
    ],
    ids=["braced-id-first", "bracketed-title"],
)
def test_note_starting_with_a_brace_or_bracket(note: str) -> None:
    parsed = parse_bytes(note.encode())
    assert fields(only_key(parsed)) == text_key(KEY_ID, PASSWORD)


# ---------------------------------------------------------------------------------------------
# bitkey-dir's own JSON and CSV


def sample_keys() -> list[RecoveryKey]:
    return [
        RecoveryKey(
            source="corp-ad",
            key_id=KeyId.parse(KEY_ID),
            recovery_password=RecoveryPassword.parse(PASSWORD),
            computer="PC-0042",
            created=datetime(2025, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=-8))),
            volume_id="7A98714F-9023-4DE7-A32A-A9DEFED43229",
            location="OU=Laptops,OU=Corp,DC=corp,DC=example,DC=com",
        ),
        RecoveryKey(
            source="entra",
            key_id=KeyId.parse(OTHER_KEY_ID),
            recovery_password=RecoveryPassword.parse(OTHER_PASSWORD),
            computer='Käse-Laptop "2", Büro',
            created=datetime(2025, 9, 2, 14, 5, 7, 123456, tzinfo=UTC),
            volume_type="operatingSystemVolume",
            device_id="c51ae08b-3727-4581-be57-821b6396e022",
            location="first line\nsecond line",
            deleted=True,
        ),
        RecoveryKey(
            source="corp-ad",
            key_id=KeyId.parse(SAME_PREFIX_KEY_ID),
            recovery_password=None,  # the account could not read it
            computer="SRV-DB02",
            created=datetime(2024, 11, 30, 23, 59, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
    ]


RENDERERS = {"json": render_json, "csv": render_csv}


def round_trip(fmt: str, keys: list[RecoveryKey]) -> Parsed:
    result = LookupResult(Query(key_id=KeyId.parse("063EA4E1")), keys=list(keys))
    return parse_bytes(RENDERERS[fmt](result).encode("utf-8"))


@pytest.mark.parametrize("fmt", RENDERERS)
def test_own_output_round_trips(fmt: str) -> None:
    keys = sample_keys()
    parsed = round_trip(fmt, keys)
    assert parsed.kind == fmt
    assert parsed.problems == []
    assert parsed.damaged == []
    assert parsed.keys == [replace(key, source="") for key in keys]
    assert [fields(key) for key in parsed.keys] == [fields(key) for key in keys]


metadata_text = st.one_of(
    st.none(),
    st.text(
        st.characters(exclude_categories=("Cc", "Cs", "Cf", "Co", "Cn", "Zl", "Zp")), min_size=1
    ),
)
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def recovery_keys(draw: st.DrawFn) -> RecoveryKey:
    password = draw(st.one_of(st.none(), passwords.map(RecoveryPassword.parse)))
    return RecoveryKey(
        source=draw(st.sampled_from(["corp-ad", "entra", "files"])),
        key_id=KeyId.from_uuid(draw(st.uuids())),
        recovery_password=password,
        computer=draw(metadata_text),
        created=draw(
            st.one_of(
                st.none(),
                st.datetimes(
                    min_value=datetime(2, 1, 1),
                    max_value=datetime(9998, 12, 31),
                    timezones=offsets,
                ),
            )
        ),
        volume_type=draw(st.one_of(st.none(), st.sampled_from(["operatingSystemVolume"]))),
        volume_id=draw(metadata_text),
        device_id=draw(metadata_text),
        location=draw(metadata_text),
        deleted=draw(st.booleans()),
    )


@given(st.sampled_from(sorted(RENDERERS)), st.lists(recovery_keys(), max_size=4))
def test_own_output_round_trips_for_any_keys(fmt: str, keys: list[RecoveryKey]) -> None:
    parsed = round_trip(fmt, keys)
    assert parsed.problems == []
    assert parsed.damaged == []
    assert parsed.keys == [replace(key, source="") for key in keys]


def test_example_exports_read_back_unchanged() -> None:
    """Exports written by render_json and render_csv of the example keys read back the same."""
    keys: list[RecoveryKey] = []
    for path in EXAMPLE_FILES:
        keys += parse_bytes(path.read_bytes()).keys
    for fmt in RENDERERS:
        assert round_trip(fmt, keys).keys == keys


CSV_HEADER = "source,computer,key_id,recovery_password,created,deleted"


def test_csv_with_extra_columns() -> None:
    text = (
        "ticket,source,computer,key_id,recovery_password,created,deleted,notes\n"
        f"INC-1,corp-ad,PC-0042,{KEY_ID},{PASSWORD},2025-03-14T09:30:00+01:00,false,ok\n"
    )
    key = only_key(parse_bytes(text.encode()))
    assert fields(key)["computer"] == "PC-0042"
    assert key.created == datetime(2025, 3, 14, 8, 30, tzinfo=UTC)


def test_csv_row_with_too_many_values_is_a_problem() -> None:
    text = (
        f"{CSV_HEADER}\n"
        f"corp-ad,PC-0042,{KEY_ID},{PASSWORD},,false,surplus\n"
        f"corp-ad,PC-0099,{OTHER_KEY_ID},{OTHER_PASSWORD},,false\n"
    )
    parsed = parse_bytes(text.encode())
    assert [str(key.key_id) for key in parsed.keys] == [OTHER_KEY_ID]
    assert parsed.problems == ["line 2: more values than columns"]


def test_csv_row_with_too_few_values_keeps_the_key() -> None:
    text = f"{CSV_HEADER}\ncorp-ad,PC-0042,{KEY_ID},{PASSWORD}\n"
    key = only_key(parse_bytes(text.encode()))
    assert (key.computer, key.created, key.deleted) == ("PC-0042", None, False)


def test_csv_damaged_password() -> None:
    text = f"{CSV_HEADER}\ncorp-ad,PC-0042,{KEY_ID},{DAMAGED_PASSWORD},,false\n"
    parsed = parse_bytes(text.encode())
    assert parsed.keys == []
    assert [(str(key.key_id), key.computer) for key, _ in parsed.damaged] == [(KEY_ID, "PC-0042")]
    assert "damaged" in parsed.damaged[0][1]
    assert_no_password([parsed.damaged[0][1], *parsed.problems], [DAMAGED_PASSWORD])


def test_csv_that_is_not_valid_csv() -> None:
    text = f'{CSV_HEADER}\ncorp-ad,"{"x" * 200_000}",{KEY_ID},{PASSWORD},,false\n'
    parsed = parse_bytes(text.encode())
    assert parsed.kind == "csv"
    assert parsed.keys == []
    assert len(parsed.problems) == 1
    assert "not valid CSV" in parsed.problems[0]


@pytest.mark.parametrize(
    "row",
    [
        f"corp-ad,{KEY_ID},{PASSWORD},,",  # the computer column left out: values shift left
        f"corp-ad,PC-0042,{KEY_ID},,{PASSWORD}",  # the password in the created column
    ],
    ids=["in-key-id", "in-created"],
)
def test_misplaced_password_is_not_quoted_in_problems(row: str) -> None:
    parsed = parse_bytes(f"source,computer,key_id,recovery_password,created\n{row}\n".encode())
    assert_no_password(parsed.problems, [PASSWORD])


def test_json_bare_list_of_records() -> None:
    text = json.dumps([{"key_id": KEY_ID.lower(), "recovery_password": PASSWORD}])
    parsed = parse_bytes(text.encode("utf-16"))
    assert parsed.kind == "json"
    assert fields(only_key(parsed)) == text_key(KEY_ID, PASSWORD)


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        (["a string"], "key 1: not a JSON object"),
        ([None], "key 1: not a JSON object"),
        ([[KEY_ID, PASSWORD]], "key 1: not a JSON object"),
        ([{"recovery_password": PASSWORD}], "key 1: no key_id"),
        ([{"key_id": 42, "recovery_password": PASSWORD}], "key 1: field key_id is not a string"),
        ([{"key_id": "063EA4E1", "recovery_password": PASSWORD}], "not a full GUID"),
        ([{"key_id": "not an id", "recovery_password": PASSWORD}], "is not a Key ID"),
        (
            [{"key_id": KEY_ID, "recovery_password": 531058303050716078}],
            "key 1: field recovery_password is not a string",
        ),
    ],
)
def test_json_with_wrong_types_is_a_problem(records: list[object], problem: str) -> None:
    parsed = parse_bytes(json.dumps({"keys": records}).encode())
    assert parsed.kind == "json"
    assert parsed.keys == []
    assert len(parsed.problems) == 1
    assert problem in parsed.problems[0]
    assert_no_password(parsed.problems, [PASSWORD])


def test_json_with_a_bad_record_keeps_the_good_ones() -> None:
    records = [{"key_id": 1}, {"key_id": KEY_ID, "recovery_password": PASSWORD}, "x"]
    parsed = parse_bytes(json.dumps(records).encode())
    assert [str(key.key_id) for key in parsed.keys] == [KEY_ID]
    assert len(parsed.problems) == 2


@pytest.mark.parametrize(("name", "value"), [("computer", 42), ("created", 20250314)])
def test_json_metadata_of_the_wrong_type_drops_only_that_field(name: str, value: object) -> None:
    record = {"key_id": KEY_ID, "recovery_password": PASSWORD, name: value}
    parsed = parse_bytes(json.dumps([record]).encode())
    assert [fields(key) for key in parsed.keys] == [text_key(KEY_ID, PASSWORD)]
    assert len(parsed.problems) == 1
    assert name in parsed.problems[0]


@pytest.mark.parametrize("document", ['{"keys": "none"}', '{"version": 3}', "[]", "{}"])
def test_json_without_records_is_unrelated_or_empty(document: str) -> None:
    parsed = parse_bytes(document.encode())
    assert parsed.keys == []
    assert parsed.problems == []


def test_json_damaged_password() -> None:
    record = {"key_id": KEY_ID, "recovery_password": DAMAGED_PASSWORD, "computer": "PC-0042"}
    parsed = parse_bytes(json.dumps({"keys": [record]}).encode())
    assert parsed.keys == []
    assert parsed.problems == []
    assert [(str(key.key_id), key.computer) for key, _ in parsed.damaged] == [(KEY_ID, "PC-0042")]
    assert_no_password([parsed.damaged[0][1]], [DAMAGED_PASSWORD])


@pytest.mark.parametrize(
    ("document", "looks_like_an_export"),
    [
        ("[" * 100_000, False),
        ("[" * 100_000 + "]" * 100_000, False),
        ('{"keys": ' * 100_000, True),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, False),
    ],
    ids=["unclosed-lists", "closed-lists", "unclosed-objects", "closed-objects"],
)
def test_deeply_nested_json_is_a_problem_not_a_crash(
    document: str, looks_like_an_export: bool
) -> None:
    parsed = parse_bytes(document.encode())
    assert parsed.keys == []
    # Only what looks like one of our exports is worth a warning; other junk is unrelated.
    if looks_like_an_export:
        assert len(parsed.problems) == 1
        assert "not valid JSON" in parsed.problems[0]
    else:
        assert (parsed.kind, parsed.problems) == ("unrelated", [])


def test_desktop_ini_is_unrelated_not_broken_json() -> None:
    ini = "[.ShellClassInfo]\r\nIconResource=C:\\Windows\\system32\\imageres.dll,-3\r\n"
    parsed = parse_bytes(ini.encode("utf-16"))
    assert (parsed.kind, parsed.problems) == ("unrelated", [])


def test_json_with_a_huge_number_is_a_problem_not_a_crash() -> None:
    assert parse_bytes(("[" + "1" * 5000 + "]").encode()).kind == "unrelated"
    document = '{"keys": [{"key_id": ' + "9" * 5000 + "}]}"
    parsed = parse_bytes(document.encode())
    assert parsed.keys == []
    assert parsed.problems


@pytest.mark.parametrize("created", ["2025-03-14T09:30:00", "2025-03-14", "yesterday"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_record_with_unusable_date_keeps_the_key(fmt: str, created: str) -> None:
    if fmt == "json":
        record = {"key_id": KEY_ID, "recovery_password": PASSWORD, "created": created}
        data = json.dumps({"keys": [record]})
    else:
        data = f"key_id,recovery_password,created\n{KEY_ID},{PASSWORD},{created}\n"
    parsed = parse_bytes(data.encode())
    assert [fields(key) for key in parsed.keys] == [text_key(KEY_ID, PASSWORD)]
    assert len(parsed.problems) == 1
    assert created in parsed.problems[0]
    assert KEY_ID in parsed.problems[0]


# ---------------------------------------------------------------------------------------------
# Whatever the bytes, parse_bytes returns a Parsed or raises NotText


def parsed_or_not_text(data: bytes) -> None:
    try:
        parsed = parse_bytes(data)
    except NotText:
        return
    assert isinstance(parsed, Parsed)
    kinds = {"windows-key-file", "manage-bde", "text", "json", "broken-json", "csv", "unrelated"}
    assert parsed.kind in kinds
    for key in parsed.keys:
        assert key.key_id.is_full
        # Only our own records may carry a key whose password was unreadable at export time.
        assert key.recovery_password is not None or parsed.kind in {"json", "csv"}
    for key, problem in parsed.damaged:
        assert key.recovery_password is None
        assert "damaged" in problem


@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    parsed_or_not_text(data)


@given(
    st.text(max_size=2000),
    st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-8", "utf-8-sig"]),
)
def test_random_text_in_any_encoding(text: str, encoding: str) -> None:
    parsed_or_not_text(text.encode(encoding))


# Text built from the pieces the parsers look for, to reach the JSON, CSV and pairing code.
PIECES = [
    "{",
    "}",
    "[",
    "]",
    '"',
    ",",
    ":",
    "\n",
    "\r\n",
    " ",
    "-",
    "null",
    "true",
    '"keys"',
    '"key_id"',
    '"created"',
    "key_id,recovery_password\n",
    "Volume C: [OS]\n",
    "BitLocker",
    "Numerical Password:",
    KEY_ID,
    OTHER_KEY_ID.lower(),
    PASSWORD,
    DAMAGED_PASSWORD,
    PASSWORD[:20],
    "2025-03-14T09:30:00",
    "+01:00",
    "1234567890",
]


@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join), st.sampled_from(["utf-8"]))
def test_random_arrangements_of_key_file_pieces(text: str, encoding: str) -> None:
    parsed_or_not_text(text.encode(encoding))


def test_wanted_skips_text_without_the_key_id() -> None:
    data = utf16_le_bom(windows_key_file(KEY_ID, PASSWORD))
    wanted = re.compile(re.escape("063ea4e1-220c"), re.IGNORECASE)
    assert fields(only_key(parse_bytes(data, wanted))) == text_key(KEY_ID, PASSWORD)
    skipped = parse_bytes(data, re.compile(re.escape(OTHER_KEY_ID)))
    assert (skipped.kind, skipped.keys, skipped.problems) == ("unrelated", [], [])
    with pytest.raises(NotText):
        parse_bytes(bytes(range(256)), wanted)


def test_module_exports() -> None:
    assert set(keyfiles.__all__) >= {"NotText", "Parsed", "decode", "parse_bytes"}
