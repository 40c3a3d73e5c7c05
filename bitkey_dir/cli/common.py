"""What commands share: global options, error and long output, and terminal checks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from bitkey_dir.errors import BitkeyError, InputError, SourceError

if TYPE_CHECKING:
    from bitkey_dir.config import Config

REASON_MAX = 500


@dataclass(frozen=True)
class State:
    config_path: Path | None


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State(config_path=None)


def error_line(message: str, hint: str | None = None) -> None:
    typer.echo(f"bitkey-dir: error: {message}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)


def fail(exc: BitkeyError) -> NoReturn:
    error_line(exc.message, exc.hint)
    raise typer.Exit(exc.exit_code)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def echo_chunks(chunks: Iterable[str], size: int = 65536) -> None:
    """Write a long output as it is produced, in writes of about ``size`` characters."""
    pending: list[str] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            typer.echo("".join(pending), nl=False)
            pending, held = [], 0
    if pending:
        typer.echo("".join(pending), nl=False)


def check_reason(reason: str | None) -> None:
    """--reason goes into the trail as one line: refuse anything else before any work."""
    if reason is not None and (len(reason) > REASON_MAX or not reason.isprintable()):
        raise InputError(f"--reason must be one printable line of at most {REASON_MAX} characters")


def demand_reason(config: Config, reason: str | None, doing: str) -> None:
    if config.require_reason and not (reason and reason.strip()):
        raise InputError(
            f"{config.path} requires a reason for {doing}: add --reason TEXT "
            "(a ticket number, for example)"
        )


def record_in_trail(entries: list[dict[str, object]], *, strict: bool, refusing: str) -> None:
    """Append to the access trail before anything is revealed; with require_reason
    (``strict``) a trail that cannot be written stops the command, else it is a warning."""
    from bitkey_dir import trail

    try:
        trail.append(entries)
    except SourceError as exc:
        if strict:
            raise SourceError(f"{refusing}: {exc.message}") from None
        warn(str(exc))


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def use_color() -> bool:
    return stdout_is_terminal() and not os.environ.get("NO_COLOR")
