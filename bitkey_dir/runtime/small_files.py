"""Reading the small files a person names: configs, identities, public keys, certificates.

Only regular files are read, never more than a bound: a path that turns out to be a FIFO, a
device (``/dev/zero``), a folder or a huge file is a one-line error, not a hang or a process
that reads until memory runs out. The file is opened without blocking, so that opening a FIFO
nobody writes to returns at once.

A caller may also take a pipe (``pipes=True``: the config, given as ``--config <(…)``) and
``/dev/null`` (nothing). A pipe is read to its end within the same size bound and within
:data:`PIPE_WAIT` seconds, so that a FIFO nobody writes to is an error after a while, not a
hang.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Final, Literal

from bitkey_dir.core.errors import InputError
from bitkey_dir.runtime import platform

MiB: Final = 1024 * 1024
PIPE_WAIT: Final = 10.0  # seconds a pipe has to deliver all it holds: a person is waiting


Problem = Literal["missing", "folder", "special", "too big", "unreadable", "silent"]


class NotReadable(InputError):
    """The named file is missing, not a regular file, too big, or cannot be read."""

    def __init__(self, message: str, problem: Problem, detail: str = "") -> None:
        super().__init__(message)
        self.problem = problem
        self.detail = detail  # the system's words, for "unreadable"


def read_small_file(path: Path, *, limit: int, what: str, pipes: bool = False) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; raise NotReadable,
    whose message names ``what`` the file is meant to be ("the config file"). With
    ``pipes``, also a pipe or FIFO (read to its end within :data:`PIPE_WAIT` seconds) and
    ``/dev/null`` (no bytes)."""
    fd, mode = _open(path, what)
    if pipes and stat.S_ISFIFO(mode) and platform.waits_on_pipes():
        try:
            return _read_pipe(fd, path, limit=limit, what=what)
        finally:
            os.close(fd)
    if pipes and stat.S_ISCHR(mode) and platform.is_null_device(fd):
        os.close(fd)
        return b""
    _check_regular(fd, mode, path, what)
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
    fd, mode = _open(path, what)
    _check_regular(fd, mode, path, what)
    os.close(fd)


def _open(path: Path, what: str) -> tuple[int, int]:
    """A descriptor of ``path`` and its mode, opened without blocking (a FIFO nobody writes
    to returns at once)."""
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
        return fd, os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise NotReadable(f"cannot read {what} {path} ({exc.strerror})", "unreadable") from None


def _check_regular(fd: int, mode: int, path: Path, what: str) -> None:
    """Close ``fd`` and raise NotReadable unless it is a regular file."""
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise NotReadable(f"{what} {path} is a folder, not a file", "folder")
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotReadable(f"{what} {path} is not a regular file (a device or a pipe?)", "special")


def _read_pipe(fd: int, path: Path, *, limit: int, what: str) -> bytes:
    """All a pipe holds until its writer closes it: at most ``limit`` bytes, within
    :data:`PIPE_WAIT` seconds. A FIFO nobody opens for writing sends nothing, not even its
    end, so the time bound is what ends the wait."""
    deadline = time.monotonic() + PIPE_WAIT
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not platform.wait_readable(fd, left):
            state = "sent nothing" if not chunks else "did not end"
            raise NotReadable(
                f"{what} {path} is a pipe that {state} within {PIPE_WAIT:g} seconds", "silent"
            )
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        except OSError as exc:
            message = f"cannot read {what} {path} ({exc.strerror})"
            raise NotReadable(message, "unreadable", str(exc.strerror)) from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise NotReadable(f"{what} {path} is larger than {_size(limit)}", "too big")
        chunks.append(chunk)


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit >= MiB else f"{limit // 1024} KiB"
