"""Key packages: a type that hides its bytes, their place in exports, the trail and the file."""

from __future__ import annotations

import os
import pickle
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KEY_PACKAGE_MAX, KeyId, KeyPackage, RecoveryKey, RecoveryPassword
from bitkey_dir.core.records import (
    KEY_FIELDS,
    PACKAGE_FIELDS,
    csv_line,
    key_csv_row,
    key_json,
    to_record,
)
from bitkey_dir.runtime.atomic import write_new_private
from bitkey_dir.sources.files.parsers import parse_bytes
from bitkey_dir.store import trail

SECRET = bytes(range(256)) * 2
KEY_ID = KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7")
PASSWORD = RecoveryPassword.parse("531058-303050-716078-383614-460922-106975-083446-139161")
PACKAGE = KeyPackage(SECRET)


def key(package: KeyPackage | None = PACKAGE, **fields: object) -> RecoveryKey:
    values: dict[str, object] = {
        "source": "lab",
        "key_id": KEY_ID,
        "recovery_password": PASSWORD,
        "computer": "PC-01",
        "created": datetime(2024, 6, 1, 9, 0, tzinfo=UTC),
        "key_package": package,
    }
    values.update(fields)
    return RecoveryKey(**values)  # type: ignore[arg-type]


def test_a_key_package_hides_its_bytes_everywhere() -> None:
    package = KeyPackage(SECRET)
    shown = [repr(package), str(package), f"{package}", f"{package!r}", repr([package])]
    shown.append(repr(key(package)))
    for text in shown:
        assert "hidden" in text
        assert SECRET.hex() not in text
        assert package.to_base64() not in text
        assert "\\x00\\x01" not in text
    assert package.reveal() == SECRET
    assert len(package) == len(SECRET)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_key_package_cannot_be_pickled(protocol: int) -> None:
    for value in (KeyPackage(SECRET), key()):
        with pytest.raises(TypeError):
            pickle.dumps(value, protocol=protocol)


def test_a_key_package_is_immutable_and_compared_by_value() -> None:
    package = KeyPackage(SECRET)
    with pytest.raises(AttributeError):
        package._data = b"x"  # type: ignore[misc]
    assert package == KeyPackage(bytes(SECRET))
    assert package != KeyPackage(SECRET[:-1])
    assert len({package, KeyPackage(bytes(SECRET))}) == 1


@pytest.mark.parametrize("data", [b"", b"x" * (KEY_PACKAGE_MAX + 1)])
def test_a_key_package_has_a_plausible_size(data: bytes) -> None:
    with pytest.raises(ValueError, match="a key package is"):
        KeyPackage(data)


@pytest.mark.parametrize(
    "text", ["not base64!", "QUJ", "", "====", "A" * (KEY_PACKAGE_MAX * 2 + 4)]
)
def test_damaged_base64_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(InputError) as caught:
        KeyPackage.from_base64(text)
    if text.strip("="):
        assert text[:8] not in caught.value.message


@given(st.binary(min_size=1, max_size=2048))
def test_base64_round_trip(data: bytes) -> None:
    package = KeyPackage(data)
    assert KeyPackage.from_base64(package.to_base64()) == package


# -- records -------------------------------------------------------------------------------


def test_records_hold_the_package_only_when_asked() -> None:
    assert tuple(to_record(key())) == KEY_FIELDS
    assert '"key_package"' not in key_json(key())
    assert key_csv_row(key()).count(",") == len(KEY_FIELDS) - 1
    record = to_record(key(), key_package=True)
    assert tuple(record) == PACKAGE_FIELDS
    assert record["key_package"] == KeyPackage(SECRET).to_base64()
    assert to_record(key(None), key_package=True)["key_package"] is None


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("package", [KeyPackage(SECRET), KeyPackage(b"\xfb\xef\xbe"), None])
def test_an_export_record_reads_back_with_its_package(fmt: str, package: KeyPackage | None) -> None:
    original = key(package)
    if fmt == "json":
        text = '{"keys": [' + key_json(original, key_package=True) + "]}"
    else:
        text = csv_line(PACKAGE_FIELDS) + key_csv_row(original, key_package=True)
    parsed = parse_bytes(text.encode())
    assert parsed.problems == []
    (back,) = parsed.keys
    assert back.key_package == package
    assert back.recovery_password == PASSWORD


def test_a_package_cell_that_looks_like_a_formula_is_guarded_in_csv() -> None:
    package = KeyPackage(b"\xfb\xef\xbe")  # base64 "++++"
    row = key_csv_row(key(package), key_package=True)
    assert row.rstrip("\n").endswith(",'++++")


def test_an_old_export_without_the_field_reads_as_before() -> None:
    text = '{"keys": [' + key_json(key()) + "]}"
    (back,) = parse_bytes(text.encode()).keys
    assert back.key_package is None
    assert back.recovery_password == PASSWORD


def test_a_damaged_package_drops_only_the_package_with_a_note() -> None:
    text = '{"keys": [' + key_json(key(None)).replace("}", ', "key_package": "@@@"}') + "]}"
    parsed = parse_bytes(text.encode())
    (back,) = parsed.keys
    assert back.key_package is None
    assert back.recovery_password == PASSWORD
    assert len(parsed.problems) == 1
    assert "key_package" in parsed.problems[0]
    assert "@@@" not in parsed.problems[0]


# -- the trail ------------------------------------------------------------------------------


def test_the_trail_names_the_file_never_the_package(tmp_path: Path) -> None:
    written = tmp_path / "keypackage.bin"
    packaged = key(recovery_password=None)  # a package may be readable without the password
    other = key(None, key_id=KeyId.parse("A1B2C3D4-1111-4111-8111-111111111111"))
    entries = trail.entries_for(
        [packaged, other], "INC1", ["find"], key_package=(packaged, written)
    )
    assert [entry.get("key_package") for entry in entries] == [str(written), None]
    plain = trail.entries_for([packaged, other], None, ["find"])
    assert [entry["key_id"] for entry in plain] == [str(other.key_id)]
    target = tmp_path / "trail.jsonl"
    trail.append(entries, target)
    assert KeyPackage(SECRET).to_base64() not in target.read_text()


# -- the file --------------------------------------------------------------------------------


def test_a_new_file_is_private_and_whole(tmp_path: Path) -> None:
    target = tmp_path / "keypackage.bin"
    write_new_private(target, SECRET)
    assert target.read_bytes() == SECRET
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["keypackage.bin"]


def test_an_existing_file_or_link_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "keypackage.bin"
    target.write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        write_new_private(target, SECRET)
    assert target.read_bytes() == b"kept"
    elsewhere = tmp_path / "elsewhere"
    link = tmp_path / "link.bin"
    link.symlink_to(elsewhere)
    with pytest.raises(FileExistsError):
        write_new_private(link, SECRET)
    assert not elsewhere.exists()
    assert sorted(os.listdir(tmp_path)) == ["keypackage.bin", "link.bin"]


def test_a_refusal_before_commit_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "keypackage.bin"

    def refuse() -> None:
        raise RuntimeError("the trail refused")

    with pytest.raises(RuntimeError):
        write_new_private(target, SECRET, refuse)
    assert os.listdir(tmp_path) == []
