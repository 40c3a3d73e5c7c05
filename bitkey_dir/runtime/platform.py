"""Everything that differs between POSIX (Linux, macOS) and Windows, in one module.

Nothing else in the package calls an OS-specific function (tests/unit/test_architecture.py
checks it). What differs:

- private folders: mode 0700 on POSIX; on Windows a protected DACL for the current user,
  SYSTEM and Administrators, since NTFS ignores POSIX modes;
- whether other users may plant a file in a folder or own a file we are about to write to:
  ``st_mode`` and ``st_uid`` on POSIX, the owner SID and the DACL on Windows;
- opening without following a link: ``O_NOFOLLOW`` on POSIX; on Windows a link or junction
  (a reparse point) is refused before the open;
- appending whole lines under a lock: ``flock`` on POSIX, ``msvcrt.locking`` on a byte far
  beyond any trail's end on Windows (a lock inside the file would stop readers there);
- no core dump (``RLIMIT_CORE``) on POSIX; the signals that must unwind like Ctrl-C.

The Windows code reaches Windows only through :class:`WindowsAPI`, so the unit tests run it
here with a stand-in for ``msvcrt`` and pywin32, and mypy, run for the win32 platform, checks
the real adapter against the stubs of the modules it wraps.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol

from bitkey_dir.runtime.windows import Ace

# msvcrt.locking locks from the current position; a byte no trail ever reaches is locked, so
# readers of the file are never stopped by Windows' mandatory byte-range locks.
LOCK_OFFSET: Final = 1 << 40  # 1 TiB: within every file system's largest offset

# Windows access mask bits that let a principal put or replace a file in a folder.
_FILE_ADD_FILE: Final = 0x2  # FILE_WRITE_DATA on a file
_FILE_ADD_SUBDIRECTORY: Final = 0x4
_WRITE_DAC: Final = 0x40000
_WRITE_OWNER: Final = 0x80000
_GENERIC_ALL: Final = 0x10000000
_GENERIC_WRITE: Final = 0x40000000
_MAY_WRITE: Final = (
    _FILE_ADD_FILE
    | _FILE_ADD_SUBDIRECTORY
    | _WRITE_DAC
    | _WRITE_OWNER
    | _GENERIC_ALL
    | _GENERIC_WRITE
)
_ACCESS_ALLOWED_ACE_TYPE: Final = 0
_INHERIT_ONLY_ACE: Final = 0x8
# Principals that may write anywhere on a machine anyway, or stand for the folder's owner.
_TRUSTED_SIDS: Final = frozenset({"S-1-5-18", "S-1-5-32-544", "S-1-3-0"})
# Groups that stand for "other users": a grant to one of them is like POSIX o+w.
_EVERYBODY_SIDS: Final = {
    "S-1-1-0": "Everyone",
    "S-1-5-7": "ANONYMOUS LOGON",
    "S-1-5-4": "INTERACTIVE",
    "S-1-5-11": "Authenticated Users",
    "S-1-5-32-545": "Users",
    "S-1-5-32-546": "Guests",
}


class WindowsAPI(Protocol):
    """The few Windows calls this module makes (msvcrt and pywin32 behind it)."""

    def lock(self, fd: int, *, unlock: bool = False) -> None:
        """Lock (or unlock) one byte at the current position, waiting a little for it."""

    def current_user_sid(self) -> str: ...

    def user_principal_name(self) -> str | None:
        """The logged-on user's UPN (user@corp.example), or None for a local account."""

    def owner_sid(self, path: str) -> str: ...

    def dacl(self, path: str) -> list[Ace] | None:
        """The folder's DACL, or None for a NULL DACL (everybody may do anything)."""

    def protect(self, path: str, sids: Iterable[str]) -> None:
        """Replace the DACL by a protected one: full control for ``sids`` only."""


def os_flags(flags: int, *, follow_links: bool = False) -> int:
    """``flags`` for ``os.open`` with what every file of ours needs on this platform: no
    link followed (unless ``follow_links``: reading a trail through a link is fine), no hang
    on a FIFO, not inherited by children, and binary on Windows, where ``os.open`` would
    otherwise turn each newline into CR LF."""
    if sys.platform == "win32":
        extra: tuple[str, ...] = ("O_BINARY", "O_NOINHERIT")
    else:
        extra = ("O_NONBLOCK", "O_CLOEXEC") + (() if follow_links else ("O_NOFOLLOW",))
    for name in extra:
        flags |= getattr(os, name, 0)
    return flags


