"""`bitkey-dir trail`: who revealed which key, or exported which source, when and why."""

from __future__ import annotations

from typing import Annotated

import typer

from bitkey_dir.cli.common import JsonFlag, Listing, ListingFormat, echo_parts, wants_json, warn

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
    from bitkey_dir.ops.trail import recent
    from bitkey_dir.render import trail as rendering

    listing = recent(limit)
    if listing.broken:
        warn(f"{listing.path}: {listing.broken} unreadable line(s) skipped")
    echo_parts(rendering.render(listing, "json" if wants_json(output_format, as_json) else "table"))
