"""The access trail: one JSON line per revealed key, saying who revealed it, from where and why,
one per export (every key of a source, written to a file), per rotation, per refused
lookup, and per change of who may read keys.

The file lives in the platform's state folder (``BITKEY_DIR_TRAIL`` overrides the path), is
created with mode 0600 and only ever appended to. Each run writes its lines with a single
``write`` on a descriptor opened with ``O_APPEND`` while holding an exclusive lock, so
concurrent runs never interleave. It never holds a recovery password or a key package: a
written key package is recorded by its file's path.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from bitkey_dir.core.conflicts import Conflict
from bitkey_dir.core.env import TRAIL_ENV
from bitkey_dir.core.errors import SourceError
from bitkey_dir.core.model import RecoveryKey
from bitkey_dir.runtime import platform

if TYPE_CHECKING:
    from bitkey_dir.core.rights import RightsChange
    from bitkey_dir.core.rotation import Rotation


class RevealEntry(TypedDict):
    """One revealed key: who, as which directory account, from where, which key, and why."""

    time: str
    os_user: str
    principal: str | None
    source: str
    key_id: str
    computer: str | None
    reason: str | None
    command: list[str]
    # Only when `find --key-package` wrote the key's package: the file it went to.
    key_package: NotRequired[str]
    # Only false: the directory handed the password over, but it was not shown (find
    # --key-package found the key without its package). A read all the same.
    shown: NotRequired[bool]


class ExportEntry(TypedDict):
    """One export: every key of a source, written to a file."""

    time: str
    os_user: str
    principal: str | None
    source: str
    action: Literal["export"]
    keys: int
    output: str
    protection: str  # "age recipients", "age passphrase" or "none"
    reason: str | None
    command: list[str]
    # Only for `export --key-packages`: the file holds each key's key package too.
    key_packages: NotRequired[bool]


class RotateEntry(TypedDict):
    """One device whose disclosed keys were rotated, or are to be rotated by hand."""

    time: str
    os_user: str
    principal: str | None
    source: str
    action: Literal["rotate"]
    computer: str | None
    device_id: str | None
    key_ids: list[str]
    # "requested" (asked of Intune) or "by hand"; after rotate --wait, a second line:
    # "done", "failed" or "not supported"
    outcome: str
    reason: str | None
    command: list[str]
    # Only on a "done" line: the IDs of the keys the device escrowed (never their values).
    new_key_ids: NotRequired[list[str]]


class RefuseEntry(TypedDict):
    """A lookup that revealed nothing because its Key ID is on several computers."""

    time: str
    os_user: str
    principal: str | None
    source: str  # every source that held the Key ID, comma-separated
    action: Literal["refuse"]
    key_id: str
    computers: list[str]  # each as "NAME (SOURCE)"
    reason: str | None
    command: list[str]


class RightsEntry(TypedDict):
    """One change of who may read recovery keys (rights grant or revoke); a what-if, or a
    change that found everything already as asked, is not one."""

    time: str
    os_user: str
    principal: str | None  # the account that made the change
    source: str
    action: Literal["grant", "revoke"]
    scope: str  # the OU (AD) the change applies below
    grantee: str  # the account or group given or denied the right, as asked for
    grantee_id: str  # its SID (AD) or object id
    changed: list[str]  # each entry added or removed, as the source describes it
    reason: None
    command: list[str]


Entry = RevealEntry | ExportEntry | RotateEntry | RefuseEntry | RightsEntry
Line = dict[str, object]  # a line read back: whatever the file holds


def trail_path() -> Path:
    override = os.environ.get(TRAIL_ENV)
    if override:
        return Path(override)
    from bitkey_dir.runtime.config import state_dir

    return state_dir() / "trail.jsonl"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        return platform.current_user_label()


def entries_for(
    keys: Iterable[RecoveryKey],
    reason: str | None,
    command: Sequence[str],
    principals: Mapping[str, str | None] | None = None,
    key_package: tuple[RecoveryKey, Path] | None = None,
) -> list[RevealEntry]:
    """One entry per key whose password is being shown; unreadable keys reveal nothing.

    ``principals`` maps a source's name to the directory account it read the key as.
    ``key_package`` is the key whose package is being written and the file: its entry says
    so (``"key_package": path``), and it has one even when its password was not readable.
    """
    now = datetime.now(UTC).isoformat(timespec="seconds")
    user = _os_user()
    packaged, written = key_package if key_package else (None, None)
    entries: list[RevealEntry] = []
    for key in keys:
        if key.recovery_password is None and key is not packaged:
            continue
        entry: RevealEntry = {
            "time": now,
            "os_user": user,
            "principal": (principals or {}).get(key.source),
            "source": key.source,
            "key_id": str(key.key_id),
            "computer": key.computer,
            "reason": reason,
            "command": list(command),
        }
        if key is packaged and written is not None:
            entry["key_package"] = str(written)
        entries.append(entry)
    return entries


def export_entry(
    source: str,
    principal: str | None,
    keys: int,
    output: Path | str,
    protection: str,
    reason: str | None,
    command: Sequence[str],
    key_packages: bool = False,
) -> ExportEntry:
    """One line for a whole export: which source, how many keys, to which file, how sealed
    (and ``"key_packages": true`` when the file holds key packages too)."""
    entry: ExportEntry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "os_user": _os_user(),
        "principal": principal,
        "source": source,
        "action": "export",
        "keys": keys,
        "output": str(output),
        "protection": protection,
        "reason": reason,
        "command": list(command),
    }
    if key_packages:
        entry["key_packages"] = True
    return entry


def rotation_entries(
    rotations: Iterable[Rotation],
    reason: str | None,
    command: Sequence[str],
    principals: Mapping[str, str | None] | None = None,
) -> list[RotateEntry]:
    """One entry per device: what was asked of the directory, or left to be done by hand;
    for a rotation followed up (rotate --wait), how it ended."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    user = _os_user()
    entries: list[RotateEntry] = []
    for rotation in rotations:
        progress = rotation.progress
        entry: RotateEntry = {
            "time": now,
            "os_user": user,
            "principal": (principals or {}).get(rotation.source),
            "source": rotation.source,
            "action": "rotate",
            "computer": rotation.computer,
            "device_id": rotation.device_id,
            "key_ids": [str(key_id) for key_id in rotation.key_ids],
            "outcome": progress.state if progress else rotation.outcome,
            "reason": reason,
            "command": list(command),
        }
        if progress is not None and progress.state == "done":
            entry["new_key_ids"] = [str(key_id) for key_id in progress.new_key_ids]
        entries.append(entry)
    return entries


