"""`bitkey-dir trail`: who revealed which key, or exported which source, when and why."""

from __future__ import annotations

from typing import Annotated

import typer

from bitkey_dir.cli.common import JsonFlag, Listing, ListingFormat, wants_json, warn

LIMIT_MAX = 100_000


def trail(
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=LIMIT_MAX, help="How many entries."),
    ] = 20,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """Show the most recent entries of the access trail (revealed keys), oldest first."""
    import json

    from bitkey_dir.display import safe, safe_json
    from bitkey_dir.model import mask_passwords
    from bitkey_dir.trail import recent, trail_path

    entries, broken = recent(limit)
    if broken:
        warn(f"{trail_path()}: {broken} unreadable line(s) skipped")
    if wants_json(output_format, as_json):
        for entry in entries:
            typer.echo(safe_json(json.dumps(entry, ensure_ascii=False)))
        return
    if not entries:
        typer.echo(f"No entries in {safe(trail_path())}.", err=True)
        return
    for entry in entries:
        # Lines written before reasons were checked may hold a pasted password: never shown.
        reason = mask_passwords(str(entry.get("reason") or "")) or "(no reason given)"
        if entry.get("action") == "export":
            what = f"export of {entry.get('keys')} keys to {entry.get('output')}"
            if entry.get("key_packages"):
                what += " (with key packages)"
        elif entry.get("action") == "rotate":
            ids = entry.get("key_ids")
            count = len(ids) if isinstance(ids, list) else "?"
            what = (
                f"rotation ({entry.get('outcome')}) of {count} key(s) of "
                f"{entry.get('computer') or entry.get('device_id') or '-'}"
            )
        else:
            what = f"{entry.get('key_id')}  {entry.get('computer') or '-'}"
            if entry.get("key_package"):
                what += f"  key package to {entry.get('key_package')}"
        line = (
            f"{entry.get('time')}  {entry.get('os_user')}  {what}  {entry.get('source')}  {reason}"
        )
        typer.echo(safe(line))
