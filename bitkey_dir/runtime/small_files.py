"""Reading the small files a person names: configs, identities, public keys, certificates.

Only regular files are read, never more than a bound: a path that turns out to be a FIFO, a
device (``/dev/zero``), a folder or a huge file is a one-line error, not a hang or a process
that reads until memory runs out. The file is opened without blocking, so that opening a FIFO
nobody writes to returns at once.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final, Literal

from bitkey_dir.core.errors import InputError
from bitkey_dir.runtime import platform

MiB: Final = 1024 * 1024


Problem = Literal["missing", "folder", "special", "too big", "unreadable"]


class NotReadable(InputError):
    """The named file is missing, not a regular file, too big, or cannot be read."""

    def __init__(self, message: str, problem: Problem, detail: str = "") -> None:
        super().__init__(message)
        self.problem = problem
        self.detail = detail  # the system's words, for "unreadable"


def read_small_file(path: Path, *, limit: int, what: str) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; raise NotReadable,
    whose message names ``what`` the file is meant to be ("the config file")."""
    fd = _open_regular(path, what)
    try:
        if os.fstat(fd).st_size > limit:
            raise NotReadable(f"{what} {path} is larger than {_size(limit)}", "too big")
        chunks = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        message = f"cannot read {what} {path} ({exc.strerror})"
        raise NotReadable(message, "unreadable", str(exc.strerror)) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while being read
        raise NotReadable(f"{what} {path} is larger than {_size(limit)}", "too big")
    return data


def check_regular_file(path: Path, *, what: str) -> None:
    """Raise NotReadable unless ``path`` is an existing regular file that can be opened."""
    os.close(_open_regular(path, what))


def _open_regular(path: Path, what: str) -> int:
    """A descriptor of ``path``, opened without blocking (a FIFO nobody writes to returns at
    once) and checked to be a regular file."""
    try:
        fd = os.open(path, platform.os_flags(os.O_RDONLY, follow_links=True))
    except FileNotFoundError:
        raise NotReadable(f"{what} {path} does not exist", "missing") from None
    except IsADirectoryError:
        raise NotReadable(f"{what} {path} is a folder, not a file", "folder") from None
    except OSError as exc:
        message = f"cannot open {what} {path} ({exc.strerror})"
        raise NotReadable(message, "unreadable", str(exc.strerror)) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise NotReadable(f"cannot read {what} {path} ({exc.strerror})", "unreadable") from None
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise NotReadable(f"{what} {path} is a folder, not a file", "folder")
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotReadable(f"{what} {path} is not a regular file (a device or a pipe?)", "special")
    return fd


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit >= MiB else f"{limit // 1024} KiB"