def refusal_entries(
    conflicts: Iterable[Conflict],
    reason: str | None,
    command: Sequence[str],
    principals: Mapping[str, str | None] | None = None,
) -> list[RefuseEntry]:
    """One entry per conflicting Key ID: which computers held it; no password."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    user = _os_user()
    entries: list[RefuseEntry] = []
    for conflict in conflicts:
        accounts = {(principals or {}).get(name) for name in conflict.sources} - {None}
        entries.append(
            {
                "time": now,
                "os_user": user,
                "principal": ", ".join(sorted(str(a) for a in accounts)) or None,
                "source": ", ".join(conflict.sources),
                "action": "refuse",
                "key_id": str(conflict.key_id),
                "computers": conflict.computers,
                "reason": reason,
                "command": list(command),
            }
        )
    return entries


def rights_entry(
    change: RightsChange, principal: str | None, command: Sequence[str]
) -> RightsEntry:
    """The line for a grant or revoke that changed something."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "os_user": _os_user(),
        "principal": principal,
        "source": change.source,
        "action": change.action,
        "scope": change.scope,
        "grantee": change.principal,
        "grantee_id": change.ident,
        "changed": list(change.changed),
        "reason": None,
        "command": list(command),
    }


def append(entries: Sequence[Entry], path: Path | None = None) -> None:
    """Append entries, all of them or none; raise SourceError if the trail cannot be written.

    The trail must be a regular file of its own: a symbolic link, a device (``/dev/null``)
    or a pipe is refused, since a reveal recorded there is recorded nowhere, and so is one
    another user put in a folder everybody may write to (a team's folder, which only its
    group may write to, is a share: a teammate's trail is written to there). A line torn by
    an earlier failure is ended first, so that the new entries stay whole; a write that
    fails half-way (a full disk) is taken back, so that a refused reveal leaves no entry.
    """
    if not entries:
        return
    target = path or trail_path()
    data = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT  # read: to see whether the last line is whole
    try:
        from bitkey_dir.runtime.config import private_folder

        private_folder(target.parent)
        try:
            fd = platform.open_file(target, flags)
        except PermissionError:
            # A shared trail may be append-only for its writers: write without reading.
            fd = platform.open_file(target, flags & ~os.O_RDWR | os.O_WRONLY)
    except OSError as exc:
        raise SourceError(_cannot_write(target, exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(
                f"the access trail {target} is not a regular file (a device or a pipe): a "
                "reveal recorded there would be recorded nowhere"
            )
        owner = platform.owned_by_another(fd, target)
        if owner is not None and platform.everybody_may_write(target.parent):
            # Whoever created it first owns it: what is recorded would be theirs to erase.
            raise SourceError(
                f"the access trail {target} belongs to another user ({owner}) in a folder "
                "every user may write to: a reveal recorded there would be theirs to read "
                "and to erase; remove it, or set BITKEY_DIR_TRAIL to a folder of your own"
            )
        with platform.locked(fd):
            _write_whole(fd, data, target)
    except OSError as exc:
        raise SourceError(_cannot_write(target, exc)) from None
    finally:
        os.close(fd)


def _write_whole(fd: int, data: bytes, target: Path) -> None:
    size = os.fstat(fd).st_size
    if size and _last_byte(fd, size) not in (b"\n", None):
        data = b"\n" + data  # an earlier line was torn: end it, keep ours whole
    written = 0
    try:
        while written < len(data):
            step = os.write(fd, data[written:])
            if step <= 0:
                break
            written += step
    except OSError:
        os.ftruncate(fd, size)
        raise
    if written < len(data):
        os.ftruncate(fd, size)  # part of a line would read as an entry, or merge with the next
        raise SourceError(f"the access trail {target} is full or failing (short write)")


def _last_byte(fd: int, size: int) -> bytes | None:
    """The file's last byte, or None when it was opened for writing only."""
    try:
        return platform.read_at(fd, 1, size - 1)
    except OSError:
        return None


def _cannot_write(target: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"the access trail {target} is a symbolic link: it must be a file of its own"
    if exc.errno == errno.ENXIO:
        return f"the access trail {target} is a pipe nobody reads: it must be a regular file"
    return f"cannot write the access trail {target} ({exc.strerror or exc})"


def recent(limit: int, path: Path | None = None) -> tuple[list[Line], int]:
    """The last ``limit`` entries, oldest first, and how many lines could not be read."""
    kept: deque[Line] = deque(maxlen=limit)
    broken = [0]
    kept.extend(read_lines(path, broken))
    return list(kept), broken[0]


def read_lines(path: Path | None = None, broken: list[int] | None = None) -> Iterator[Line]:
    """Every entry, oldest first, streamed: a trail of millions of lines is never held in
    memory. ``broken[0]`` counts the lines that could not be read."""
    target = path or trail_path()
    try:
        fd = os.open(target, platform.os_flags(os.O_RDONLY, follow_links=True))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SourceError(f"cannot read the access trail {target} ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError(f"the access trail {target} is not a regular file")
        with open(fd, encoding="utf-8", errors="replace", closefd=False) as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    entry = None
                if isinstance(entry, dict):
                    yield entry
                elif broken is not None:
                    broken[0] += 1
    except OSError as exc:
        raise SourceError(f"cannot read the access trail {target} ({exc.strerror})") from None
    finally:
        os.close(fd)
