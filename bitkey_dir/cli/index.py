"""`bitkey-dir index refresh|status|clear`: the Key ID index that makes 8 digits fast."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from bitkey_dir.cli.common import (
    JsonFlag,
    Listing,
    ListingFormat,
    echo_parts,
    report,
    run_for,
    wants_json,
)


class Refresh(StrEnum):
    auto = "auto"
    full = "full"
    devices = "devices"
    changes = "changes"


index_app = typer.Typer(
    help="The Key ID index: where each key is (never a password), for fast lookups.",
    no_args_is_help=True,
)

Sources = Annotated[
    list[str] | None,
    typer.Option(
        "--source", "-s", help="A configured source name. Repeatable. Default: every source."
    ),
]


@index_app.command("refresh")
def refresh(
    ctx: typer.Context,
    source: Sources = None,
    due: Annotated[
        bool,
        typer.Option("--due", help="Only sources whose index is older than index_max_age."),
    ] = False,
    how: Annotated[
        Refresh,
        typer.Option(
            "--how",
            help="auto: a full listing when index_full_age has passed, every device's keys "
            "when index_devices_age has, else the devices changed since (Entra); full, "
            "devices or changes: that one.",
        ),
    ] = Refresh.auto,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """List every key of the sources (Key IDs, computers, dates; never a password) into the
    index. A source that fails keeps its previous index. Entra sources are listed device
    by device, many at once, or only their changed devices (--how).

    Exit codes: 0 done, 2 bad input (also: the path holds no index), 3 sign-in or rights,
    4 a source failed (or the index is damaged: bitkey-dir index clear).
    """
    from bitkey_dir.ops import index
    from bitkey_dir.render import index as rendering

    result = index.refresh(run_for(ctx), source or [], due_only=due, how=how.value)
    if wants_json(output_format, as_json):
        typer.echo(rendering.refresh_json(result), nl=False)
    else:
        echo_parts(rendering.refresh_table(result))
    report(result.warnings, result.sources)
    raise typer.Exit(result.exit_code)


@index_app.command("status")
def status(
    ctx: typer.Context,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """Show each source's part of the index: when it was refreshed, how many keys, whether a
    refresh is due.

    Exit codes: 0 done, 2 the path holds no index, 4 the index is damaged.
    """
    from bitkey_dir.ops import index
    from bitkey_dir.render import index as rendering

    result = index.status(run_for(ctx))
    if wants_json(output_format, as_json):
        typer.echo(rendering.status_json(result), nl=False)
    else:
        echo_parts(rendering.status_table(result))


@index_app.command("clear")
def clear(ctx: typer.Context, source: Sources = None) -> None:
    """Drop sources from the index (all of it when none is named). Lookups still work: they
    search the directories until the next refresh.

    Only a bitkey-dir index is cleared: a damaged one is removed whole, and a path holding
    anything else (a link, a pipe, a device, another program's file) is left alone.
    Exit codes: 0 done, 2 the path holds no index, 4 a damaged index with --source.
    """
    from bitkey_dir.ops import index
    from bitkey_dir.render import index as rendering

    echo_parts(rendering.cleared(index.clear(run_for(ctx), source or [])))
