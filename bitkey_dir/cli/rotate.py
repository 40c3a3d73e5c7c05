"""`bitkey-dir rotate`: replace recovery passwords that were read out to somebody."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bitkey_dir.cli.common import (
    Listing,
    ListingFormat,
    WaitSeconds,
    echo_parts,
    query_from,
    report,
    run_for,
    warn,
)

if TYPE_CHECKING:
    from bitkey_dir.ops.rotate import RotateResult


def rotate(
    ctx: typer.Context,
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id", "-k", help="The disclosed key: its 8 digits or more, or its GUID."
        ),
    ] = None,
    computer: Annotated[
        str | None, typer.Option("--computer", "-c", help="Every key of this computer.")
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Configured source name. Repeatable."),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why, e.g. the ticket of the disclosure."),
    ] = None,
    wait: WaitSeconds = None,
    output_format: ListingFormat = Listing.table,
) -> None:
    """Have disclosed recovery passwords replaced: Intune is asked to rotate an Entra
    device's keys; for anything else the manage-bde steps are printed. No password is shown.
    An 8-digit Key ID that matches keys of several devices rotates nothing (exit 2).

    Exit codes: 0 every device asked to rotate (with --wait: rotated), 1 nothing found, a
    device must be rotated by hand, or --wait ended with a rotation still pending, 2 bad
    input, 3 a permission is missing, 4 a source failed (with --wait: a device reported the
    rotation failed or not supported), 130 interrupted while waiting.
    """
    from bitkey_dir.ops import rotate as rotating

    example = "bitkey-dir rotate --key-id 063EA4E1 --reason INC-4711"
    query = query_from(key_id, computer, example=example)
    result = rotating.rotate(run_for(ctx), query, source or [], reason=reason, wait=wait)
    show(result, output_format)
    raise typer.Exit(result.exit_code)


def show(result: RotateResult, output_format: Listing, *, err: bool = False) -> None:
    """The rotations: on stdout, or on stderr (``err``) after a lookup whose output stdout
    carries."""
    from bitkey_dir.render import rotation

    if result.trail_problem:
        warn(result.trail_problem)
    echo_parts(rotation.render(result, output_format.value), notes_only=err)
    report(result.warnings, result.sources)
