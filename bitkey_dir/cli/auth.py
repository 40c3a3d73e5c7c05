"""`bitkey-dir login`, `logout` and `auth status`: credentials kept in the keyring."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from bitkey_dir.cli.common import state
from bitkey_dir.errors import AuthError, InputError

if TYPE_CHECKING:
    from bitkey_dir.config import Config
    from bitkey_dir.credentials import Secret, Wanted
    from bitkey_dir.keystore import Keystore
    from bitkey_dir.sources.base import SignsIn

auth_app = typer.Typer(help="What is stored for signing in.", no_args_is_help=True)

SourceName = Annotated[
    str, typer.Argument(help="A configured source name (see `bitkey-dir sources`).")
]


def _prepare(ctx: typer.Context) -> tuple[Config, Keystore]:
    from bitkey_dir import keystore
    from bitkey_dir.config import load_config

    config = load_config(state(ctx).config_path)
    return config, keystore.begin_run(allow_plaintext=config.allow_plaintext_keyring)


def _signs_in(config: Config, name: str) -> SignsIn:
    from bitkey_dir.sources.base import SignsIn
    from bitkey_dir.sources.registry import open_source

    source = open_source(config, name)
    if not isinstance(source, SignsIn):
        raise InputError(f"{name} has no credentials to store: its keys are read directly")
    return source


def login(ctx: typer.Context, source: SourceName) -> None:
    """Sign in to a source once and keep the credential in the keyring.

    Prompts on a terminal; otherwise reads the password or client secret from the first line
    of standard input. The credential is proved with a real bind or sign-in before it is
    stored. Exit codes: 0 stored, 2 bad input, 3 refused or no usable keyring, 4 unreachable.
    """
    config, store = _prepare(ctx)
    signs_in = _signs_in(config, source)
    if not store.usable:
        raise AuthError(
            f"nothing can be stored: keyring not usable ({store.info().describe()})",
            hint="use BITKEY_DIR_PASSWORD / BITKEY_DIR_CLIENT_SECRET, or be asked on each run",
        )
    wanted = signs_in.login_secret
    secret = read_for_login(wanted) if wanted is not None else None
    typer.echo(f"{source}: {signs_in.login(secret)} ({store.info().name})")


def read_for_login(wanted: Wanted) -> Secret:
    """For `bitkey-dir login`: a hidden prompt on a terminal, else one line of stdin."""
    from bitkey_dir import credentials

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


def logout(ctx: typer.Context, source: SourceName) -> None:
    """Remove the stored password or client secret and the saved tokens of a source."""
    config, store = _prepare(ctx)
    signs_in = _signs_in(config, source)
    removed = signs_in.logout()
    if not store.usable:
        store.announce()
    if removed:
        typer.echo(f"{source}: removed {', '.join(removed)}")
    elif store.usable:
        typer.echo(f"{source}: nothing was stored")
    else:
        typer.echo(f"{source}: nothing removed (the keyring could not be checked)")


@auth_app.command("status")
def status(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Source names (default: every configured source).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Per source: the account, whether a secret and tokens are stored, and when tokens expire.

    Also names the keyring backend in use. Never shows a secret.
    """
    from bitkey_dir.sources.base import SignsIn
    from bitkey_dir.sources.registry import open_source

    config, store = _prepare(ctx)
    names = sources or list(config.sources)
    rows: list[dict[str, object]] = []
    for name in dict.fromkeys(names):
        source = open_source(config, name)
        row: dict[str, object] = {"source": name, "type": getattr(source, "type_name", None)}
        if isinstance(source, SignsIn):
            row.update(source.auth_status())
        else:
            row.update({"account": None, "secret": None, "stored": None, "tokens": None})
        rows.append(row)
    info = store.info()
    keyring = {
        "backend": info.name,
        "usable": info.usable,
        "plaintext": info.plaintext,
        "problem": info.problem,
    }
    if as_json:
        import json

        typer.echo(json.dumps({"keyring": keyring, "sources": rows}, indent=2))
        return
    typer.echo(f"keyring: {info.describe()}")
    for row in rows:
        typer.echo(_line(row))


def _line(row: dict[str, object]) -> str:
    parts = [str(row["account"])] if row.get("account") else []
    secret = row.get("secret")
    if secret:
        stored = row.get("stored")
        where = {True: "stored", False: "not stored", None: "unknown (no keyring)"}
        parts.append(f"{secret} {where.get(stored if isinstance(stored, bool) else None)}")
        if row.get("environment"):
            parts.append("the environment variable is set and takes precedence")
    tokens = row.get("tokens")
    if isinstance(tokens, dict):
        if tokens.get("summary"):
            parts.append(f"tokens: {tokens['summary']}")
        elif tokens.get("problem"):
            parts.append(f"tokens unusable: {tokens['problem']}")
        else:
            parts.append("no saved sign-in")
    if not parts:
        parts.append("nothing to store (keys are read directly)")
    return f"{row['source']} ({row['type']}): " + "; ".join(parts)
