"""Files that appear whole or not at all, readable only by their owner."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def private_replacement(target: Path) -> Iterator[BinaryIO]:
    """A new file (mode 0600) beside ``target``, renamed over it when the block succeeds and
    removed when it fails. Beside it, so the rename stays on one file system; raises
    OSError when the folder cannot take a new file."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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
