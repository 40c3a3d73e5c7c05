"""A bitkey-dir source for BitLocker recovery keys kept in an SQLite database.

Config (``type = "sqlite"``):

``path``   the database file, opened read-only (relative paths: from the config's folder)
``table``  the table holding the keys (default ``recovery_keys``)

The table has the columns ``computer``, ``key_id``, ``recovery_password``, ``created`` and
``deleted``. Lookups by Key ID are narrowed in SQL; lookups by computer name read every row
and keep what the query itself accepts (``FindsByScanning``), so the answer is exactly what
bitkey-dir's own sources would give.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Final
from urllib.parse import quote

from bitkey_dir.core.errors import InputError, SourceError
from bitkey_dir.core.model import KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.runtime.config import Settings
from bitkey_dir.sources.base import FindsByScanning, Warn

__all__ = ["SqliteSource"]

_TABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_COLUMNS: Final = "computer, key_id, recovery_password, created, deleted"
# The Key ID as bare upper-case hex, however the row spells it (braces, dashes, case).
_HEX_ID: Final = "upper(replace(replace(replace(key_id, '{', ''), '}', ''), '-', ''))"
Row = tuple[object, object, object, object, object]


class SqliteSource(FindsByScanning):
    """Keys from one table of an SQLite database; a connection per operation."""

    type_name: ClassVar[str] = "sqlite"

    def __init__(self, name: str, path: Path, table: str = "recovery_keys") -> None:
        self.name = name
        self.path = path
        self.table = table

    @classmethod
    def from_settings(cls, name: str, settings: Settings) -> SqliteSource:
        paths = settings.path_list("path")
        if len(paths) != 1:
            raise settings.error("path", "the database file")
        table = settings.string("table", "recovery_keys") or "recovery_keys"
        if not _TABLE.fullmatch(table):
            raise settings.error("table", "a table name (letters, digits and _)")
        source = cls(name, paths[0], table)
        settings.reject_unknown()
        return source

    def __repr__(self) -> str:
        return f"SqliteSource({self.name!r}, {str(self.path)!r}, {self.table!r})"

    def describe(self) -> str:
        return f"{self.path} (table {self.table})"

    def close(self) -> None:
        """Each operation opens and closes its own connection."""

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        if query.key_id is None:
            # A name is matched by the query itself: SQLite's LIKE folds only ASCII case and
            # knows neither a trailing $ nor a short name against a DNS name.
            return super().find(query, warn)
        # SQLite compares the digits of each row without a key being built from it: on
        # 100 000 rows this took 0.1 s where reading them all took 1.5 s, and the Key ID
        # index reads every key it names again this way.
        rows = self._select(f"WHERE {_HEX_ID} LIKE ?", (query.key_id.hex + "%",))  # hex only
        keys = (self._key(row, warn) for row in rows)
        return [key for key in keys if key is not None and query.matches(key)]

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for row in self._select("ORDER BY rowid", ()):
            key = self._key(row, warn)
            if key is not None:
                yield key

    def _select(self, clause: str, arguments: tuple[str, ...]) -> Iterator[Row]:
        uri = f"file:{quote(str(self.path))}?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open {self.path} ({exc})") from None
        try:
            cursor = connection.execute(
                f"SELECT {_COLUMNS} FROM {self.table} {clause}",  # noqa: S608 - checked name
                arguments,
            )
            yield from cursor
        except sqlite3.Error as exc:
            raise SourceError(f"cannot read {self.path} ({exc})") from None
        finally:
            connection.close()

    def _key(self, row: Row, warn: Warn) -> RecoveryKey | None:
        computer, raw_id, raw_password, created, deleted = row
        try:
            key_id = KeyId.parse(str(raw_id))
        except InputError:
            warn(f"{self.path}: skipped a row whose key_id is not a Key ID")
            return None
        if not key_id.is_full:
            warn(f"{self.path}: skipped Key ID {key_id}, which is not a full GUID")
            return None
        password = None
        if raw_password:
            try:
                password = RecoveryPassword.parse(str(raw_password))
            except InputError as exc:  # the message never holds the digits
                warn(f"{self.path}: Key ID {key_id}: damaged recovery password ({exc}); not used")
                return None
        return RecoveryKey(
            source=self.name,
            key_id=key_id,
            recovery_password=password,
            computer=str(computer) if computer else None,
            created=_timestamp(created),
            location=f"{self.path} ({self.table})",
            deleted=bool(deleted),
        )


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        created = datetime.fromisoformat(value)
    except ValueError:
        return None
    return created if created.utcoffset() is not None else None
