"""How each part of a source's Key ID index was last refreshed, and the refreshes that
replace only the devices they listed.

Three kinds of refresh (``PASSES``) keep an Entra source's part of the index:

- ``full``: the whole tenant's key listing, page after page; the only one that sees keys
  whose device is not in the device list (deleted, or never listed). Replaces every row.
- ``devices``: every device in the device list, each device's keys listed on its own, many
  at once. Replaces the rows of the devices it listed; keeps the others as they were.
- ``changes``: only the devices that changed since the last round (a cursor the directory
  gave); a new key on a device that did not change is not seen. Replaces the rows of the
  devices it listed.

Each refresh records when it ended, how long it took and what it listed; the ``devices``
and ``changes`` refreshes also the cursor of the next round of changes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

# The rows a listing staged under a token become the index's (key_index.commit, and the
# passes that replace some devices only).
PROMOTE_STAGED: Final = (
    "INSERT OR REPLACE INTO keys (source, key_id, computer, computer_key, device_id, created, "
    "location, deleted) SELECT source, key_id, computer, computer_key, device_id, created, "
    "location, deleted FROM staged WHERE token = ? AND source = ?"
)

Pass = Literal["full", "devices", "changes"]
PASSES: Final[tuple[Pass, ...]] = ("full", "devices", "changes")

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS passes (
    source TEXT NOT NULL,
    pass TEXT NOT NULL,          -- full, devices or changes
    finished REAL NOT NULL,      -- seconds since the epoch
    took REAL NOT NULL,          -- seconds
    devices INTEGER,             -- devices listed (NULL for a full listing)
    keys INTEGER NOT NULL,       -- keys listed
    cursor TEXT,                 -- where the next round of device changes starts
    PRIMARY KEY (source, pass)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS covered (  -- devices a refresh in progress listed
    token TEXT NOT NULL,
    source TEXT NOT NULL,
    device_id TEXT NOT NULL,     -- lower case
    listed INTEGER NOT NULL,     -- 1: its rows are replaced; 0: kept (it could not be listed)
    PRIMARY KEY (token, source, device_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class PassState:
    """One kind of refresh of one source, as it last ended."""

    name: str
    finished: datetime
    took: float
    devices: int | None
    keys: int
    cursor: str | None

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.finished.timestamp())


class PassesMixin:
    """What KeyIndex does with the passes: the connection and transactions are its own."""

    _db: sqlite3.Connection
    _transaction: Callable[[], AbstractContextManager[None]]
    _reading: Callable[[], AbstractContextManager[None]]

    def passes(self, source: str) -> dict[str, PassState]:
        with self._reading():
            return read_passes(self._db, source)

    def cursor(self, source: str) -> str | None:
        """The cursor of the most recent refresh that left one."""
        kept = [p for p in self.passes(source).values() if p.cursor]
        return max(kept, key=lambda p: p.finished).cursor if kept else None

    def drop_cursor(self, source: str) -> None:
        """The directory no longer accepts it: the next refresh lists every device."""
        with self._transaction():
            self._db.execute("UPDATE passes SET cursor = NULL WHERE source = ?", (source,))

    def cover(self, token: str, source: str, devices: Sequence[tuple[str, bool]]) -> None:
        """Devices a refresh found, each with whether its keys were listed (in full):
        the rows of those are replaced when it commits, the others' kept."""
        rows = [(token, source, device_id.lower(), int(listed)) for device_id, listed in devices]
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO covered VALUES (?, ?, ?, ?)", rows)

    def commit_devices(self, token: str, source: str, fingerprint: str, done: PassState) -> None:
        """Replace the rows of the devices listed under ``token`` with what was staged, in
        one transaction; every other row stays. After a round over every device, a key
        whose device was not in the list loses the device's name, as in a full listing."""
        with self._transaction():
            for table in ("keys", "passes"):  # what was indexed under this name elsewhere
                self._db.execute(
                    f"DELETE FROM {table} WHERE source = ? AND EXISTS (SELECT 1 FROM sources "  # noqa: S608 - two names
                    "WHERE source = ? AND fingerprint != ?)",
                    (source, source, fingerprint),
                )
            self._db.execute(
                "DELETE FROM keys WHERE source = ? AND lower(device_id) IN "
                "(SELECT device_id FROM covered WHERE token = ? AND source = ? AND listed)",
                (source, token, source),
            )
            self._db.execute(PROMOTE_STAGED, (token, source))
            if done.name == "devices":
                self._db.execute(
                    "UPDATE keys SET computer = NULL, computer_key = NULL WHERE source = ? "
                    "AND computer IS NOT NULL AND (device_id IS NULL OR lower(device_id) NOT IN "
                    "(SELECT device_id FROM covered WHERE token = ? AND source = ?))",
                    (source, token, source),
                )
            self._db.execute("DELETE FROM staged WHERE token = ? AND source = ?", (token, source))
            self._db.execute("DELETE FROM covered WHERE token = ? AND source = ?", (token, source))
            self._db.execute(
                "INSERT OR REPLACE INTO sources (source, fingerprint, refreshed, took) "
                "VALUES (?, ?, ?, ?)",
                (source, fingerprint, done.finished.timestamp(), done.took),
            )
            record_pass(self._db, source, done)


def record_pass(db: sqlite3.Connection, source: str, done: PassState) -> None:
    db.execute(
        "INSERT OR REPLACE INTO passes (source, pass, finished, took, devices, keys, cursor) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            source,
            done.name,
            done.finished.timestamp(),
            done.took,
            done.devices,
            done.keys,
            done.cursor,
        ),
    )


def read_passes(db: sqlite3.Connection, source: str) -> dict[str, PassState]:
    rows = db.execute(
        "SELECT pass, finished, took, devices, keys, cursor FROM passes WHERE source = ?",
        (source,),
    ).fetchall()
    return {row[0]: _state(row) for row in rows if row[0] in PASSES}


def _state(row: tuple[object, ...]) -> PassState:
    name, finished, took, devices, keys, cursor = row
    return PassState(
        name=str(name),
        finished=datetime.fromtimestamp(float(str(finished)), UTC),
        took=float(str(took)),
        devices=int(str(devices)) if devices is not None else None,
        keys=int(str(keys)),
        cursor=cursor if isinstance(cursor, str) else None,
    )


def ended(name: Pass, took: float, keys: int, devices: int | None, cursor: str | None) -> PassState:
    """A refresh that ends now."""
    return PassState(name, datetime.now(UTC), took, devices, keys, cursor)


def migrate_v1(db: sqlite3.Connection) -> Iterator[str]:
    """Statements that make a format-1 index a format-2 one: its listings were full ones."""
    yield SCHEMA
    yield (
        "INSERT OR IGNORE INTO passes (source, pass, finished, took, devices, keys, cursor) "
        "SELECT s.source, 'full', s.refreshed, s.took, NULL, "
        "(SELECT count(*) FROM keys k WHERE k.source = s.source), NULL FROM sources s;"
    )
