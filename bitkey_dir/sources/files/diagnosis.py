"""`doctor` for key files: each configured path, the key files found, the files skipped and why.

Reads every file the way a lookup does (regular files only, opened without blocking, size
judged first) and parses it; only counts and reasons are kept. Encrypted exports are counted,
not decrypted: doctor asks for no passphrase.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bitkey_dir.core.errors import BitkeyError
from bitkey_dir.runtime.encryption import is_encrypted
from bitkey_dir.sources.base import Check, CheckStatus
from bitkey_dir.sources.files import walk
from bitkey_dir.sources.files.parsers import NotText, parse_bytes

SHOWN_SKIPPED: Final = 20  # skipped files named one by one; the rest are counted


@dataclass
class Tally:
    key_files: int = 0
    keys: int = 0
    encrypted: int = 0
    skipped: list[tuple[str, CheckStatus, str, str | None]] = field(default_factory=list)


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB" if size >= 1024**2 else f"{size} bytes"


def diagnose(paths: Sequence[Path], *, max_file_size: int, identity_files: bool) -> list[Check]:
    """The checks of a file source reading ``paths``, with its max_file_size, and whether it
    has identity files to decrypt exports with."""
    checks: list[Check] = []
    for root in paths:
        check = _path_check(str(root))
        checks.append(check)
        if check.status != "ok":
            continue
        tally = Tally()
        _count(root, max_file_size, tally)
        checks += _tally_checks(identity_files, str(root), tally)
    return checks


def _path_check(path: str) -> Check:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return Check("path", path, "unreachable", "does not exist")
    except OSError as exc:
        return _os_problem(path, exc)
    folder = stat.S_ISDIR(info.st_mode)
    if not folder and not stat.S_ISREG(info.st_mode):
        return Check("path", path, "unreachable", "neither a file nor a folder")
    what, needs, mode = ("folder", os.R_OK | os.X_OK, "rx") if folder else ("file", os.R_OK, "r")
    if not os.access(path, needs):
        return Check(
            "path",
            path,
            "missing-right",
            f"a {what} this user may not {'list' if folder else 'read'}",
            f"chmod u+{mode} {shlex.quote(path)}",
        )
    return Check("path", path, "ok", f"a {what}, readable")


def _os_problem(path: str, exc: OSError) -> Check:
    why = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Check("path", path, "missing-right", why, f"chmod u+r {shlex.quote(path)}")
    return Check("path", path, "unreachable", why)


def _count(root: Path, max_file_size: int, tally: Tally) -> None:
    """What ``root`` holds (each configured path is checked and counted on its own)."""

    def skipped(message: str) -> None:
        path, _, why = message.partition(": skipped, ")
        tally.skipped.append((path or str(root), "warn", why or message, None))

    unlisted: list[tuple[str, str]] = []  # folders that could not be listed
    try:
        files = list(walk.files([root], skipped, lambda path, why: unlisted.append((path, why))))
    except BitkeyError as exc:
        tally.skipped.append((str(root), "unreachable", exc.message, None))
        return
    for path, why in unlisted:
        fix = f"chmod u+rx {shlex.quote(path)}"
        tally.skipped.append((path, "missing-right", f"cannot list it ({why})", fix))
    for path in files:
        _count_file(path, max_file_size, tally)


def _count_file(path: str, max_file_size: int, tally: Tally) -> None:
    try:
        data = walk.read(path, max_file_size)
    except walk.NotRegular:
        tally.skipped.append((path, "warn", "not a regular file", None))
        return
    except walk.TooBig:
        size = os.stat(path).st_size
        tally.skipped.append(
            (
                path,
                "warn",
                f"larger than max_file_size ({_mib(size)} > {_mib(max_file_size)})",
                f"max_file_size = {size} in the source's config, if it holds keys",
            )
        )
        return
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if exc.errno in (errno.EACCES, errno.EPERM):
            fix = f"chmod u+r {shlex.quote(path)}"
            tally.skipped.append((path, "missing-right", f"cannot read it ({why})", fix))
        else:
            tally.skipped.append((path, "unreachable", f"cannot read it ({why})", None))
        return
    if is_encrypted(data):
        tally.encrypted += 1
        return
    try:
        parsed = parse_bytes(data)
    except NotText as exc:
        tally.skipped.append((path, "warn", f"not a key file ({exc})", None))
        return
    finally:
        del data
    if parsed.keys:
        tally.key_files += 1
        tally.keys += len(parsed.keys)
    if parsed.damaged:
        count = len(parsed.damaged)
        tally.skipped.append(
            (path, "warn", f"{count} damaged recovery password{'s' if count > 1 else ''}", None)
        )
    elif not parsed.keys:
        why = "; ".join(parsed.problems) or "holds no recovery key"
        tally.skipped.append((path, "warn", f"not a key file: {why}", None))


def _tally_checks(identity_files: bool, root: str, tally: Tally) -> list[Check]:
    files = "s" if tally.key_files != 1 else ""
    keys = "s" if tally.keys != 1 else ""
    found = f"{tally.key_files} key file{files} ({tally.keys} key{keys})"
    if tally.encrypted:
        unlock = "identity_file" if identity_files else "an identity or passphrase"
        found += f", {tally.encrypted} encrypted export(s), read with {unlock}"
    found += f", {len(tally.skipped)} skipped"
    status: CheckStatus = "ok" if tally.key_files or tally.encrypted else "warn"
    checks = [Check("files", root, status, found if status == "ok" else found + ": no key file")]
    for path, state, why, fix in tally.skipped[:SHOWN_SKIPPED]:
        checks.append(Check("skipped", path, state, why, fix))
    more = tally.skipped[SHOWN_SKIPPED:]
    if more:
        worst: CheckStatus = "warn"
        for _, state, _, _ in more:
            if state == "missing-right" or (state == "unreachable" and worst == "warn"):
                worst = state
        checks.append(Check("skipped", root, worst, f"{len(more)} more files skipped"))
    return checks
