"""`bitkey-dir audit`: which computers have no recovery key escrowed, or only old ones."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from bitkey_dir.cli.common import echo_chunks, report, run_for, stdout_is_terminal


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
    disclosed: Annotated[
        bool,
        typer.Option(
            "--disclosed",
            help="Instead: every key the access trail says was revealed, rotated since or "
            "still valid (with --fail-on-missing: exit 1 when one is still valid).",
        ),
    ] = False,
) -> None:
    """Escrow coverage: per computer, how many keys and the newest one's date.

    Reads no recovery password: AD needs read access to computers and recovery objects
    only, Entra ID needs BitlockerKey.ReadBasic.All and Device.Read.All. Exit codes:
    0 done, 1 a computer without a key (with --fail-on-missing), 2 bad input,
    3 sign-in or rights, 4 a source failed.
    """
    from bitkey_dir.ops import audit as auditing
    from bitkey_dir.render import escrow

    fmt = output_format.value if output_format else "table" if stdout_is_terminal() else "json"
    if disclosed:
        _disclosed(ctx, source or [], fmt, fail_on_missing)
    result = auditing.audit(
        run_for(ctx), source or [], stale_days=stale_days, fail_on_missing=fail_on_missing
    )
    report(result.warnings, result.sources)
    echo_chunks(escrow.render(result.coverage, fmt, show_ok=show_all))
    raise typer.Exit(result.exit_code)


def _disclosed(ctx: typer.Context, sources: list[str], fmt: str, fail_on_valid: bool) -> None:
    from bitkey_dir.ops import disclosure
    from bitkey_dir.render import disclosure as rendering

    result = disclosure.disclosed(run_for(ctx), sources, fail_on_valid=fail_on_valid)
    report(result.warnings, result.sources)
    echo_chunks(rendering.render(result, fmt))
    raise typer.Exit(result.exit_code)
