"""The Key ID index: where each key is, so that 8 digits find a key without listing a tenant.

An embedded SQLite file in the state folder (mode 0600, ``BITKEY_DIR_INDEX`` overrides the
path) holds, per configured source, each key's ID, computer or device name, device ID,
creation date, location and deleted flag. It never holds a recovery password: the rows are
built from :class:`~bitkey_dir.core.model.KeyEntry`, which has no field for one.

The index narrows a search, it never answers one: a lookup reads each key it names from the
directory by its full ID (see ``ops/lookup.py``). Each source's rows carry the source's
``describe()`` line as a fingerprint, so an index built for another directory under the same
name is never used.

One :class:`KeyIndex` belongs to one thread (SQLite connections are not shared): operations
use it in the thread that runs them, never from the workers that ask sources.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bitkey_dir.core.env import INDEX_ENV
from bitkey_dir.core.errors import BitkeyError, SourceError
from bitkey_dir.core.model import KeyEntry, KeyId
from bitkey_dir.runtime import platform
from bitkey_dir.store import index_file, index_passes
from bitkey_dir.store.index_passes import PassesMixin, PassState, ended, record_pass

_SCHEMA_VERSION: Final = 2  # 1: before the passes and covered tables
_BATCH: Final = 2000  # rows per executemany: memory stays flat whatever the source's size
_BUSY_MS: Final = 10_000  # another run refreshing the same index holds its lock this long at most
_AFTER_HEX: Final = "G"  # sorts after every upper-case hex digit: the end of a prefix's range

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    refreshed REAL NOT NULL,     -- seconds since the epoch, when the last refresh ended
    took REAL NOT NULL           -- seconds that refresh took
);
CREATE TABLE IF NOT EXISTS keys (
    source TEXT NOT NULL,
    key_id TEXT NOT NULL,        -- 32 upper-case hex digits, no dashes
    computer TEXT,
    computer_key TEXT,           -- the name folded for matching
    device_id TEXT,
    created TEXT,                -- ISO 8601 with offset
    location TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, key_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staged (  -- a refresh in progress: moved into keys when it ends
    token TEXT NOT NULL,
    source TEXT NOT NULL,
    key_id TEXT NOT NULL,
    computer TEXT,
    computer_key TEXT,
    device_id TEXT,
    created TEXT,
    location TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (token, source, key_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_by_id ON keys (key_id);
CREATE INDEX IF NOT EXISTS keys_by_computer ON keys (source, computer_key);
"""


def index_path() -> Path:
    override = os.environ.get(INDEX_ENV)
    if override:
        return Path(override)
    from bitkey_dir.runtime.config import state_dir

    return state_dir() / "key-index.sqlite3"


@dataclass(frozen=True)
class SourceState:
    """One source's part of the index: when it was last refreshed, how, and what it holds."""

    source: str
    fingerprint: str
    refreshed: datetime
    took: float
    keys: int
    deleted: int
    passes: dict[str, PassState] = field(default_factory=dict)  # by kind (index_passes)

    def age(self, now: float | None = None) -> float:
        """Seconds since the last refresh of any kind (never negative)."""
        return max(0.0, (now if now is not None else time.time()) - self.refreshed.timestamp())

    def every_device_age(self, now: float | None = None) -> float:
        """Seconds since the last refresh that listed every device's keys (full or by
        device): a new key on a device that did not change is known from then on."""
        ages = [self.passes[n].age(now) for n in ("full", "devices") if n in self.passes]
        return min(ages) if ages else self.age(now)


@dataclass(frozen=True)
class Candidate:
    """A key the index places in a source: to be read from the directory by its full ID."""

    source: str
    entry: KeyEntry


