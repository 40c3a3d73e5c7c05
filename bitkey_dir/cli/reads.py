"""`bitkey-dir reads`: who read keys, from the directory's own audit log."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from bitkey_dir.cli.common import echo_chunks, echo_parts, report, run_for, stdout_is_terminal


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def reads(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="An Entra source. Repeatable. Default: the config's."),
    ] = None,
    since: Annotated[
        str, typer.Option("--since", help="How far back: 7d, 24h, 90m, or a date (2026-12-01).")
    ] = "7d",
    output_format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="table (default on a terminal), json or csv.",
            case_sensitive=False,
        ),
    ] = None,
) -> None:
    """Every read of a key value the directory recorded (Entra: "Read BitLocker key" audit
    events, which need AuditLog.Read.All), and whether bitkey-dir made it (a matching trail
    line: same key, account and time) or it was made elsewhere (the portal, other scripts).

    Exit codes: 0 done, 2 bad input, 3 sign-in or rights, 4 a source failed.
    """
    from datetime import UTC, datetime

    from bitkey_dir.ops import reads as reading
    from bitkey_dir.render import reads as rendering

    start = reading.parse_since(since, datetime.now(UTC))
    result = reading.reads(run_for(ctx), source or [], start)
    report(result.warnings, result.sources)
    fmt = output_format.value if output_format else "table" if stdout_is_terminal() else "json"
    if fmt == "json":
        typer.echo(rendering.render_json(result), nl=False)
    elif fmt == "csv":
        echo_chunks(rendering.csv_rows(result))
    else:
        echo_parts(rendering.render_table(result))
    raise typer.Exit(result.exit_code)
