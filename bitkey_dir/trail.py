"""The access trail: one JSON line per revealed key, saying who revealed it, from where and why,
and one per export (every key of a source, written to a file).

The file lives in the platform's state folder (``BITKEY_DIR_TRAIL`` overrides the path), is
created with mode 0600 and only ever appended to. Each run writes its lines with a single
``write`` on a descriptor opened with ``O_APPEND`` while holding an exclusive lock, so
concurrent runs never interleave. It never holds a recovery password.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypedDict

from bitkey_dir.env import TRAIL_ENV
from bitkey_dir.errors import SourceError
from bitkey_dir.model import RecoveryKey


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


Entry = RevealEntry | ExportEntry
Line = dict[str, object]  # a line read back: whatever the file holds


def trail_path() -> Path:
    override = os.environ.get(TRAIL_ENV)
    if override:
        return Path(override)
    from bitkey_dir.config import state_dir

    return state_dir() / "trail.jsonl"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def entries_for(
    keys: Iterable[RecoveryKey],
    reason: str | None,
    command: Sequence[str],
    principals: Mapping[str, str | None] | None = None,
) -> list[RevealEntry]:
    """One entry per key whose password is being shown; unreadable keys reveal nothing.

    ``principals`` maps a source's name to the directory account it read the key as.
    """
    now = datetime.now(UTC).isoformat(timespec="seconds")
    user = _os_user()
    return [
        {
            "time": now,
            "os_user": user,
            "principal": (principals or {}).get(key.source),
            "source": key.source,
            "key_id": str(key.key_id),
            "computer": key.computer,
            "reason": reason,
            "command": list(command),
        }
        for key in keys
        if key.recovery_password is not None
    ]


def export_entry(
    source: str,
    principal: str | None,
    keys: int,
    output: Path,
    protection: str,
    reason: str | None,
    command: Sequence[str],
) -> ExportEntry:
    """One line for a whole export: which source, how many keys, to which file, how sealed."""
    return {
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


def append(entries: Sequence[Entry], path: Path | None = None) -> None:
    """Append entries atomically; raise SourceError if the trail cannot be written."""
    if not entries:
        return
    target = path or trail_path()
    data = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SourceError(f"cannot write the access trail {target} ({exc.strerror})") from None
    try:
        with _locked(fd):
            written = os.write(fd, data)
        if written != len(data):
            raise SourceError(f"the access trail {target} is full or failing (short write)")
    except OSError as exc:
        raise SourceError(f"cannot write the access trail {target} ({exc.strerror})") from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: O_APPEND writes of one buffer are not split there either
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def recent(limit: int, path: Path | None = None) -> tuple[list[Line], int]:
    """The last ``limit`` entries, oldest first, and how many lines could not be read."""
    target = path or trail_path()
    kept: deque[Line] = deque(maxlen=limit)
    broken = 0
    try:
        with open(target, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    broken += 1
                    continue
                if isinstance(entry, dict):
                    kept.append(entry)
                else:
                    broken += 1
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise SourceError(f"cannot read the access trail {target} ({exc.strerror})") from None
    return list(kept), broken
