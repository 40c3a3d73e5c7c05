"""Where secrets come from, in one documented order:

1. the environment: the source's own variable (``BITKEY_DIR_PASSWORD_<SOURCE>``,
   ``BITKEY_DIR_CLIENT_SECRET_<SOURCE>``: the source's name in upper case, each character
   other than a letter or a digit an underscore), else the bare one (``BITKEY_DIR_PASSWORD``,
   ``BITKEY_DIR_CLIENT_SECRET``) when it can only be meant for this source's account: no
   source of the same operation that would read it signs in as another account. A bare
   variable that would go to two accounts is refused (exit 2) before any sign-in, since one
   account's password sent to another's bind counts towards that account's lockout;
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

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final, Literal

from bitkey_dir.core.errors import AuthError, InputError
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
    env: str  # the bare environment variable that overrides the keyring (one source only)
    entry: str  # the keyring entry

    @property
    def own_env(self) -> str:
        """The source's own variable: ``BITKEY_DIR_PASSWORD_HELPDESK_AD`` for "helpdesk-ad"."""
        return own_variable(self.env, self.source)


def own_variable(env: str, source: str) -> str:
    """``env`` for one source: its name in upper case, other characters as underscores.

    >>> own_variable("BITKEY_DIR_PASSWORD", "corp-ad.emea")
    'BITKEY_DIR_PASSWORD_CORP_AD_EMEA'
    """
    return f"{env}_{re.sub(r'[^A-Z0-9]', '_', source.upper())}"


# The sources of the current operation that would read each bare variable, and the account
# each signs in as (its Wanted's label: "the password of helpdesk@corp.example"). A fresh
# table per operation: Run.active() opens claims(), Run.open() claims for each source it
# opens. Shared by the worker threads, which run in copies of the operation's context.
_CLAIMS: ContextVar[dict[str, dict[str, str]] | None] = ContextVar(
    "bitkey_dir_claims", default=None
)


@contextlib.contextmanager
def claims() -> Iterator[None]:
    """The block is one operation: its sources claim variables afresh, and what they
    claimed is forgotten when it ends."""
    token = _CLAIMS.set({})
    try:
        yield
    finally:
        _CLAIMS.reset(token)


def claim(wanted: Wanted) -> None:
    """``wanted.source`` takes part in this operation and would read ``wanted.env``."""
    table = _CLAIMS.get()
    if table is not None:
        table.setdefault(wanted.env, {})[wanted.source] = wanted.label.casefold()


def check_shared() -> None:
    """Refuse (InputError, exit 2), before any source signs in, a bare variable that would
    be sent to more than one account in this operation."""
    for env, sources in (_CLAIMS.get() or {}).items():
        for source, account in sorted(sources.items()):
            refusal = _shared_refusal(env, source, account)
            if refusal is not None:
                raise refusal


def in_environment(wanted: Wanted) -> bool:
    """Whether the environment holds a secret for ``wanted`` (its own variable or the bare one)."""
    return bool(os.environ.get(wanted.own_env) or os.environ.get(wanted.env))


def _from_environment(wanted: Wanted) -> str | None:
    refusal = _shared_refusal(wanted.env, wanted.source, wanted.label.casefold())
    if refusal is not None:
        raise refusal
    return os.environ.get(wanted.own_env) or os.environ.get(wanted.env) or None


def _shared_refusal(env: str, source: str, account: str) -> InputError | None:
    """Why ``source`` (signing in as ``account``) may not take its secret from the
    environment: the variable it would read would also go to another account in this
    operation. None when it may."""
    claimed = dict((_CLAIMS.get() or {}).get(env) or {})
    claimed[source] = account
    own = own_variable(env, source)
    if os.environ.get(own):
        twins = sorted(
            other
            for other, theirs in claimed.items()
            if other != source and own_variable(env, other) == own and theirs != account
        )
        if not twins:
            return None
        return InputError(
            f"{own} would be read by the sources {source} and {twins[0]} alike, whose names "
            "differ only in punctuation: rename one of them in the config"
        )
    if not os.environ.get(env) or len(set(claimed.values())) <= 1:
        return None
    every = sorted(claimed)
    names = ", ".join(own_variable(env, name) for name in every)
    return InputError(
        f"{env} is set, but {len(every)} sources of this command sign in as different "
        f"accounts ({', '.join(every)}): it would be sent to each of them, and a wrong one "
        f"counts towards an account's lockout. Set {names} instead, or ask one source "
        "(--source NAME)"
    )


def ask(wanted: Wanted) -> str:
    """A hidden prompt for ``wanted`` through the current interaction; empty if none typed."""
    # Sources are asked concurrently; two prompts at once would garble the terminal.
    with _PROMPTING:
        return interaction.current().secret(
            f"{wanted.label[0].upper()}{wanted.label[1:]} ({wanted.source}): "
        )


def obtain(wanted: Wanted) -> Secret:
    """The secret, from the first place that has it (see the module docstring)."""
    from_env = _from_environment(wanted)
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
