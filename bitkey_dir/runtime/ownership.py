"""Files another user put where bitkey-dir writes: a trail or an index planted in a shared folder.

In a folder every user may write to (``/tmp``, with its sticky bit), anyone may create the
file bitkey-dir is about to write before it does, with a mode that lets them read what is
written and, being its owner, rewrite or empty it later. A file there that belongs to
another user is refused rather than written to. A folder only a group may write to is a
deliberate share (a team's trail): its members could replace any file in it anyway, so a
file of a teammate's is accepted there. Root's files are trusted by everybody.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def planted_by(info: os.stat_result, folder: Path) -> int | None:
    """The uid of the other user who owns ``info``'s file in ``folder``, a folder every
    user may write to; None when the file is ours, root's, or the folder is not shared with
    everybody (or the platform has no owners, as on Windows)."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:
        return None
    me = geteuid()
    owner = info.st_uid
    if owner == me or (owner == 0 and me != 0):
        return None
    try:
        shared = bool(folder.stat().st_mode & stat.S_IWOTH)
    except OSError:
        shared = True  # a folder that cannot be looked at is not one to trust
    return owner if shared else None


def planted_message(what: str, path: Path, owner: int) -> str:
    """Why such a file is refused, for an error line."""
    return (
        f"{what} {path} belongs to another user (uid {owner}) in a folder every user may "
        "write to: what is written there would be theirs to read and to erase; remove it, "
        "or choose a path in a folder of your own"
    )
