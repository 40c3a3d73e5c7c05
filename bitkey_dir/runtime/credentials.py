"""Where secrets come from, in one documented order:

1. the environment (``BITKEY_DIR_PASSWORD``, ``BITKEY_DIR_CLIENT_SECRET``),
2. the keyring (stored by ``bitkey-dir login``),
3. a hidden prompt, only when the current interaction can ask (a terminal, for the CLI),
4. else an AuthError (exit 3) naming ``bitkey-dir login``.

A stored secret that the directory rejects is never tried again, because repeated failures
lock accounts: it is removed from the keyring, the user is told, and on a terminal asked once.
Secrets are never taken from command-line arguments and never written anywhere but the keyring.
Prompts and notices go through :mod:`bitkey_dir.runtime.interaction`; nothing here touches a
terminal.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Final, Literal

from bitkey_dir.core.errors import AuthError
from bitkey_dir.runtime import interaction, keystore

LONGEST: Final = 1024  # far above any real password; a bigger input is a mistake, not a secret
_PROMPTING = threading.Lock()
Origin = Literal["environment", "keyring", "prompt", "stdin"]


def can_prompt() -> bool:
    """Whether somebody can be asked for a secret in this operation."""
    return interaction.current().can_prompt()


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


def ask(wanted: Wanted) -> str:
    """A hidden prompt for ``wanted`` through the current interaction; empty if none typed."""
    # Sources are asked concurrently; two prompts at once would garble the terminal.
    with _PROMPTING:
        return interaction.current().secret(
            f"{wanted.label[0].upper()}{wanted.label[1:]} ({wanted.source}): "
        )


def obtain(wanted: Wanted) -> Secret:
    """The secret, from the first place that has it (see the module docstring)."""
    from_env = os.environ.get(wanted.env)
    if from_env:
        return Secret(from_env, "environment")
    stored = keystore.current().get(wanted.entry)
    if stored:
        return Secret(stored, "keyring")
    if can_prompt():
        typed = ask(wanted)
        if typed:
            return Secret(typed, "prompt")
        raise AuthError(
            f"no {noun(wanted)} typed: nothing to sign in with",
            hint=f"`bitkey-dir login {wanted.source}` stores it in the keyring",
        )
    if not keystore.current().usable:
        # `login` would fail too: it stores in the keyring, and there is none to use.
        raise AuthError(
            f"no {noun(wanted)} for {wanted.source}: set {wanted.env} (no keyring is usable "
            "here to keep it in, and there is no terminal to ask on)"
        )
    raise AuthError(
        f"no {noun(wanted)} for {wanted.source}: run `bitkey-dir login {wanted.source}` to "
        f"store it in the keyring, set {wanted.env}, or run on a terminal to be asked for it"
    )


def noun(wanted: Wanted) -> str:
    """What the secret is, in a word or two: "password", "client secret"."""
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
    interaction.current().notice(f"{message}. Type the current one (asked once).")
    typed = ask(wanted)
    if not typed:
        raise AuthError(f"no {noun(wanted)} for {wanted.source}: {message}")
    return Secret(typed, "prompt")


def remember(wanted: Wanted, secret: Secret) -> None:
    """After a re-typed secret worked, keep it where the refused one was."""
    if secret.origin == "prompt":
        try:
            keystore.current().set(wanted.entry, secret.value)
        except AuthError as exc:
            interaction.current().notice(exc.message)
