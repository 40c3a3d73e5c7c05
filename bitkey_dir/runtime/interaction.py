"""How bitkey-dir reaches the person running it: notices, instructions, hidden prompts, progress.

Nothing below the command line writes to a terminal. Operations are given an
:class:`Interaction` and install it for their duration (:func:`using`); code deep inside a
source (a keyring notice, a password prompt, device-code sign-in steps) asks
:func:`current` for it. The command line passes a terminal one (``bitkey_dir.cli.terminal``);
the library's default, :class:`Quiet`, logs notices and never prompts, so a script can never
hang on a prompt nobody sees.

The interaction is a context variable: threads that work for an operation run in a copy of
its context (:func:`run_in_copy`), so they see the same interaction.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Final, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("bitkey_dir")


class Interaction(Protocol):
    """What an operation may ask of the person running it. Never given a recovery password."""

    def notice(self, message: str) -> None:
        """Something the user should know now (a keyring that is not used, a sign-in that
        could not be saved); one line."""
        ...

    def instructions(self, text: str) -> None:
        """Steps the user must follow now, shown as they are (device-code sign-in)."""
        ...

    def can_prompt(self) -> bool:
        """Whether somebody can answer a prompt."""
        ...

    def secret(self, prompt: str) -> str:
        """A hidden answer to ``prompt``; empty when nothing was typed. Called only after
        :meth:`can_prompt` said yes."""
        ...

    def progress(self, items: Iterable[T], label: str) -> Iterator[T]:
        """``items``, passed through, while showing how many have gone by."""
        ...


class Quiet:
    """The library's default: notices and instructions go to the ``bitkey_dir`` logger,
    nobody is asked anything, and progress is not shown."""

    def notice(self, message: str) -> None:
        log.warning("%s", message)

    def instructions(self, text: str) -> None:
        log.warning("%s", text)

    def can_prompt(self) -> bool:
        return False

    def secret(self, prompt: str) -> str:
        return ""

    def progress(self, items: Iterable[T], label: str) -> Iterator[T]:
        yield from items


QUIET: Final = Quiet()
_CURRENT: contextvars.ContextVar[Interaction] = contextvars.ContextVar(
    "bitkey_dir_interaction", default=QUIET
)


def current() -> Interaction:
    """The interaction of the operation running in this context (Quiet outside one)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(interaction: Interaction) -> Iterator[Interaction]:
    """Make ``interaction`` the current one for the block."""
    token = _CURRENT.set(interaction)
    try:
        yield interaction
    finally:
        _CURRENT.reset(token)


def run_in_copy(function: Callable[[T], R]) -> Callable[[T], R]:
    """``function`` made to run in a copy of this context, for worker threads: a thread
    starts with an empty context, and one context cannot run in two threads at once."""
    context = contextvars.copy_context()

    def call(argument: T) -> R:
        return context.copy().run(function, argument)

    return call