def open_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that never follows a link: raises OSError ELOOP for one."""
    if sys.platform == "win32":
        _refuse_reparse_point(path)
    return os.open(path, os_flags(flags), mode)


def create_private_file(path: Path) -> None:
    """Create ``path`` for the current user alone, or make an existing file of ours so.

    A link is refused (OSError ELOOP), never followed. On Windows the file takes the DACL of
    its folder, which :func:`make_private_folder` made private.
    """
    with contextlib.suppress(FileExistsError):
        os.close(open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        return
    fd = open_file(path, os.O_RDONLY)
    try:
        if sys.platform != "win32" and os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _refuse_reparse_point(path: Path) -> None:
    """Windows has no O_NOFOLLOW: a symbolic link or a junction is refused before the open."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    reparse = getattr(info, "st_file_attributes", 0) & getattr(
        stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400
    )
    if stat.S_ISLNK(info.st_mode) or reparse:
        raise OSError(errno.ELOOP, "a link or junction", str(path))


def read_at(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset``; on POSIX without moving the file position."""
    if sys.platform == "win32":
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)
    return os.pread(fd, size, offset)


@contextlib.contextmanager
def locked(fd: int) -> Iterator[None]:
    """An exclusive lock on the whole file among the processes that take it this way."""
    if sys.platform == "win32":
        with windows_locked(fd, _windows_api()):
            yield
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def windows_locked(fd: int, api: WindowsAPI) -> Iterator[None]:
    """The Windows lock: one byte at :data:`LOCK_OFFSET`. Writes with O_APPEND go to the end
    of the file whatever the position, so seeking there for the lock moves no line."""
    os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
    api.lock(fd)
    try:
        yield
    finally:
        os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
        api.lock(fd, unlock=True)


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (not its parents) so that only the current user may use it."""
    folder.mkdir(mode=0o700, exist_ok=True)
    keep_private(folder)


def keep_private(folder: Path) -> None:
    """Make a folder of ours private again, whatever the umask or an earlier version did."""
    if sys.platform == "win32":
        api = _windows_api()
        me = api.current_user_sid()
        if api.owner_sid(str(folder)) != me:
            return  # a folder someone else made: theirs to share, checked by others_may_plant
        aces = api.dacl(str(folder))
        keep = {me, *_TRUSTED_SIDS}
        if aces is None or any(
            ace.type == _ACCESS_ALLOWED_ACE_TYPE and ace.sid not in keep for ace in aces
        ):
            api.protect(str(folder), (me, *sorted(_TRUSTED_SIDS - {"S-1-3-0"})))
        return
    info = folder.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask; this is not


def others_may_plant(folder: Path) -> str | None:
    """Why other users could put a file of theirs in ``folder`` in place of ours, or None.

    A folder its group may write to is accepted (a team shares one trail that way); one that
    every user may write to is not, unless (POSIX) the sticky bit stops users replacing each
    other's files.
    """
    if sys.platform == "win32":
        api = _windows_api()
        return windows_others_may_write(api.dacl(str(folder)), api.current_user_sid())
    info = folder.stat()
    if info.st_mode & 0o002 and not info.st_mode & stat.S_ISVTX:
        return f"mode {stat.S_IMODE(info.st_mode):o}"
    return None


def everybody_may_write(folder: Path) -> bool:
    """Whether every user may create files in ``folder`` (``/tmp``, sticky or not): a file
    there may be anybody's. A folder only a group may write to is a deliberate share."""
    try:
        if sys.platform == "win32":
            api = _windows_api()
            return (
                windows_others_may_write(api.dacl(str(folder)), api.current_user_sid()) is not None
            )
        return bool(folder.stat().st_mode & stat.S_IWOTH)
    except OSError:
        return True  # a folder that cannot be looked at is not one to trust


def windows_others_may_write(aces: list[Ace] | None, me: str) -> str | None:
    """Which group of "other users" a DACL lets create or replace files, or None."""
    if aces is None:
        return "a NULL DACL: everybody may write"
    for ace in aces:
        if ace.type != _ACCESS_ALLOWED_ACE_TYPE or ace.flags & _INHERIT_ONLY_ACE:
            continue
        if ace.sid == me or ace.sid in _TRUSTED_SIDS or not ace.mask & _MAY_WRITE:
            continue
        if ace.sid in _EVERYBODY_SIDS:
            return f"{_EVERYBODY_SIDS[ace.sid]} ({ace.sid}) may write there"
    return None


def owned_by_another(fd: int, path: Path) -> str | None:
    """Who owns the open file ``fd`` when that is neither the current user nor an
    administrator, or None. A file someone else created where ours should be is theirs to
    read and to change: what we would write there is not ours to trust."""
    if sys.platform == "win32":
        api = _windows_api()
        owner = api.owner_sid(str(path))
        if owner == api.current_user_sid() or owner in _TRUSTED_SIDS:
            return None
        return f"the account {owner}"
    uid = os.fstat(fd).st_uid
    if uid in (os.geteuid(), 0):
        return None
    return f"uid {uid}"


def current_user_label() -> str:
    """An account label for when the login name cannot be read (no passwd entry)."""
    if sys.platform == "win32":
        return f"sid:{_windows_api().current_user_sid()}"
    return f"uid:{os.geteuid()}"


def waits_on_pipes() -> bool:
    """Whether :func:`wait_readable` works here: POSIX; on Windows a pipe given as a
    config stays "not a regular file" (there is no process substitution there)."""
    return sys.platform != "win32"


def wait_readable(fd: int, seconds: float) -> bool:
    """Whether ``fd`` has something to read (or its end) within ``seconds``."""
    if sys.platform == "win32":
        return True  # not asked: waits_on_pipes() is False there
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(1, int(seconds * 1000))))