class KeyIndex(PassesMixin):
    """The index file, opened by :func:`open_index`; close it (or use ``with``) when done."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    def __enter__(self) -> KeyIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # -- reading -----------------------------------------------------------------------

    def state(self, source: str, fingerprint: str | None = None) -> SourceState | None:
        """The source's state; None if it was never listed, or was listed as another
        directory (a different fingerprint)."""
        states = self._states(source)
        if not states:
            return None
        found = states[0]
        if fingerprint is not None and found.fingerprint != fingerprint:
            return None
        return found

    def states(self) -> list[SourceState]:
        """Every source in the index, by name."""
        return self._states(None)

    def _states(self, source: str | None) -> list[SourceState]:
        with self._reading():
            return self._read_states(source)

    def _read_states(self, source: str | None) -> list[SourceState]:
        rows = self._db.execute(
            "SELECT s.source, s.fingerprint, s.refreshed, s.took, "
            "  (SELECT count(*) FROM keys k WHERE k.source = s.source), "
            "  (SELECT count(*) FROM keys k WHERE k.source = s.source AND k.deleted) "
            "FROM sources s WHERE ? IS NULL OR s.source = ? ORDER BY s.source",
            (source, source),
        ).fetchall()
        return [
            SourceState(
                source=row[0],
                fingerprint=row[1],
                refreshed=datetime.fromtimestamp(row[2], UTC),
                took=row[3],
                keys=row[4],
                deleted=row[5],
                passes=index_passes.read_passes(self._db, row[0]),
            )
            for row in rows
        ]

    def candidates(self, source: str, key_id: KeyId) -> list[KeyEntry]:
        """The source's keys whose ID is or starts with ``key_id``: a range scan of the
        ID index, so as fast for 8 digits in a million keys as for a full ID."""
        low = key_id.hex
        high = low if key_id.is_full else low + _AFTER_HEX
        sql = (
            "SELECT key_id, computer, device_id, created, location, deleted FROM keys "
            "WHERE source = ? AND key_id >= ? AND key_id <= ? ORDER BY key_id"
        )
        with self._reading():
            return [_entry(row) for row in self._db.execute(sql, (source, low, high))]

    # -- writing -----------------------------------------------------------------------

    def replace(self, source: str, fingerprint: str, entries: Iterable[KeyEntry]) -> SourceState:
        """Replace the source's rows with ``entries`` (streamed): all or nothing, so a
        listing that fails half-way leaves the previous index as it was."""
        started = time.monotonic()
        token = self.new_token()
        try:
            for batch in _batches(entries):
                self.stage(token, source, batch)
        except BaseException:
            self.unstage(token)
            raise
        return self.commit(token, source, fingerprint, time.monotonic() - started)

    @staticmethod
    def new_token() -> str:
        return os.urandom(8).hex()

    def stage(self, token: str, source: str, entries: Sequence[KeyEntry]) -> None:
        """Keep part of a listing aside, in a short transaction of its own: several
        sources listed at once, or another run looking a key up, never wait long."""
        rows = [(token, *_row(source, entry)) for entry in entries]
        with self._transaction():
            self._db.executemany(_STAGE, rows)

    def commit(self, token: str, source: str, fingerprint: str, took: float) -> SourceState:
        """Make the listing staged under ``token`` the source's index, in one transaction."""
        with self._transaction():
            self._db.execute("DELETE FROM keys WHERE source = ?", (source,))
            self._db.execute(index_passes.PROMOTE_STAGED, (token, source))
            self._db.execute("DELETE FROM staged WHERE token = ? AND source = ?", (token, source))
            self._db.execute(
                "INSERT OR REPLACE INTO sources (source, fingerprint, refreshed, took) "
                "VALUES (?, ?, ?, ?)",
                (source, fingerprint, time.time(), took),
            )
            keys = self._db.execute("SELECT count(*) FROM keys WHERE source = ?", (source,))
            record_pass(self._db, source, ended("full", took, keys.fetchone()[0], None, None))
        return self.state(source) or impossible(source)

    def unstage(self, token: str, source: str | None = None) -> None:
        """Drop a listing that did not finish."""
        with self._transaction():
            for table in ("staged", "covered"):
                self._db.execute(
                    f"DELETE FROM {table} WHERE token = ? AND (? IS NULL OR source = ?)",  # noqa: S608 - two names
                    (token, source, source),
                )

    def remember(self, source: str, fingerprint: str, entries: Sequence[KeyEntry]) -> int:
        """Add or update what a live search saw, in a source that is already indexed (as
        the same directory); the listing date is left alone. The number of rows written."""
        if not entries or self.state(source, fingerprint) is None:
            return 0
        with self._transaction():
            self._db.executemany(_UPSERT, [_row(source, entry) for entry in entries])
        return len(entries)

    def forget(self, source: str, key_ids: Iterable[KeyId]) -> int:
        """Drop keys the directory no longer has; the number dropped."""
        ids = [(source, key_id.hex) for key_id in key_ids]
        if not ids:
            return 0
        with self._transaction():
            cursor = self._db.executemany("DELETE FROM keys WHERE source = ? AND key_id = ?", ids)
        return cursor.rowcount

    def clear(self, sources: Sequence[str] = ()) -> list[str]:
        """Drop the named sources (every source when none is named); the names dropped.
        Raises DamagedIndex."""
        names = [state.source for state in self.states()]
        dropped = [name for name in names if not sources or name in sources]
        with self._transaction():
            for name in dropped:
                self._db.execute("DELETE FROM keys WHERE source = ?", (name,))
                self._db.execute("DELETE FROM sources WHERE source = ?", (name,))
                self._db.execute("DELETE FROM passes WHERE source = ?", (name,))
            if not sources:
                self._db.execute("DELETE FROM staged")
                self._db.execute("DELETE FROM covered")
        if not sources:
            with self._reading():
                self._db.execute("VACUUM")
        return dropped

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """What a damaged file gives back, said as one DamagedIndex naming the file."""
        try:
            yield
        except _DAMAGE as exc:
            raise _problem(self.path, exc) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
        except sqlite3.Error as exc:
            raise _problem(self.path, exc) from None


