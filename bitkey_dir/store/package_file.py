"""A key package written to a file of its own, for ``repair-bde -kp FILE``.

The bytes are exactly what the directory holds (AD's msFVE-KeyPackage): the file is new
(never replacing one), mode 0600, and appears whole (atomic.write_new_private). Messages
name the path and the Key ID, never the package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KeyPackage
from bitkey_dir.runtime.atomic import write_new_private


def check_target(target: Path) -> None:
    """Refuse, before any directory is asked, a target that exists or cannot be a new file."""
    if str(target) == "-":
        raise InputError("--key-package -: a key package is binary; give a file name")
    path = target.expanduser()
    if path.exists() or path.is_symlink():
        raise InputError(f"--key-package {target} exists: choose a new file name")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"--key-package {target}: the folder {parent} does not exist")


def write_key_package(
    target: Path, package: KeyPackage, before_commit: Callable[[], None] | None = None
) -> None:
    """Write ``package`` to the new file ``target``; InputError when it exists or cannot be
    written. ``before_commit`` (the access trail) runs before the file appears."""
    try:
        write_new_private(target.expanduser(), package.reveal(), before_commit)
    except FileExistsError:
        raise InputError(f"--key-package {target} exists: choose a new file name") from None
    except OSError as exc:
        raise InputError(
            f"cannot write the key package to {target} ({exc.strerror or type(exc).__name__})"
        ) from None