def is_null_device(fd: int) -> bool:
    """Whether ``fd`` is the null device (``/dev/null``): read as an empty file."""
    if sys.platform == "win32":
        return False  # NUL is no file there: stat() of it does not name a device
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    found = os.fstat(fd)
    return (found.st_rdev, found.st_dev, found.st_ino) == (null.st_rdev, null.st_dev, null.st_ino)


def unix_datagram_socket(path: str) -> socket.socket:
    """A datagram socket connected to the Unix socket ``path`` (the local syslog,
    /dev/log); OSError on Windows, which has none."""
    if sys.platform == "win32":
        raise OSError(errno.ENOTSUP, "Unix datagram sockets do not exist on Windows", path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def logged_on_principal() -> str | None:
    """On Windows, whose ticket a Kerberos bind through SSPI uses: the logged-on user's UPN.
    None elsewhere, where the ticket cache says it (gssapi)."""
    if sys.platform == "win32":
        return _windows_api().user_principal_name()
    return None


def limit_core_dumps() -> None:
    """No core dump of a process that holds recovery passwords and credentials in memory.

    RLIMIT_CORE 0 is honoured by the kernel and by core handlers such as systemd-coredump.
    (prctl(PR_SET_DUMPABLE, 0) would also stop other processes of the user reading its
    memory, but it hides /proc/PID from keyring daemons that look there to name a caller.)
    Windows writes a dump only where Windows Error Reporting is set up to: nothing to do.
    """
    if sys.platform == "win32":
        return
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def limit_core_dumps_softly() -> str | None:
    """For a library: the soft RLIMIT_CORE limit 0, the hard one left to the program (which
    may raise the soft one again). What the soft limit was, when it was not 0 already; None
    when nothing changed (already 0, Windows, or refused)."""
    if sys.platform == "win32":
        return None
    import resource

    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        if soft == 0:
            return None
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except (ValueError, OSError):
        return None
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)


def stop_signals() -> tuple[int, ...]:
    """The signals that end the process and must unwind like Ctrl-C, so that every
    ``finally`` runs: SIGTERM and SIGHUP on POSIX, Ctrl-Break (SIGBREAK) on Windows."""
    import signal

    names = ("SIGTERM", "SIGBREAK") if sys.platform == "win32" else ("SIGTERM", "SIGHUP")
    return tuple(int(getattr(signal, name)) for name in names if hasattr(signal, name))


@functools.cache
def _windows_api() -> WindowsAPI:
    if sys.platform == "win32":
        from bitkey_dir.runtime.windows import RealWindowsAPI

        return RealWindowsAPI()
    raise OSError(errno.ENOSYS, "the Windows API is not available here")  # pragma: no cover
