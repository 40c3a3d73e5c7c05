"""Where secrets come from: the environment, then a prompt on a terminal, else a clear error.

Secrets are never taken from command-line arguments and never written anywhere by this module.
"""

from __future__ import annotations

import os
import sys

from bitkey_dir.env import PASSWORD_ENV
from bitkey_dir.errors import AuthError


def can_prompt() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def bind_password(source: str, user: str) -> str:
    """The directory password for ``user``: $BITKEY_DIR_PASSWORD, else a hidden prompt."""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if can_prompt():
        import getpass

        try:
            typed = getpass.getpass(f"Password for {user} ({source}): ")
        except EOFError:
            typed = ""
        if typed:
            return typed
    raise AuthError(
        f"no password for {user}: set {PASSWORD_ENV}, or run on a terminal to be asked for it"
    )
