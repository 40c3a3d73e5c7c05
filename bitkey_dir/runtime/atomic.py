"""Files that appear whole or not at all, readable only by their owner: replacing a file
(exports with --force), or never replacing one (key packages)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from bitkey_dir.runtime import platform


@contextlib.contextmanager
def private_replacement(target: Path) -> Iterator[BinaryIO]:
    """A new file (mode 0600) beside ``target``, renamed over it when the block succeeds and
    removed when it fails. Beside it, so the rename stays on one file system; raises
    OSError when the folder cannot take a new file."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = platform.open_file(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


# Where hard links cannot be made (FAT and exFAT USB sticks, some network shares).
_NO_LINKS = frozenset(
    code
    for code in (
        getattr(errno, "EPERM", None),
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
        getattr(errno, "ENOSYS", None),
        getattr(errno, "EMLINK", None),
    )
    if code is not None
)


def write_new_private(
    target: Path, data: bytes, before_commit: Callable[[], None] | None = None
) -> None:
    """``data`` in a new file ``target`` (mode 0600) that never replaces an existing one:
    raises FileExistsError when ``target`` exists, even if it appeared meanwhile.

    The data is written and synced beside ``target`` first, then hard-linked into place
    (a link, unlike a rename, refuses an existing name), so the file appears whole. On a
    file system without hard links (FAT, exFAT) it is created exclusively instead and
    removed again if writing fails. ``before_commit`` runs once the data is safe on disk
    and before it appears (the access trail is written there); if it raises, no file
    appears. Raises OSError when the folder cannot take the file.
    """
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = platform.open_file(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if before_commit is not None:
            before_commit()
        try:
            os.link(temporary, target, follow_symlinks=False)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            _write_exclusive(target, data)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _write_exclusive(target: Path, data: bytes) -> None:
    fd = platform.open_file(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise
