"""The file source: folders of key files, one warning per bad file, never a password in one."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bitkey_dir.core.errors import ConfigError, SourceError
from bitkey_dir.core.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.ops.lookup import ask_sources as find_keys
from bitkey_dir.runtime.config import Settings
from bitkey_dir.sources.files.parsers import parse_bytes
from bitkey_dir.sources.files.source import DEFAULT_MAX_FILE_SIZE, FileSource
from tests.unit.helpers import (
    EXAMPLE_KEYS,
    KEY_ID,
    OTHER_KEY_ID,
    OTHER_PASSWORD,
    PASSWORD,
    SAME_PREFIX_KEY_ID,
    SAME_PREFIX_PASSWORD,
    assert_no_password,
    manage_bde_output,
    utf16_le_bom,
    windows_key_file,
)

DAMAGED_PASSWORD = "531058-303050-716079-383614-460922-106975-083446-139161"
# Every password any test writes; no warning may show one (or a 5+ digit piece of one).
SECRETS = [PASSWORD, OTHER_PASSWORD, SAME_PREFIX_PASSWORD, DAMAGED_PASSWORD]


def source(paths: Path | list[Path], base_dir: Path | None = None, **options: object) -> FileSource:
    listed = [str(p) for p in paths] if isinstance(paths, list) else str(paths)
    table = {"type": "file", "path": listed, **options}
    base = base_dir if base_dir is not None else Path("/")
    return FileSource.from_settings("share", Settings(table, "test: sources.share", base))


def by_id(text: str) -> Query:
    return Query(key_id=KeyId.parse(text))


def by_computer(text: str) -> Query:
    return Query(computer=ComputerName.parse(text))


def find(files: FileSource, query: Query) -> tuple[list[RecoveryKey], list[str]]:
    """Keys and warnings of one query; checks that no warning shows a password."""
    warnings: list[str] = []
    keys = list(files.find(query, warnings.append))
    assert_no_password(warnings, SECRETS)
    return keys, warnings


def all_keys(files: FileSource) -> tuple[list[RecoveryKey], list[str]]:
    warnings: list[str] = []
    keys = list(files.iter_keys(warnings.append))
    assert_no_password(warnings, SECRETS)
    return keys, warnings


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def key_file(folder: Path, key_id: str, password: str) -> Path:
    """A key file as Windows saves it: UTF-16 LE with BOM, named after the Key ID."""
    name = f"BitLocker Recovery Key {key_id}.TXT"
    return write(folder / name, utf16_le_bom(windows_key_file(key_id, password)))


def revealed(keys: list[RecoveryKey]) -> list[tuple[str, str | None]]:
    return [
        (str(key.key_id), key.recovery_password.reveal() if key.recovery_password else None)
        for key in keys
    ]


@pytest.fixture
def share(tmp_path: Path) -> Path:
    """A share as admins lay it out: a folder per computer, some of them deep down."""
    root = tmp_path / "share"
    key_file(root / "site-a" / "floor-2" / "PC-0042", KEY_ID, PASSWORD)
    key_file(root / "site-b" / "PC-0099", SAME_PREFIX_KEY_ID, SAME_PREFIX_PASSWORD)
    key_file(root / "KIOSK-3", OTHER_KEY_ID, OTHER_PASSWORD)
    return root


# ---------------------------------------------------------------------------------------------
# Finding keys


def test_finds_a_key_deep_in_the_tree_by_full_id(share: Path) -> None:
    keys, warnings = find(source(share), by_id(KEY_ID.lower()))
    assert warnings == []
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    path = share / "site-a" / "floor-2" / "PC-0042" / f"BitLocker Recovery Key {KEY_ID}.TXT"
    (key,) = keys
    assert key.source == "share"
    assert key.location == str(path)
    assert key.computer is None  # computer_from defaults to "none"
    assert key.created is None


def test_finds_keys_by_the_eight_digits_on_the_screen(share: Path) -> None:
    keys, warnings = find(source(share), by_id("063EA4E1"))
    assert warnings == []
    assert sorted(revealed(keys)) == [
        (KEY_ID, PASSWORD),
        (SAME_PREFIX_KEY_ID, SAME_PREFIX_PASSWORD),
    ]
    keys, _ = find(source(share), by_id("063EA4E1-220C"))
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    keys, _ = find(source(share), by_id("063EA4E2"))
    assert keys == []


def test_iter_keys_reads_every_file(share: Path) -> None:
    keys, warnings = all_keys(source(share))
    assert warnings == []
    assert sorted(revealed(keys)) == sorted(
        [
            (KEY_ID, PASSWORD),
            (SAME_PREFIX_KEY_ID, SAME_PREFIX_PASSWORD),
            (OTHER_KEY_ID, OTHER_PASSWORD),
        ]
    )


def test_computer_from_folder(share: Path) -> None:
    files = source(share, computer_from="folder")
    keys, warnings = find(files, by_computer("pc-0042"))
    assert warnings == []
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    assert keys[0].computer == "PC-0042"
    keys, _ = find(files, by_computer("PC-*"))
    assert sorted(key.computer or "" for key in keys) == ["PC-0042", "PC-0099"]
    keys, _ = find(files, by_computer("PC-0042.corp.example.com"))
    assert keys == []
    keys, _ = find(source(share), by_computer("PC-0042"))
    assert keys == []  # with computer_from = "none" the files name no computer


def test_computer_from_filename(tmp_path: Path) -> None:
    text = manage_bde_output(
        [
            ("C:", "Windows", [("Numerical Password", KEY_ID, PASSWORD)]),
            ("D:", "Data", [("Numerical Password", OTHER_KEY_ID, OTHER_PASSWORD)]),
        ]
    )
    path = write(tmp_path / "servers" / "SRV-FILE01.txt", utf16_le_bom(text))
    files = source(tmp_path / "servers", computer_from="filename")
    keys, warnings = find(files, by_computer("srv-file01"))
    assert warnings == []
    assert [(key.computer, key.location) for key in keys] == [
        ("SRV-FILE01", f"{path} (volume C: [Windows])"),
        ("SRV-FILE01", f"{path} (volume D: [Data])"),
    ]
    keys, _ = find(files, by_id(OTHER_KEY_ID))
    assert revealed(keys) == [(OTHER_KEY_ID, OTHER_PASSWORD)]
    assert keys[0].location == f"{path} (volume D: [Data])"


def test_exports_keep_their_own_computer_and_location(tmp_path: Path) -> None:
    records = [
        {
            "key_id": KEY_ID,
            "recovery_password": PASSWORD,
            "computer": "PC-0107",
            "location": "OU=X",
        },
        {"key_id": OTHER_KEY_ID, "recovery_password": OTHER_PASSWORD, "computer": "PC-0108"},
    ]
    path = write(tmp_path / "exports" / "keys.json", json.dumps({"keys": records}))
    files = source(tmp_path, computer_from="folder")
    keys, warnings = find(files, by_computer("PC-01*"))
    assert warnings == []
    assert [(key.computer, key.location, key.source) for key in keys] == [
        ("PC-0107", "OU=X", "share"),
        ("PC-0108", str(path), "share"),
    ]
    keys, _ = find(files, by_computer("exports"))
    assert keys == []


def test_a_single_file_as_the_path(share: Path) -> None:
    path = share / "KIOSK-3" / f"BitLocker Recovery Key {OTHER_KEY_ID}.TXT"
    keys, warnings = find(source(path, computer_from="folder"), by_computer("KIOSK-3"))
    assert warnings == []
    assert revealed(keys) == [(OTHER_KEY_ID, OTHER_PASSWORD)]


def test_several_paths_and_relative_paths(tmp_path: Path, share: Path) -> None:
    other = tmp_path / "usb"
    key_file(other, "19F9CBEF-0F69-44D0-AB57-F9854332C3DA", "000000-" * 7 + "000000")
    files = source([Path("share"), Path("usb")], base_dir=tmp_path)
    keys, warnings = all_keys(files)
    assert warnings == []
    assert len(keys) == 4


def test_the_example_share(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_KEYS, tmp_path / "keys")
    files = source(tmp_path / "keys", computer_from="folder")
    keys, warnings = all_keys(files)
    assert warnings == []
    expected = []
    for path in sorted((tmp_path / "keys").rglob("*")):
        if path.is_file():
            expected += [
                (str(k.key_id), path.parent.name) for k in parse_bytes(path.read_bytes()).keys
            ]
    assert expected
    assert sorted((str(key.key_id), key.computer) for key in keys) == sorted(expected)
    keys, _ = find(files, by_computer("PC-0042"))
    assert revealed(keys) == [(KEY_ID, PASSWORD)]


def test_same_key_in_two_files(share: Path) -> None:
    copy = key_file(share / "backup" / "old-laptops", KEY_ID, PASSWORD)
    files = source(share)
    keys, warnings = find(files, by_id(KEY_ID))
    assert warnings == []
    assert revealed(keys) == [(KEY_ID, PASSWORD), (KEY_ID, PASSWORD)]
    assert len({key.location for key in keys}) == 2
    assert str(copy) in {key.location for key in keys}
    # Merged, the two copies are one key and not a conflict.
    result = find_keys(by_id(KEY_ID), [files])
    assert revealed(result.keys) == [(KEY_ID, PASSWORD)]
    assert result.warnings == []


def test_same_key_id_with_two_passwords_is_a_conflict(share: Path) -> None:
    key_file(share / "backup", KEY_ID, OTHER_PASSWORD)
    result = find_keys(by_id(KEY_ID), [source(share)])
    assert sorted(revealed(result.keys)) == [(KEY_ID, OTHER_PASSWORD), (KEY_ID, PASSWORD)]
    (conflict,) = result.conflicts
    assert "different recovery passwords" in conflict.describe()
    assert_no_password([conflict.describe()], SECRETS)


# ---------------------------------------------------------------------------------------------
# Damaged passwords


@pytest.fixture
def damaged_share(share: Path) -> Path:
    key_file(share / "PC-0007", "3CEAAF30-8142-48EA-91D9-3080F9B439FC", DAMAGED_PASSWORD)
    return share


def test_damaged_password_warns_when_it_answers_the_query(damaged_share: Path) -> None:
    for files, query in [
        (source(damaged_share), by_id("3CEAAF30")),
        (source(damaged_share, computer_from="folder"), by_computer("PC-0007")),
    ]:
        keys, warnings = find(files, query)
        assert keys == []
        assert len(warnings) == 1
        assert "damaged" in warnings[0]
        assert "3CEAAF30-8142-48EA-91D9-3080F9B439FC" in warnings[0]
        assert str(damaged_share / "PC-0007") in warnings[0]


def test_damaged_password_is_silent_for_other_queries(damaged_share: Path) -> None:
    keys, warnings = find(source(damaged_share), by_id(KEY_ID))
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    assert warnings == []
    keys, warnings = find(source(damaged_share, computer_from="folder"), by_computer("PC-0042"))
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    assert warnings == []


def test_damaged_password_warns_in_an_export(damaged_share: Path) -> None:
    keys, warnings = all_keys(source(damaged_share))
    assert len(keys) == 3
    assert len(warnings) == 1
    assert "damaged" in warnings[0]


# ---------------------------------------------------------------------------------------------
# One warning per bad file, and the good keys still found

Maker = Callable[[Path], Path]


def _random_binary(folder: Path) -> Path:
    data = random.Random(7).randbytes(4096)  # noqa: S311 - test data
    return write(folder / "disk-image.bin", data)


def _startup_key(folder: Path) -> Path:
    header = b"\x7c\x00\x00\x00\x01\x00\x00\x00" + bytes(range(32)) * 3 + b"\x00" * 20
    return write(folder / "1F1EABFA-A300-4324-8470-D28B48018F5E.BEK", header)


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.txt"
    os.mkfifo(path)
    return path


def _dangling_link(folder: Path) -> Path:
    path = folder / "moved key.txt"
    path.symlink_to(folder / "no such file.txt")
    return path


def _link_to_itself(folder: Path) -> Path:
    path = folder / "loop.txt"
    path.symlink_to(path)
    return path


def _key_file_without_password(folder: Path) -> Path:
    text = windows_key_file(OTHER_KEY_ID, "").replace("Recovery Key:", "Recovery Key: lost")
    return write(folder / "BitLocker Recovery Key (copy).TXT", utf16_le_bom(text))


def _broken_export(folder: Path) -> Path:
    return write(folder / "keys.json", '{"keys": [{"key_id": "063EA4E1-')


def _password_without_id(folder: Path) -> Path:
    return write(folder / "note.txt", f"BitLocker key for the lab laptop: {OTHER_PASSWORD}\n")


# (make the bad file, what its warning says, whether the file is rejected before its text is
# read). A lookup by Key ID parses only files that contain the ID, so a text file with a
# problem but without the ID may pass silently there; every other lookup reports it.
BAD_FILES: dict[str, tuple[Maker, str, bool]] = {
    "random binary": (_random_binary, "skipped, binary data", True),
    "startup key": (_startup_key, "startup key", True),
    "fifo": (_fifo, "not a regular file", True),
    "dangling symlink": (_dangling_link, "does not exist", True),
    "symlink to itself": (_link_to_itself, "skipped", True),
    "key file without password": (_key_file_without_password, "no Key ID with a recovery", False),
    "broken export": (_broken_export, "not valid JSON", False),
    "password without id": (_password_without_id, "without a Key ID", False),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", BAD_FILES)
def test_one_warning_per_bad_file(share: Path, case: str) -> None:
    make, expected, before_parsing = BAD_FILES[case]
    bad = make(share / "KIOSK-3")
    files = source(share, computer_from="folder")
    answers = {
        "computer": find(files, by_computer("PC-0042")),
        "every key": all_keys(files),
        "full id": find(files, by_id(KEY_ID)),
        "prefix": find(files, by_id("063EA4E1")),
    }
    for lookup, (keys, warnings) in answers.items():
        assert KEY_ID in {str(key.key_id) for key in keys}, lookup
        if lookup in ("full id", "prefix") and not before_parsing:
            assert len(warnings) <= 1, (lookup, warnings)
        else:
            assert len(warnings) == 1, (lookup, warnings)
        for warning in warnings:
            assert warning.startswith(f"{bad}: ")
            assert expected in warning
            assert "\n" not in warning


def test_file_larger_than_max_file_size(share: Path) -> None:
    text = windows_key_file("19F9CBEF-0F69-44D0-AB57-F9854332C3DA", OTHER_PASSWORD)
    big = write(share / "big" / "key.txt", text + "\r\n" * 2000)  # larger than the others
    size = big.stat().st_size
    keys, warnings = find(source(share, max_file_size=size - 1), by_id("19F9CBEF"))
    assert keys == []
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{big}: skipped, larger than {size - 1} bytes")
    assert "max_file_size" in warnings[0]
    keys, warnings = find(source(share, max_file_size=size), by_id("19F9CBEF"))
    assert revealed(keys) == [("19F9CBEF-0F69-44D0-AB57-F9854332C3DA", OTHER_PASSWORD)]
    assert warnings == []


def _bytes_read_by_this_process() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture
def sparse_file(share: Path) -> Path:
    path = share / "PC-0042" / "disk.vhdx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.truncate(path, 100 * 1024 * 1024)  # sparse: takes no disk space
    return path


@pytest.mark.timeout(30)
def test_huge_file_is_skipped_with_the_default_limit(share: Path, sparse_file: Path) -> None:
    files = source(share)
    assert files.max_file_size == DEFAULT_MAX_FILE_SIZE
    started = time.perf_counter()
    keys, warnings = find(files, by_id(KEY_ID))
    assert time.perf_counter() - started < 5
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    assert warnings == [
        f"{sparse_file}: skipped, larger than 64 MiB "
        "(raise max_file_size in the source's config to read it)"
    ]


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_huge_file_is_skipped_without_reading_it(share: Path, sparse_file: Path) -> None:
    files = source(share)
    before = _bytes_read_by_this_process()
    _, warnings = find(files, by_id(KEY_ID))
    read = _bytes_read_by_this_process() - before
    assert len(warnings) == 1
    assert read < 4 * 1024 * 1024, f"read {read} bytes to skip a file"


@pytest.mark.timeout(10)
def test_symlink_loop_terminates(share: Path) -> None:
    (share / "KIOSK-3" / "up").symlink_to(share, target_is_directory=True)
    (share / "site-a" / "floor-2" / "back").symlink_to("..", target_is_directory=True)
    files = source(share)
    keys, warnings = all_keys(files)
    assert sorted(revealed(keys)) == sorted(
        [
            (KEY_ID, PASSWORD),
            (SAME_PREFIX_KEY_ID, SAME_PREFIX_PASSWORD),
            (OTHER_KEY_ID, OTHER_PASSWORD),
        ]
    )
    assert len(warnings) <= 2
    keys, _ = find(files, by_id(KEY_ID))
    assert len(keys) == 1


@pytest.mark.timeout(10)
def test_fifo_as_the_configured_path(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(SourceError, match="neither a file nor a folder"):
        find(source(pipe), by_id(KEY_ID))


@pytest.mark.timeout(10)
def test_link_to_a_fifo_is_not_called_missing(share: Path) -> None:
    os.mkfifo(share / "pipe")
    (share / "KIOSK-3" / "pipe.txt").symlink_to(share / "pipe")
    _, warnings = find(source(share), by_id(KEY_ID))
    assert len(warnings) == 2
    assert all("does not exist" not in warning for warning in warnings)


def test_json_with_a_huge_number_gives_one_warning(share: Path) -> None:
    bad = write(share / "numbers.json", '{"keys": [{"key_id": ' + "7" * 5000 + "}]}")
    keys, warnings = all_keys(source(share))
    assert len(keys) == 3
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{bad}: ")


def test_no_password_in_warnings_for_a_shifted_csv_row(share: Path) -> None:
    write(
        share / "exports" / "keys.csv",
        "source,computer,key_id,recovery_password,created\n"
        f"corp-ad,{OTHER_KEY_ID},{OTHER_PASSWORD},,\n",
    )
    _, warnings = all_keys(source(share))  # all_keys checks the warnings for passwords
    assert len(warnings) == 1


def test_lookup_by_key_id_finds_ids_in_any_case_and_braces(tmp_path: Path) -> None:
    records = [{"key_id": "{" + KEY_ID.lower() + "}", "recovery_password": PASSWORD}]
    write(tmp_path / "keys.json", json.dumps(records))
    keys, warnings = find(source(tmp_path), by_id(KEY_ID))
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    assert warnings == []


def test_lookup_by_full_id_finds_a_record_with_an_undashed_id(tmp_path: Path) -> None:
    record = {"key_id": KEY_ID.replace("-", ""), "recovery_password": PASSWORD, "computer": "PC"}
    write(tmp_path / "keys.json", json.dumps([record]))
    files = source(tmp_path)
    assert revealed(find(files, by_id("063EA4E1"))[0]) == [(KEY_ID, PASSWORD)]
    assert revealed(find(files, by_computer("PC"))[0]) == [(KEY_ID, PASSWORD)]
    assert revealed(all_keys(files)[0]) == [(KEY_ID, PASSWORD)]
    assert revealed(find(files, by_id(KEY_ID))[0]) == [(KEY_ID, PASSWORD)]


def test_unrelated_files_give_no_warning(share: Path) -> None:
    folder = share / "docs"
    write(folder / "README.md", "# Recovery keys\n\nOne folder per computer. Call 555-0100.\n")
    write(folder / "save-keys.cmd", "manage-bde -protectors -get C: > %COMPUTERNAME%.txt\r\n")
    write(folder / "settings.json", '{"retention_days": 365, "owners": ["it"]}')
    write(folder / "inventory.csv", "computer,owner\nPC-0042,J. Doe\n")
    write(folder / "events.log", f"2025-03-14 09:30 volume {{{KEY_ID}}} unlocked\n")
    write(folder / "empty.txt", b"")
    write(folder / "notes-utf16.txt", utf16_le_bom("Nothing to see here.\r\n"))
    keys, warnings = find(source(share), by_id(KEY_ID))
    assert revealed(keys) == [(KEY_ID, PASSWORD)]
    assert warnings == []
    _, warnings = all_keys(source(share))
    assert warnings == []


# ---------------------------------------------------------------------------------------------
# Configuration and unreachable paths


def test_missing_path_fails_the_source(tmp_path: Path, share: Path) -> None:
    missing = tmp_path / "unmounted"
    with pytest.raises(SourceError) as caught:
        find(source([share, missing]), by_id(KEY_ID))
    assert str(missing) in caught.value.message
    # The lookup puts the source's name in front; the message itself does not repeat it.
    assert caught.value.message.startswith("cannot open ")
    with pytest.raises(SourceError):
        all_keys(source(missing))


def test_unknown_config_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        source(tmp_path, max_size=1000)
    assert "'max_size'" in caught.value.message
    assert "test: sources.share" in caught.value.message


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"computer_from": "parent"}, "computer_from"),
        ({"computer_from": True}, "computer_from"),
        ({"max_file_size": 0}, "max_file_size"),
        ({"max_file_size": "64 MiB"}, "max_file_size"),
        ({"max_file_size": True}, "max_file_size"),
    ],
)
def test_bad_config_values_are_rejected(
    tmp_path: Path, options: dict[str, object], named: str
) -> None:
    table = {"type": "file", "path": str(tmp_path), **options}
    with pytest.raises(ConfigError, match=named):
        FileSource.from_settings("share", Settings(table, "test: sources.share", tmp_path))


@pytest.mark.parametrize("path", [[], "", [""], 42])
def test_path_is_required(path: object) -> None:
    settings = Settings({"type": "file", "path": path}, "test: sources.share", Path("/"))
    with pytest.raises(ConfigError, match="path"):
        FileSource.from_settings("share", settings)


def test_path_is_required_even_when_absent() -> None:
    with pytest.raises(ConfigError, match="path"):
        FileSource.from_settings("share", Settings({"type": "file"}, "test", Path("/")))


def test_describe_names_the_paths_and_no_secret(share: Path) -> None:
    files = source([share, share / "KIOSK-3"])
    assert files.describe() == f"{share}, {share / 'KIOSK-3'}"
    files.close()  # nothing to release, but part of the contract


def test_keys_are_values_not_views_of_the_file(share: Path) -> None:
    files = source(share)
    keys, _ = find(files, by_id(KEY_ID))
    path = Path(keys[0].location or "")
    path.write_bytes(utf16_le_bom(windows_key_file(KEY_ID, OTHER_PASSWORD)))
    assert keys[0].recovery_password == RecoveryPassword.parse(PASSWORD)
    keys, _ = find(files, by_id(KEY_ID))  # nothing is cached: the next query reads again
    assert revealed(keys) == [(KEY_ID, OTHER_PASSWORD)]
