"""`bitkey-dir audit`: which computers have no recovery key escrowed, or only old ones."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from bitkey_dir.cli.common import echo_chunks, error_line, state, stdout_is_terminal, warn
from bitkey_dir.errors import BitkeyError, ExitCode, InputError


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def audit(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Configured AD or Entra source. Repeatable. Default: [defaults] sources.",
        ),
    ] = None,
    stale_days: Annotated[
        int | None,
        typer.Option(
            "--stale-days",
            min=1,
            help="Call a computer stale when its newest key is older than this many days.",
        ),
    ] = None,
    output_format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="table (default on a terminal), json (default otherwise) or csv.",
            case_sensitive=False,
        ),
    ] = None,
    fail_on_missing: Annotated[
        bool,
        typer.Option(
            "--fail-on-missing", help="Exit 1 when any computer has no key (for monitoring)."
        ),
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Table: list every computer, not only problems.")
    ] = False,
) -> None:
    """Escrow coverage: per computer, how many keys and the newest one's date.

    Reads no recovery password: AD needs read access to computers and recovery objects
    only, Entra ID needs BitlockerKey.ReadBasic.All and Device.Read.All. Exit codes:
    0 done, 1 a computer without a key (with --fail-on-missing), 2 bad input,
    3 sign-in or rights, 4 a source failed.
    """
    from bitkey_dir import audit as escrow
    from bitkey_dir.config import load_config
    from bitkey_dir.interaction import current as interaction
    from bitkey_dir.sources.base import Audits
    from bitkey_dir.sources.registry import open_sources

    config = load_config(state(ctx).config_path)
    sources: list[Audits] = []
    for opened in open_sources(config, source or []):
        if not isinstance(opened, Audits):
            raise InputError(
                f"{opened.name}: only directory sources (ad, entra) can be audited; key "
                "files know only the computers that have keys"
            )
        sources.append(opened)
    result = escrow.Audit(stale_days=stale_days)
    failures: list[ExitCode] = []
    for auditable in sources:

        def warned(message: str, name: str = auditable.name) -> None:
            warn(f"{name}: {message}")

        label = f"{auditable.name}: computers read"
        try:
            result.add(interaction().progress(auditable.iter_escrow(warned), label))
        except BitkeyError as exc:
            error_line(f"{auditable.name}: {exc.message}", exc.hint)
            failures.append(exc.exit_code)
        finally:
            auditable.close()
    fmt = output_format.value if output_format else "table" if stdout_is_terminal() else "json"
    if fmt == "json":
        echo_chunks(escrow.json_chunks(result))
    elif fmt == "csv":
        echo_chunks(escrow.csv_chunks(result))
    else:
        typer.echo(escrow.render_table(result, show_ok=show_all), nl=False)
    if failures:
        raise typer.Exit(max(failures))
    if fail_on_missing and result.missing:
        raise typer.Exit(ExitCode.NOT_FOUND)
