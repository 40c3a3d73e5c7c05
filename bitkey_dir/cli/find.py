"""`bitkey-dir find`: the helpdesk lookup by Key ID or computer name."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bitkey_dir.cli.common import (
    Listing,
    WaitSeconds,
    echo_parts,
    error_line,
    notice,
    query_from,
    report,
    run_for,
    stdout_is_terminal,
    use_color,
    warn,
)

if TYPE_CHECKING:
    from bitkey_dir.ops.lookup import LookupResult


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    key = "key"
    phone = "phone"


def find(
    ctx: typer.Context,
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            "-k",
            help="Key ID from the recovery screen: its first 8 hex digits, more, or the full GUID.",
        ),
    ] = None,
    computer: Annotated[
        str | None,
        typer.Option(
            "--computer", "-c", help="Computer name (NetBIOS or DNS); * matches any characters."
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Configured source name, or a key file or folder. Repeatable. "
            "Default: [defaults] sources in the config.",
        ),
    ] = None,
    output_format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="table (default on a terminal), json (default otherwise), csv, "
            "key (passwords only) or phone (numbered groups for reading aloud).",
            case_sensitive=False,
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why the key is revealed, e.g. a ticket number."),
    ] = None,
    include_deleted: Annotated[
        bool,
        typer.Option("--include-deleted", help="Also keys of deleted computer objects."),
    ] = False,
    identity: Annotated[
        list[Path] | None,
        typer.Option(
            "--identity",
            "-i",
            help="age or SSH private key that decrypts encrypted exports. Repeatable.",
        ),
    ] = None,
    then_rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Then have the keys shown replaced (see `bitkey-dir rotate`).",
        ),
    ] = False,
    wait: WaitSeconds = None,
    no_index: Annotated[
        bool,
        typer.Option(
            "--no-index",
            help="Search the directories without the Key ID index (see `bitkey-dir index`).",
        ),
    ] = False,
    key_package: Annotated[
        Path | None,
        typer.Option(
            "--key-package",
            help="Also write the key's key package (AD msFVE-KeyPackage, for repair-bde -kp) "
            "to this new file (mode 0600; never replaces a file). Needs --key-id naming one key.",
        ),
    ] = None,
) -> None:
    """Find recovery keys by Key ID or computer name.

    Exit codes: 0 found, 1 nothing found, 2 bad input (also: --key-package with a Key ID
    naming several keys, or a file that exists), 3 sign-in or rights problem (also: the key
    was found without a readable key package; then nothing is shown), 4 a source failed
    (and nothing was found), 5 one Key ID is escrowed for several computers or with several
    passwords (nothing is shown; the refusal is in the trail). With --rotate, 3 or 4 when
    the rotation failed (with --wait: also 4 when a device reported it failed or not
    supported; a rotation still pending when the wait ends leaves the exit code as it was).
    """
    from bitkey_dir.cli.rotate import show as show_rotation
    from bitkey_dir.ops import lookup

    example = "bitkey-dir find --key-id 063EA4E1"
    query = query_from(key_id, computer, include_deleted=include_deleted, example=example)
    fmt = output_format.value if output_format else "table" if stdout_is_terminal() else "json"
    result = lookup.find(
        run_for(ctx),
        query,
        source or [],
        reason=reason,
        identities=identity or [],
        use_index=not no_index,
        key_package=key_package,
        then_rotate=then_rotate,
        wait=wait,
        shown=_shower(fmt),
    )
    for rotated in result.rotations:
        # After the keys: on stderr, so that stdout stays the lookup's output.
        show_rotation(rotated, Listing.table, err=True)
    raise typer.Exit(result.exit_code)


def _shower(fmt: str) -> Callable[[LookupResult], None]:
    """What find shows once the trail holds the reveal: the notes, then the keys (or, when
    --key-package failed, why nothing is shown)."""
    from bitkey_dir.render import keys

    def show(result: LookupResult) -> None:
        if result.trail_problem:
            warn(result.trail_problem)
        if result.key_package is not None:
            notice(keys.package_written(result))
        report(result.warnings, result.sources)
        if result.package_problem is not None:
            error_line(keys.package_refused(result))
        else:
            echo_parts(keys.shown(result, fmt, style=typer.style if use_color() else None))

    return show
