"""One exception hierarchy; each class carries the exit code the CLI turns it into.

Messages are shown to users as one line. They must never contain a recovery password or a
credential: build them from names, counts and positions, not from secret values.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes that runbooks rely on (README, "Exit codes")."""

    FOUND = 0
    NOT_FOUND = 1
    BAD_INPUT = 2
    AUTH = 3
    SOURCE_FAILED = 4
    CONFLICT = 5
    INTERNAL = 70
    INTERRUPTED = 130


class BitkeyError(Exception):
    """Base class: a problem the user can act on, with a one-line message."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class NothingFound(BitkeyError):
    """Every source answered, and there was nothing: no key, nothing to export."""

    exit_code = ExitCode.NOT_FOUND


class InputError(BitkeyError):
    """Bad usage or bad input: a malformed Key ID, a wrong option combination."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(InputError):
    """The configuration file is missing a key, has a wrong value, or is not valid TOML."""


class AuthError(BitkeyError):
    """Sign-in failed, or the account lacks the rights to read recovery passwords."""

    exit_code = ExitCode.AUTH


class SourceError(BitkeyError):
    """A source is unreachable or failing; its answer cannot be trusted."""

    exit_code = ExitCode.SOURCE_FAILED


class ConflictError(BitkeyError):
    """The directories disagree about a key (one Key ID on several computers, or with
    several passwords): nothing is revealed, and retrying will not help. Its own exit code,
    so that a runbook stops and escalates instead of treating it as an outage (4)."""

    exit_code = ExitCode.CONFLICT
