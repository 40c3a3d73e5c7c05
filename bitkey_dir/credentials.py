"""Where secrets come from, in one documented order:

1. the environment (``BITKEY_DIR_PASSWORD``, ``BITKEY_DIR_CLIENT_SECRET``),
2. the keyring (stored by ``bitkey-dir login``),
3. a hidden prompt, only on a terminal,
4. else an AuthError (exit 3) naming ``bitkey-dir login``.

A stored secret that the directory rejects is never tried again, because repeated failures
lock accounts: it is removed from the keyring, the user is told, and on a terminal asked once.
Secrets are never taken from command-line arguments and never written anywhere but the keyring.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Literal

from bitkey_dir import keystore
from bitkey_dir.errors import AuthError, InputError

_LONGEST = 1024  # far above any real password; a bigger input is a mistake, not a secret
_PROMPTING = threading.Lock()
Origin = Literal["environment", "keyring", "prompt", "stdin"]


def can_prompt() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


@dataclass(frozen=True)
class Secret:
    """A password or client secret and where it came from; its repr never shows the value."""

    value: str = field(repr=False)
    origin: Origin

    def __str__(self) -> str:
        return f"<secret from {self.origin}>"


@dataclass(frozen=True)
class Wanted:
    """Which secret a source needs: how to name it to people, and where it is kept."""

    source: str
    label: str  # "the password of helpdesk@corp.example"
    env: str  # the environment variable that overrides the keyring
    entry: str  # the keyring entry


def _prompt(wanted: Wanted) -> str:
    import getpass

    # Sources are asked concurrently; two prompts at once would garble the terminal.
    with _PROMPTING:
        try:
            return getpass.getpass(
                f"{wanted.label[0].upper()}{wanted.label[1:]} ({wanted.source}): "
            )
        except EOFError:  # Ctrl-D: end the prompt's line before any message
            sys.stderr.write("\n")
            return ""


def obtain(wanted: Wanted) -> Secret:
    """The secret, from the first place that has it (see the module docstring)."""
    from_env = os.environ.get(wanted.env)
    if from_env:
        return Secret(from_env, "environment")
    stored = keystore.current().get(wanted.entry)
    if stored:
        return Secret(stored, "keyring")
    if can_prompt():
        typed = _prompt(wanted)
        if typed:
            return Secret(typed, "prompt")
        raise AuthError(
            f"no {_noun(wanted)} typed: nothing to sign in with",
            hint=f"`bitkey-dir login {wanted.source}` stores it in the keyring",
        )
    raise AuthError(
        f"no {_noun(wanted)} for {wanted.source}: run `bitkey-dir login {wanted.source}` to "
        f"store it in the keyring, set {wanted.env}, or run on a terminal to be asked for it"
    )


def _noun(wanted: Wanted) -> str:
    return wanted.label.removeprefix("the ").split(" of ")[0]


def rejected(wanted: Wanted, secret: Secret, why: str) -> Secret:
    """``secret`` was refused by the directory: forget it if stored, and ask once if possible.

    Raises AuthError when there is nobody to ask, or the refused secret was not a stored one.
    """
    if secret.origin != "keyring":
        raise AuthError(why)
    store = keystore.current()
    store.delete(wanted.entry)
    message = (
        f"the directory refused {wanted.label} stored in the keyring for {wanted.source}; "
        "it has been removed from the keyring"
    )
    if not can_prompt():
        raise AuthError(
            f"{message}. Run `bitkey-dir login {wanted.source}` to store the current one",
            hint=why,
        )
    sys.stderr.write(f"notice: {message}. Type the current one (asked once).\n")
    typed = _prompt(wanted)
    if not typed:
        raise AuthError(f"no {_noun(wanted)} for {wanted.source}: {message}")
    return Secret(typed, "prompt")


def remember(wanted: Wanted, secret: Secret) -> None:
    """After a re-typed secret worked, keep it where the refused one was."""
    if secret.origin == "prompt":
        try:
            keystore.current().set(wanted.entry, secret.value)
        except AuthError as exc:
            sys.stderr.write(f"notice: {exc.message}\n")


def read_for_login(wanted: Wanted) -> Secret:
    """For `bitkey-dir login`: a hidden prompt on a terminal, else one line of stdin."""
    if sys.stdin.isatty():
        typed = _prompt(wanted)
        if not typed:
            raise InputError(f"no {_noun(wanted)} typed: nothing stored")
        return Secret(typed, "prompt")
    # UTF-8 takes up to 4 bytes a character: read enough bytes for _LONGEST characters.
    raw = sys.stdin.buffer.readline(4 * _LONGEST + 2)
    try:
        value = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise InputError("standard input is not UTF-8 text: nothing stored") from None
    if len(value) > _LONGEST or not value.isprintable():
        raise InputError(
            f"expected {wanted.label} as one line of at most {_LONGEST} printable characters "
            "on standard input: nothing stored"
        )
    if not value:
        raise InputError(
            f"expected {wanted.label} on the first line of standard input: nothing stored"
        )
    return Secret(value, "stdin")
