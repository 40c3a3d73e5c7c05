"""`bitkey-dir reads`: who read keys, from the directory's own audit log."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from bitkey_dir.cli.common import echo_chunks, report, run_for, stdout_is_terminal


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FIELDS = (
    "time",
    "actor",
    "actor_kind",
    "key_id",
    "device",
    "via",
    "os_user",
    "reason",
    "source",
    "succeeded",
)


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
    import json
    from datetime import UTC, datetime

    from bitkey_dir.core.display import safe, safe_json
    from bitkey_dir.core.records import csv_line
    from bitkey_dir.ops import reads as reading

    start = reading.parse_since(since, datetime.now(UTC))
    result = reading.reads(run_for(ctx), source or [], start)
    report(result.warnings, result.sources)
    fmt = output_format.value if output_format else "table" if stdout_is_terminal() else "json"
    records = [item.to_record() for item in result.reads]
    if fmt == "json":
        document = {"since": start.isoformat(timespec="seconds"), "reads": records}
        typer.echo(safe_json(json.dumps(document, indent=2, ensure_ascii=False)))
    elif fmt == "csv":
        echo_chunks(
            [csv_line(FIELDS), *(csv_line(record[name] for name in FIELDS) for record in records)]
        )
    else:
        for record in records:
            via = "bitkey-dir" if record["via"] == "bitkey-dir" else "ELSEWHERE"
            line = (
                f"{record['time']}  {record['actor'] or '?'}  {record['key_id'] or '?'}  "
                f"{record['device'] or '-'}  {via}"
            )
            if record["os_user"]:
                line += f" ({record['os_user']}: {record['reason'] or 'no reason'})"
            typer.echo(safe(line))
        elsewhere = sum(record["via"] == "elsewhere" for record in records)
        typer.echo(
            f"{len(records)} key read(s) since {start:%Y-%m-%d %H:%M} UTC, {elsewhere} not "
            "through bitkey-dir",
            err=True,
        )
    raise typer.Exit(result.exit_code)
