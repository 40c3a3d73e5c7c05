"""bitkey-dir-sqlite keeps bitkey-dir's source contract, and its own promises."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from bitkey_dir_sqlite import SqliteSource

from bitkey_dir.core.errors import ConfigError
from bitkey_dir.core.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.runtime.config import Settings
from bitkey_dir.testing import SourceContract

ROWS = [
    # computer, key_id, recovery_password, created, deleted
    (
        "PC-0042",
        "063EA4E1-220C-4293-BA01-4754620A96E7",
        "531058-303050-716078-383614-460922-106975-083446-139161",
        "2025-10-01T09:30:00+02:00",
        0,
    ),
    (
        "pc-0042.corp.example.com",
        "{3ceaaf30-8142-48ea-91d9-3080f9b439fc}",
        "000011-000022-000033-000044-000055-000066-000077-000088",
        "",
        0,
    ),
    (
        "LAB-07",
        "C1ACC990-6424-450A-A36B-F9B3DDCB369D",
        "720885-000000-111111-222222-333333-444444-555555-666666",
        "2024-01-02T03:04:05Z",
        1,
    ),
    ("PC_100%", "9A4F4A9F-970A-4A4F-9074-37DEFBC7DDB7", "", None, 0),  # password not stored
    ("BROKEN", "19F9CBEF-0F69-44D0-AB57-F9854332C3DA", "123456-" * 7 + "123456", None, 0),
    ("NOID", "not a guid", "531058-303050-716078-383614-460922-106975-083446-139161", None, 0),
]


def make_database(
    path: Path, table: str = "recovery_keys", rows: Sequence[tuple[object, ...]] = ROWS
) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute(
            f"CREATE TABLE {table} (computer TEXT, key_id TEXT, recovery_password TEXT, "
            "created TEXT, deleted INTEGER, owner TEXT)"
        )
        connection.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, 'it')",  # noqa: S608 - a test's own
            rows,
        )
    connection.close()
    return path


def expected(key_id: str, password: str, computer: str, *, deleted: bool = False) -> RecoveryKey:
    return RecoveryKey(
        SourceContract.name,
        KeyId.parse(key_id),
        RecoveryPassword.parse(password),
        computer=computer,
        deleted=deleted,
    )


class TestSqliteSource(SourceContract):
    database: Path

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.database = make_database(tmp_path / "inventory.sqlite")

    def settings(self) -> dict[str, object]:
        return {"type": "sqlite", "path": str(self.database)}

    def failing_settings(self) -> dict[str, object]:
        return {"type": "sqlite", "path": str(self.database.with_name("missing.sqlite"))}

    def expected_keys(self) -> Sequence[RecoveryKey]:
        return [
            expected(ROWS[0][1], ROWS[0][2], "PC-0042"),
            expected(ROWS[1][1], ROWS[1][2], "pc-0042.corp.example.com"),
            expected(ROWS[2][1], ROWS[2][2], "LAB-07", deleted=True),
        ]


def source(database: Path, **table: object) -> SqliteSource:
    settings = Settings({"type": "sqlite", "path": str(database), **table}, "test", Path())
    return SqliteSource.from_settings("inventory", settings)


def test_a_damaged_row_is_skipped_with_a_warning_that_holds_no_digits(tmp_path: Path) -> None:
    warnings: list[str] = []
    keys = list(source(make_database(tmp_path / "db.sqlite")).iter_keys(warnings.append))
    held = {str(key.key_id)[:8] for key in keys}
    assert held == {"063EA4E1", "3CEAAF30", "C1ACC990", "9A4F4A9F"}
    assert len(warnings) == 2
    assert "19F9CBEF" in warnings[0]
    assert "damaged recovery password" in warnings[0]
    assert "123456" not in " ".join(warnings)


def test_like_wildcards_in_a_name_are_literal(tmp_path: Path) -> None:
    found = source(make_database(tmp_path / "db.sqlite")).find(
        Query(computer=ComputerName.parse("PC_100%")), lambda message: None
    )
    assert [key.computer for key in found] == ["PC_100%"]
    assert found[0].recovery_password is None  # the row stores none: shown as not readable


def test_a_table_name_is_never_sql(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="table"):
        source(tmp_path / "db.sqlite", table="keys; DROP TABLE keys")


def test_another_table_name(tmp_path: Path) -> None:
    database = make_database(tmp_path / "db.sqlite", table="bitlocker")
    keys = list(source(database, table="bitlocker").iter_keys(lambda message: None))
    assert len(keys) == 4


def test_a_name_is_matched_as_bitkey_dirs_own_sources_match_it(tmp_path: Path) -> None:
    named = [
        ("ÅSA-PC$", *ROWS[0][1:3], None, 0),  # the sAMAccountName form, not ASCII
        ("LAB-07.corp.example.com", *ROWS[2][1:3], None, 0),
    ]
    inventory = source(make_database(tmp_path / "db.sqlite", rows=named))
    for asked, computer in [("åsa-pc", "ÅSA-PC$"), ("lab-07", "LAB-07.corp.example.com")]:
        found = inventory.find(Query(computer=ComputerName.parse(asked)), lambda message: None)
        assert [key.computer for key in found] == [computer]
