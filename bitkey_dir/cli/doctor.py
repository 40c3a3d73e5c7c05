"""`bitkey-dir doctor`: check servers, certificates, sign-in and rights; say how to fix them."""

from __future__ import annotations

from typing import Annotated

import typer

from bitkey_dir.cli.common import JsonFlag, Listing, ListingFormat, run_for, wants_json, warn


def doctor(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Argument(
            help="Source names, key file paths or ldaps:// URLs (default: every configured one).",
            show_default=False,
        ),
    ] = None,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """Check that each source can be used, and say what to fix.

    AD: each server's reachability, certificate chain, host name and expiry; the bind; the
    clock (Kerberos); per OU, how many recovery objects this account sees and whose
    passwords it can read (a small sample; no password is shown), with the dsacls lines
    that grant the missing rights. Entra ID: sign-in, the token's permissions and roles
    against what each command needs, and the admin-consent URL. Files: each path, the key
    files found and the files that will be skipped. Exit codes: 0 healthy (warnings
    allowed), 3 a right or sign-in missing, 4 something unreachable or failing.
    """
    from bitkey_dir.ops import doctor as doctoring
    from bitkey_dir.render import doctor as rendering

    result = doctoring.diagnose(run_for(ctx), source or [])
    for message in result.warnings:
        warn(message)
    fmt = "json" if wants_json(output_format, as_json) else "table"
    typer.echo(rendering.render(result, fmt), nl=False)
    raise typer.Exit(result.exit_code)
