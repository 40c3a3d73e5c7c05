"""`bitkey-dir login`, `logout` and `auth status`: credentials kept in the keyring."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from bitkey_dir.cli.common import JsonFlag, Listing, ListingFormat, run_for, wants_json
from bitkey_dir.core.errors import InputError

if TYPE_CHECKING:
    from bitkey_dir.runtime.credentials import Secret, Wanted

auth_app = typer.Typer(help="What is stored for signing in.", no_args_is_help=True)

SourceName = Annotated[
    str | None,
    typer.Argument(help="A configured source name (see `bitkey-dir sources`).", show_default=False),
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", "-s", help="The same, as the other commands take it."),
]


def _one_source(argument: str | None, option: str | None) -> str:
    if argument and option and argument != option:
        raise InputError(f"two sources given ({argument}, {option}): give one")
    name = argument or option
    if not name:
        raise InputError("give a configured source name: bitkey-dir login NAME (or --source NAME)")
    return name


def login(
    ctx: typer.Context, source: SourceName = None, source_option: SourceOption = None
) -> None:
    """Sign in to a source once and keep the credential in the keyring.

    Prompts on a terminal; otherwise reads the password or client secret from the first line
    of standard input. The credential is proved with a real bind or sign-in before it is
    stored. Exit codes: 0 stored, 2 bad input, 3 refused or no usable keyring, 4 unreachable.
    """
    from bitkey_dir.ops import signin
    from bitkey_dir.render.signin import login_line

    done = signin.login(run_for(ctx), _one_source(source, source_option), read_for_login)
    typer.echo(login_line(done), nl=False)


def read_for_login(wanted: Wanted) -> Secret:
    """For `bitkey-dir login`: a hidden prompt on a terminal, else one line of stdin."""
    from bitkey_dir.runtime import credentials

    if sys.stdin.isatty():
        typed = credentials.ask(wanted)
        if not typed:
            raise InputError(f"no {credentials.noun(wanted)} typed: nothing stored")
        return credentials.Secret(typed, "prompt")
    longest = credentials.LONGEST
    # UTF-8 takes up to 4 bytes a character: read enough bytes for that many characters.
    raw = sys.stdin.buffer.readline(4 * longest + 2)
    try:
        value = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise InputError("standard input is not UTF-8 text: nothing stored") from None
    if len(value) > longest or not value.isprintable():
        raise InputError(
            f"expected {wanted.label} as one line of at most {longest} printable characters "
            "on standard input: nothing stored"
        )
    if not value:
        raise InputError(
            f"expected {wanted.label} on the first line of standard input: nothing stored"
        )
    return credentials.Secret(value, "stdin")


def logout(
    ctx: typer.Context, source: SourceName = None, source_option: SourceOption = None
) -> None:
    """Remove the stored password or client secret and the saved tokens of a source."""
    from bitkey_dir.ops import signin
    from bitkey_dir.render.signin import logout_line

    source = _one_source(source, source_option)
    typer.echo(logout_line(source, signin.logout(run_for(ctx), source)), nl=False)


@auth_app.command("status")
def status(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Source names (default: every configured source).", show_default=False),
    ] = None,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """Per source: the account, whether a secret and tokens are stored, and when tokens expire.

    Also names the keyring backend in use. Never shows a secret.
    """
    from bitkey_dir.ops import signin
    from bitkey_dir.render.signin import status_json, status_table

    found = signin.status(run_for(ctx), sources or [])
    render = status_json if wants_json(output_format, as_json) else status_table
    typer.echo(render(found), nl=False)
