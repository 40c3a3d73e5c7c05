"""Finding and reading the files below a file source's paths, as lookups and doctor both do.

Folders are walked depth first in name order, each folder once (a link back up the tree is
not followed twice), and files are read only when they are regular files no larger than the
limit, opened without blocking. What cannot be listed or read is handed to the caller, not
raised: a key may be in it, and the caller decides whether that is a warning or a failure.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bitkey_dir.core.errors import SourceError
from bitkey_dir.runtime import platform
from bitkey_dir.sources.base import Warn

# Told each path that could not be listed or read, and why.
Unreadable = Callable[[str, str], None]


class NotRegular(Exception):
    """Not a regular file (a FIFO, a device, a socket): never read."""


class TooBig(Exception):
    """Larger than the source's max_file_size."""


def files(paths: Sequence[Path], warn: Warn, unreadable: Unreadable) -> Iterator[str]:
    """Every file that is or is below one of ``paths``. A path that cannot be opened, or is
    neither a file nor a folder, is an error; anything below it that cannot be used is a
    warning (links to nothing, special files) or is told to ``unreadable``."""
    seen: set[tuple[int, int]] = set()
    for root in paths:
        try:
            info = root.stat()
        except OSError as exc:
            raise SourceError(
                f"cannot open {root} ({exc.strerror or type(exc).__name__})"
            ) from None
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(str(root), seen, warn, unreadable)
        elif stat.S_ISREG(info.st_mode):
            yield str(root)
        else:
            raise SourceError(f"{root} is neither a file nor a folder")


def read(path: str, max_size: int) -> bytes:
    """The file's bytes; opened without blocking (a FIFO put in its place must not hang
    the lookup), its size judged before reading: on a network share, reading is the cost.
    Raises NotRegular, TooBig, or the OSError of a file that cannot be read."""
    fd = os.open(path, platform.os_flags(os.O_RDONLY, follow_links=True))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular
        if info.st_size > max_size:
            raise TooBig
        chunks, left = [], max_size + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_size:
        raise TooBig
    return data


def _walk(
    top: str, seen: set[tuple[int, int]], warn: Warn, unreadable: Unreadable
) -> Iterator[str]:
    """Every file below ``top``, depth first in name order. A loop, not recursion: a
    share may be nested deeper than Python's recursion allows."""
    first = _list(top, seen, unreadable)
    stack = [iter(first)] if first is not None else []
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        try:
            if entry.is_dir():
                below = _list(entry.path, seen, unreadable)
                if below is not None:
                    stack.append(iter(below))
            elif entry.is_file():
                yield entry.path
            elif entry.is_symlink() and not os.path.exists(entry.path):
                warn(f"{entry.path}: skipped, a link to something that does not exist")
            else:
                warn(f"{entry.path}: skipped, not a regular file")
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link in a circle leads to no file
                warn(f"{entry.path}: skipped, a link that leads back to itself")
            else:
                unreadable(entry.path, exc.strerror or "unknown")


def _list(
    folder: str, seen: set[tuple[int, int]], unreadable: Unreadable
) -> list[os.DirEntry[str]] | None:
    """A folder's entries in name order; None when it was seen before (a link back up
    the tree) or cannot be listed (remembered: it may hold keys)."""
    # Plain strings, not Path objects: on a share of 10,000 files the difference shows.
    try:
        identity = os.stat(folder)
        if (identity.st_dev, identity.st_ino) in seen:
            return None
        seen.add((identity.st_dev, identity.st_ino))
        with os.scandir(folder) as scan:
            return sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        unreadable(folder, exc.strerror or "unknown")
        return None
