"""`bitkey-dir find`: the helpdesk lookup by Key ID or computer name."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bitkey_dir.cli.common import (
    error_line,
    notice,
    report,
    run_for,
    stdout_is_terminal,
    use_color,
    warn,
)
from bitkey_dir.core.errors import InputError

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
    (and nothing was found).
    """
    # Parsing happens before any source is touched, so bad input costs nothing and says why.
    from bitkey_dir.core.model import ComputerName, KeyId, Query
    from bitkey_dir.ops import lookup, policy
    from bitkey_dir.render.keys import render, summary

    if (key_id is None) == (computer is None):
        raise InputError(
            "give exactly one of --key-id ID and --computer NAME",
            hint="bitkey-dir find --key-id 063EA4E1",
        )
    policy.check_reason(reason)
    if key_package is not None and key_id is None:
        raise InputError(
            "--key-package needs --key-id: a key package belongs to one key",
            hint="bitkey-dir find --key-id 063EA4E1 --key-package keypackage.bin",
        )
    query = Query(
        key_id=KeyId.parse(key_id) if key_id is not None else None,
        computer=ComputerName.parse(computer) if computer is not None else None,
        include_deleted=include_deleted,
    )
    result = lookup.find(
        run_for(ctx),
        query,
        source or [],
        reason=reason,
        identities=identity or [],
        use_index=not no_index,
        key_package=key_package,
    )
    if result.trail_problem:
        warn(result.trail_problem)
    if result.package_problem is not None:
        report(result.warnings, result.sources)
        error_line(
            f"no key package written: {result.package_problem}. Nothing was revealed: "
            "run without --key-package to read the recovery password"
        )
        raise typer.Exit(result.exit_code)
    if result.key_package is not None:
        notice(f"key package written to {result.key_package} (mode 0600)")
    default = "table" if stdout_is_terminal() else "json"
    fmt = output_format.value if output_format else default
    text = render(result, fmt, style=typer.style if use_color() else None)
    report(result.warnings, result.sources)
    typer.echo(text, nl=False)
    if fmt == "table":
        typer.echo(summary(result))
    elif not result.keys or result.ambiguous:
        typer.echo(summary(result), err=True)
    code: int = result.exit_code
    if then_rotate and code == 0:
        code = _rotate_shown(ctx, result, reason)
    raise typer.Exit(code)


def _rotate_shown(ctx: typer.Context, result: LookupResult, reason: str | None) -> int:
    """After a reveal: rotate exactly the keys shown, in the sources that held them; the
    rotation's lines go to stderr so that stdout stays the lookup's output."""
    from bitkey_dir.cli.common import Listing
    from bitkey_dir.cli.rotate import show
    from bitkey_dir.core.model import Query
    from bitkey_dir.ops import rotate

    codes = []
    run = run_for(ctx)
    for key in result.keys:
        if key.recovery_password is None:
            continue
        rotated = rotate.rotate(run, Query(key_id=key.key_id), [key.source], reason=reason)
        show(rotated, Listing.table, err=True)
        codes.append(int(rotated.exit_code))
    # A device to rotate by hand is not a failure here: the key was found, the steps shown.
    failures = [code for code in codes if code in (3, 4)]
    return 3 if 3 in failures else max(failures, default=0)
