"""What commands share: global options, error and long output, and terminal checks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from bitkey_dir.core.errors import BitkeyError, InputError

if TYPE_CHECKING:
    from bitkey_dir.core.model import Query
    from bitkey_dir.ops.outcome import SourceStatus
    from bitkey_dir.ops.run import Run
    from bitkey_dir.render.output import Part


class Listing(StrEnum):
    table = "table"
    json = "json"


# Options declared once: `--format table|json` wherever a listing is printed, with `--json`
# kept as the older spelling.
ListingFormat = Annotated[
    Listing,
    typer.Option("--format", "-f", help="table (for people) or json.", case_sensitive=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="The same as --format json.")]
WaitSeconds = Annotated[
    int | None,
    typer.Option(
        "--wait",
        "-w",
        metavar="SECONDS",
        help="Once a rotation is asked for (rotate, find --rotate): wait up to SECONDS (e.g. "
        "300) for Intune to report each rotation done (with the new Key ID), failed or not "
        "supported.",
    ),
]


def wants_json(listing: Listing, as_json: bool) -> bool:
    return as_json or listing == Listing.json


@dataclass(frozen=True)
class State:
    config_path: Path | None


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State(config_path=None)


def error_line(message: str, hint: str | None = None) -> None:
    """One error line (and a hint), with any control or bidi character from data escaped."""
    from bitkey_dir.core.display import safe

    typer.echo(f"bitkey-dir: error: {safe(message)}", err=True)
    if hint:
        typer.echo(f"hint: {safe(hint)}", err=True)


def fail(exc: BitkeyError) -> NoReturn:
    error_line(exc.message, exc.hint)
    raise typer.Exit(exc.exit_code)


def warn(message: str) -> None:
    """One warning line: paths and names in it come from data, so controls are escaped."""
    from bitkey_dir.core.display import safe

    typer.echo(f"warning: {safe(message)}", err=True)


def notice(message: str) -> None:
    from bitkey_dir.core.display import safe

    typer.echo(f"notice: {safe(message)}", err=True)


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


def echo_parts(parts: Iterable[Part], *, notes_only: bool = False) -> None:
    """A renderer's parts, the result on standard output and notes on standard error; with
    ``notes_only``, all on standard error (when standard output carries something else)."""
    for part in parts:
        typer.echo(part.text, nl=False, err=part.note or notes_only)


def run_for(ctx: typer.Context) -> Run:
    """The operation context of this command: its config, the terminal, and its command line
    (which the access trail records)."""
    from bitkey_dir.cli.terminal import TERMINAL
    from bitkey_dir.ops.run import Run
    from bitkey_dir.runtime.config import load_config

    return Run(load_config(state(ctx).config_path), TERMINAL, tuple(sys.argv[1:]))


def report(warnings: Iterable[str], statuses: Iterable[SourceStatus] = ()) -> None:
    """Warnings, then one error line for each source that failed."""
    for message in warnings:
        warn(message)
    for status in statuses:
        if status.status != "ok":
            error_line(f"{status.name}: {status.error}", status.hint)


def query_from(
    key_id: str | None, computer: str | None, *, include_deleted: bool = False, example: str
) -> Query:
    """The query of --key-id or --computer (exactly one), parsed before any source is
    touched, so that bad input costs nothing and says why (``example`` shows the way)."""
    from bitkey_dir.core.model import ComputerName, KeyId, Query

    if (key_id is None) == (computer is None):
        raise InputError("give exactly one of --key-id ID and --computer NAME", hint=example)
    return Query(
        key_id=KeyId.parse(key_id) if key_id is not None else None,
        computer=ComputerName.parse(computer) if computer is not None else None,
        include_deleted=include_deleted,
    )


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def use_color() -> bool:
    return stdout_is_terminal() and not os.environ.get("NO_COLOR")
