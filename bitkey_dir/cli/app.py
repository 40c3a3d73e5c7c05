"""The Typer application: global options, error handling, and the command list.

Imports here stay light (no source modules): `bitkey-dir --help` and `--version` must start fast.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from typer.core import TyperGroup

from bitkey_dir import __version__
from bitkey_dir.cli import (
    audit,
    auth,
    configure,
    doctor,
    export,
    find,
    index,
    reads,
    rights,
    rotate,
    serve,
    trail,
    verify,
)
from bitkey_dir.cli.common import State, fail
from bitkey_dir.core.env import CONFIG_ENV
from bitkey_dir.core.errors import BitkeyError, ExitCode


class _Group(TyperGroup):
    """Runs every command with the terminal as its interaction, and turns every BitkeyError
    into one line on stderr and its documented exit code."""

    def invoke(self, ctx: Any) -> Any:
        from bitkey_dir.cli.terminal import TERMINAL
        from bitkey_dir.runtime import interaction

        try:
            with interaction.using(TERMINAL):
                return super().invoke(ctx)
        except BitkeyError as exc:
            fail(exc)


app = typer.Typer(
    name="bitkey-dir",
    cls=_Group,
    help="Find BitLocker recovery keys in Active Directory, Entra ID and saved key files.",
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    rich_markup_mode=None,  # help texts are plain: "[defaults]" is a TOML table, not markup
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bitkey-dir {__version__}")
        raise typer.Exit(ExitCode.FOUND)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar=CONFIG_ENV,
            help="Config file (default: the platform config dir; see `config path`).",
            show_envvar=True,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Say on stderr which servers were used and how many queries."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Exit codes: 0 found, 1 nothing found, 2 bad input, 3 sign-in or rights, 4 source failed."""
    if verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="bitkey-dir: %(message)s")
    ctx.obj = State(config_path=config)


app.command("find")(find.find)
app.command("verify")(verify.verify)
app.command("sources")(configure.sources)
app.command("trail")(trail.trail)
app.command("audit")(audit.audit)
app.command("export")(export.export)
app.command("rotate")(rotate.rotate)
app.command("reads")(reads.reads)
app.command("doctor")(doctor.doctor)
app.command("serve")(serve.serve)
app.command("login")(auth.login)
app.command("logout")(auth.logout)
app.add_typer(auth.auth_app, name="auth")
app.add_typer(configure.config_app, name="config")
app.add_typer(index.index_app, name="index")
app.add_typer(rights.rights_app, name="rights")


# Root options followed by a value, which is not a command's name; and those that need every
# command (help, completion).
_VALUED_OPTIONS: Final = frozenset({"--config"})
_WHOLE_APP_OPTIONS: Final = frozenset(
    {"--help", "-h", "--version", "--install-completion", "--show-completion"}
)
_COMPLETION_ENV: Final = "_BITKEY_DIR_COMPLETE"  # what Typer's shell completion runs under


def for_command_line(argv: Sequence[str]) -> typer.Typer:
    """``app``, holding only the command that ``argv`` names when it names one of them.

    Typer builds every registered command's parameters on each run, though one runs: about
    20 ms of a lookup's or an export's start. Anything else (no command, an unknown one that
    Typer suggests a name for, help, shell completion) gets the whole app.
    """
    name = None if _COMPLETION_ENV in os.environ else _command_name(argv)
    commands = [info for info in app.registered_commands if info.name == name]
    groups = [info for info in app.registered_groups if info.name == name]
    if name is None or not (commands or groups):
        return app
    pruned = copy.copy(app)
    pruned.registered_commands = commands
    pruned.registered_groups = groups
    return pruned


def _command_name(argv: Sequence[str]) -> str | None:
    after_option = False
    for arg in argv:
        if after_option:
            after_option = False
        elif arg in _VALUED_OPTIONS:
            after_option = True
        elif arg in _WHOLE_APP_OPTIONS or arg == "--":
            return None
        elif not arg.startswith("-"):
            return arg
    return None