_STAGE: Final = (
    "INSERT OR REPLACE INTO staged (token, source, key_id, computer, computer_key, device_id, "
    "created, location, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT: Final = (
    "INSERT OR REPLACE INTO keys (source, key_id, computer, computer_key, device_id, created, "
    "location, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class DamagedIndex(SourceError):
    """The index file is a bitkey-dir index that cannot be used (damaged, or written by a
    newer version): ``index clear`` removes it, and lookups search the directories."""


def open_index(path: Path | None = None, *, create: bool = False) -> KeyIndex | None:
    """The index at ``path`` (default :func:`index_path`); None when there is none and
    ``create`` is false. The file is created 0600 in a private folder.

    Raises InputError (exit 2) naming the path when it holds anything but an index (a link,
    a pipe, a device, another program's file: never opened, never written), and
    DamagedIndex (exit 4) for an index that cannot be used.
    """
    path = path or index_path()
    try:
        found = index_file.inspect(path)
    except OSError as exc:
        raise SourceError(
            f"the Key ID index {path} cannot be examined ({_detail(exc)}); use --no-index"
        ) from None
    if found.kind in ("special", "foreign"):
        raise found.refusal("the Key ID index cannot be used")
    if found.kind == "missing" and not create:
        return None
    if found.kind == "empty" and not create:
        return None  # not an index yet: nothing to read, and nothing is written to it
    try:
        if found.kind == "missing":
            _create_private(path)
        _refuse_planted(path)
        connection = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise SourceError(
            f"the Key ID index {path} cannot be opened ({_detail(exc)}); use --no-index"
        ) from None
    try:
        _prepare(path, connection, found)
    except sqlite3.Error as exc:
        connection.close()
        raise _problem(path, exc) from None
    except BaseException:
        connection.close()
        raise
    return KeyIndex(path, connection)


def _prepare(path: Path, connection: sqlite3.Connection, found: index_file.Inspected) -> None:
    """A new index gets its schema and marks; one of the previous version its mark; one
    that lost a table is damaged (no table is made again behind the person's back)."""
    connection.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    if found.kind != "index":  # a file just created, or empty: ours to initialise
        connection.executescript(
            _SCHEMA
            + index_passes.SCHEMA
            + f"PRAGMA user_version = {_SCHEMA_VERSION};"
            + f"PRAGMA application_id = {index_file.APPLICATION_ID};"
        )
        return
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == 1:  # the previous format: its listings become full ones
        connection.executescript(
            "BEGIN IMMEDIATE;"
            + "".join(index_passes.migrate_v1(connection))
            + f"PRAGMA user_version = {_SCHEMA_VERSION}; COMMIT;"
        )
        version = _SCHEMA_VERSION
    if version != _SCHEMA_VERSION:
        raise DamagedIndex(
            f"the Key ID index {path} was written by a newer bitkey-dir (format {version}): "
            "run bitkey-dir index clear, or use --no-index"
        )
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    missing = sorted({"sources", "keys", "staged", "passes", "covered"} - tables)
    if missing:
        raise DamagedIndex(
            f"the Key ID index {path} is damaged (no table {', '.join(missing)}): run "
            "bitkey-dir index clear, or use --no-index"
        )
    if found.legacy:
        connection.execute(f"PRAGMA application_id = {index_file.APPLICATION_ID}")


def remove_index(path: Path | None = None) -> bool:
    """Delete the index file (and SQLite's journal beside it): lookups search the
    directories until the next refresh. False when there is no file (or an empty one,
    which holds no index and is left alone). Raises InputError for a path that holds
    anything but an index (it is left as it is), SourceError when it cannot be removed."""
    path = path or index_path()
    try:
        found = index_file.inspect(path)
        if found.kind in ("special", "foreign"):
            raise found.refusal("not clearing the Key ID index")
        return index_file.remove(found)
    except OSError as exc:
        raise SourceError(f"the Key ID index {path} cannot be removed ({_detail(exc)})") from None


def _create_private(path: Path) -> None:
    from bitkey_dir.runtime.config import private_folder

    private_folder(path.parent)
    # A link another user placed there meanwhile is never written through.
    platform.create_private_file(path)


def _refuse_planted(path: Path) -> None:
    """Refuse an index, or a journal SQLite would write beside it (and replay when it looks
    unfinished), that another user put in a folder everybody may write to: what is written
    there would be theirs to read and to change."""
    for part in (path, path.with_name(path.name + "-journal")):
        if not part.exists():
            continue
        fd = platform.open_file(part, os.O_RDONLY)
        try:
            owner = platform.owned_by_another(fd, part)
        finally:
            os.close(fd)
        if owner is not None and platform.everybody_may_write(part.parent):
            raise SourceError(
                f"the Key ID index {part} belongs to another user ({owner}) in a folder every "
                "user may write to: remove it, set BITKEY_DIR_INDEX to a folder of your own, "
                "or use --no-index"
            )


def _detail(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, sqlite3.Error | BitkeyError):
        return str(exc)
    return type(exc).__name__  # a value SQLite handed back that is not what was written


def _problem(path: Path, exc: BaseException) -> DamagedIndex:
    """An index (this file is one: :func:`open_index` checked) that fails when used."""
    return DamagedIndex(
        f"the Key ID index {path} is damaged ({_detail(exc)}): run bitkey-dir index clear, "
        "or use --no-index"
    )


# What a damaged index gives back: SQLite's errors, and values that are not what was written
# (a date that does not parse, a number where a name was, a Key ID that is not one).
_DAMAGE: Final = (sqlite3.Error, ValueError, TypeError, OverflowError, OSError, BitkeyError)


def _fold(name: str) -> str:
    return name.casefold()


def _row(source: str, entry: KeyEntry) -> tuple[object, ...]:
    created = entry.created.isoformat() if entry.created is not None else None
    computer_key = _fold(entry.computer) if entry.computer is not None else None
    return (
        source,
        entry.key_id.hex,
        entry.computer,
        computer_key,
        entry.device_id,
        created,
        entry.location,
        int(entry.deleted),
    )


def _entry(row: tuple[object, ...]) -> KeyEntry:
    key_id, computer, device_id, created, location, deleted = row
    return KeyEntry(
        key_id=KeyId(str(key_id)),
        computer=computer if isinstance(computer, str) else None,
        device_id=device_id if isinstance(device_id, str) else None,
        created=datetime.fromisoformat(created) if isinstance(created, str) else None,
        location=location if isinstance(location, str) else None,
        deleted=bool(deleted),
    )


def _batches(entries: Iterable[KeyEntry]) -> Iterator[list[KeyEntry]]:
    batch: list[KeyEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def impossible(source: str) -> SourceState:
    raise SourceError(f"the Key ID index lost the rows of {source} it had just written")
