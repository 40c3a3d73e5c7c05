"""`bitkey-dir rights show|grant|revoke`: who may read recovery keys, and delegating it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from bitkey_dir.core.rights import Action

rights_app = typer.Typer(
    help="Who may read recovery keys, and granting or revoking it (AD OUs, Entra roles).",
    no_args_is_help=True,
)

Ou = Annotated[
    str | None,
    typer.Option("--ou", help="The OU's DN (AD). Default for show: the whole domain."),
]
Principal = Annotated[
    str,
    typer.Option(
        "--principal", "-p", help="The account or group: name@domain, DOMAIN\\name or a SID."
    ),
]
KeyPackages = Annotated[
    bool,
    typer.Option("--key-packages", help="Key packages too (revoke: only the key packages)."),
]
WhatIf = Annotated[
    bool, typer.Option("--what-if", help="Say what would change, and how by hand; change nothing.")
]
OneSource = Annotated[
    str | None, typer.Option("--source", "-s", help="The source (default: the one that can).")
]


@rights_app.command("show")
def show(
    ctx: typer.Context,
    ou: Ou = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="A configured source name. Repeatable."),
    ] = None,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """Every principal that can see recovery objects and read recovery passwords and key
    packages (AD: below the OU, through which ACE; Entra: through which role).

    Exit codes: 0 shown, 1 nobody holds a right, 2 bad input, 3 the rights may not be read,
    4 a source failed.
    """
    from bitkey_dir.ops import rights
    from bitkey_dir.render import rights as rendering

    result = rights.show(run_for(ctx), source or [], ou)
    if wants_json(output_format, as_json):
        typer.echo(rendering.show_json(result), nl=False)
    else:
        echo_parts(rendering.show_lines(result))
    report(result.warnings, result.sources)
    raise typer.Exit(result.exit_code)


def _change(
    ctx: typer.Context,
    action: Action,
    ou: str | None,
    principal: str,
    options: tuple[bool, bool, str | None, bool],
) -> None:
    from bitkey_dir.core.errors import InputError
    from bitkey_dir.core.rights import RightsRequest
    from bitkey_dir.ops import rights
    from bitkey_dir.render import rights as rendering

    key_packages, what_if, source, json_out = options
    if not ou:
        raise InputError(f"give --ou DN: the OU whose rights to {action}")
    rights.check_principal(principal)
    request = RightsRequest(action, ou, principal, key_packages, what_if)
    result = rights.change(run_for(ctx), request, source)
    if json_out:
        typer.echo(rendering.change_json(result), nl=False)
    else:
        echo_parts(rendering.change_lines(result))
    report(result.warnings, result.sources)
    raise typer.Exit(result.exit_code)


@rights_app.command("grant")
def grant(
    ctx: typer.Context,
    principal: Principal,
    ou: Ou = None,
    key_packages: KeyPackages = False,
    what_if: WhatIf = False,
    source: OneSource = None,
    output_format: ListingFormat = Listing.table,
) -> None:
    """Add the inheritable ACEs a helpdesk needs on the OU: Read Property on the recovery
    objects, Read Property and Control Access on msFVE-RecoveryPassword (and with
    --key-packages on msFVE-KeyPackage). Run as an account allowed to change the OU's DACL.

    Exit codes: 0 done (or nothing to do), 2 bad input or unknown principal, 3 not allowed,
    4 a source failed.
    """
    json_out = output_format == Listing.json
    _change(ctx, "grant", ou, principal, (key_packages, what_if, source, json_out))


@rights_app.command("revoke")
def revoke(
    ctx: typer.Context,
    principal: Principal,
    ou: Ou = None,
    key_packages: KeyPackages = False,
    what_if: WhatIf = False,
    source: OneSource = None,
    output_format: ListingFormat = Listing.table,
) -> None:
    """Remove exactly the ACEs `rights grant` adds (with --key-packages only the key
    packages' one); other ACEs of the principal stay.

    Exit codes: 0 done (or nothing to do), 2 bad input or unknown principal, 3 not allowed,
    4 a source failed.
    """
    json_out = output_format == Listing.json
    _change(ctx, "revoke", ou, principal, (key_packages, what_if, source, json_out))
