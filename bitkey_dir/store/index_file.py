"""What the Key ID index's path holds, told from the file's first bytes, before SQLite opens it.

``BITKEY_DIR_INDEX`` may point anywhere, and ``index clear`` removes the file: so only a
regular file that is recognisably a bitkey-dir index is ever opened for writing or removed.
An index says so in its SQLite header (``application_id``, offset 68); one written by the
previous version (no application ID yet) by its format number (``user_version``, offset 60)
and its own tables' definitions on the first pages. Both are read from the raw bytes, so a
damaged index (corrupt pages, dropped tables) is still known as one and may be cleared.

A symbolic link (dangling or not), a named pipe, a device, a folder, a file of another
program, an SQLite database of another program: never opened by SQLite, never removed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from bitkey_dir.core.errors import InputError
from bitkey_dir.runtime import platform

APPLICATION_ID: Final = 0x424B4958  # "BKIX": PRAGMA application_id of every index written now
LEGACY_VERSION: Final = 1  # user_version of indexes written before the application ID
_MAGIC: Final = b"SQLite format 3\x00"
_FIRST_PAGES: Final = 64 * 1024  # where SQLite keeps the schema of a database this small
_LEGACY_TABLES: Final = (
    b"CREATE TABLE sources (",
    b"CREATE TABLE keys (",
    b"CREATE TABLE staged (",
)

Kind = Literal["missing", "empty", "index", "foreign", "special"]


@dataclass(frozen=True)
class Inspected:
    """What is at the path: ``missing``; an ``empty`` regular file; a bitkey-dir ``index``
    (whole or damaged); a regular file that is something else (``foreign``); or no regular
    file at all (``special``: a link, a pipe, a device, a folder)."""

    path: Path
    kind: Kind
    what: str = ""  # for foreign and special: what it is, in a few words
    legacy: bool = False  # an index written before the application ID

    def refusal(self, doing: str) -> InputError:
        """Why ``doing`` is refused at this path: one line, naming it."""
        return InputError(
            f"{doing}: {self.path} is {self.what}, not a bitkey-dir Key ID index; point "
            "BITKEY_DIR_INDEX at a file of its own (it is left as it is), or use --no-index"
        )


def inspect(path: Path) -> Inspected:
    """What ``path`` holds, without following a link, waiting on a pipe or writing anything.

    Raises OSError when the path cannot be examined (a folder on the way may not be read).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return Inspected(path, "missing")
    if not stat.S_ISREG(info.st_mode):
        return Inspected(path, "special", _special(info.st_mode))
    if info.st_size == 0:
        return Inspected(path, "empty")
    fd = platform.open_file(path, os.O_RDONLY)  # no link followed, no wait on a pipe
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the lstat
            return Inspected(path, "special", "not a regular file")
        head = os.read(fd, _FIRST_PAGES)
    finally:
        os.close(fd)
    return _of(path, head)


def _of(path: Path, head: bytes) -> Inspected:
    if not head.startswith(_MAGIC) or len(head) < 100:
        return Inspected(path, "foreign", "a file that is not an SQLite database")
    version = int.from_bytes(head[60:64], "big")
    application = int.from_bytes(head[68:72], "big")
    if application == APPLICATION_ID:
        return Inspected(path, "index")
    if application == 0 and version == LEGACY_VERSION and all(t in head for t in _LEGACY_TABLES):
        return Inspected(path, "index", legacy=True)
    return Inspected(path, "foreign", "an SQLite database of another program")


def _special(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def remove(inspected: Inspected) -> bool:
    """Remove an index file (and SQLite's journal beside it, if that is a regular file);
    False for anything that is not an index. Raises OSError."""
    if inspected.kind != "index":
        return False
    journal = inspected.path.with_name(inspected.path.name + "-journal")
    inspected.path.unlink()
    try:
        if stat.S_ISREG(os.lstat(journal).st_mode):
            journal.unlink()
    except FileNotFoundError:
        pass
    return True
