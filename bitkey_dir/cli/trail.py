"""`bitkey-dir trail`: who revealed which key, or exported which source, when and why."""

from __future__ import annotations

from typing import Annotated

import typer

from bitkey_dir.cli.common import warn


def trail(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many entries.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show the most recent entries of the access trail (revealed keys), oldest first."""
    from bitkey_dir.trail import recent, trail_path

    entries, broken = recent(limit)
    if broken:
        warn(f"{trail_path()}: {broken} unreadable line(s) skipped")
    if as_json:
        import json

        for entry in entries:
            typer.echo(json.dumps(entry, ensure_ascii=False))
        return
    if not entries:
        typer.echo(f"No entries in {trail_path()}.", err=True)
        return
    for entry in entries:
        reason = entry.get("reason") or "(no reason given)"
        if entry.get("action") == "export":
            what = f"export of {entry.get('keys')} keys to {entry.get('output')}"
        else:
            what = f"{entry.get('key_id')}  {entry.get('computer') or '-'}"
        typer.echo(
            f"{entry.get('time')}  {entry.get('os_user')}  {what}  {entry.get('source')}  {reason}"
        )
