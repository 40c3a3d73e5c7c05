"""`bitkey-dir verify`: check a recovery password that a user reads back, group by group."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bitkey_dir.core.errors import ExitCode, InputError

_MAX_INPUT = 4096


def verify(
    typed_on_command_line: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
) -> None:
    """Check a recovery password read back by a user; say which group is wrong.

    The password is read from a prompt on a terminal, or from the first line of standard
    input (never from the command line, where it would land in shell history).
    Exit codes: 0 valid, 1 not valid, 2 no input.
    """
    from bitkey_dir.core.model import check_password

    if typed_on_command_line:
        # Refuse without echoing: click's own error would repeat the digits into logs.
        raise InputError(
            "verify does not take the password as an argument (it would stay in shell "
            "history): run `bitkey-dir verify` and type it at the prompt, or pipe it in"
        )

    if sys.stdin.isatty():
        from bitkey_dir.cli.terminal import TERMINAL

        # Hidden, like every secret typed here: the screen may be shared, recorded, or seen.
        text = TERMINAL.secret("Recovery password (as the user reads it): ")
    else:
        text = sys.stdin.readline(_MAX_INPUT)
    if not text.strip():
        raise InputError("no recovery password given on standard input or at the prompt")
    check = check_password(text)
    if check.valid:
        typer.echo("valid: all 8 groups pass their checksum")
        raise typer.Exit(ExitCode.FOUND)
    typer.echo(f"not valid: {check.problem}")
    raise typer.Exit(ExitCode.NOT_FOUND)
