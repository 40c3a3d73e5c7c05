"""The access trail for people (one line per entry) and as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.core.model import mask_passwords
from bitkey_dir.ops.trail import TrailListing
from bitkey_dir.render.output import Part, note


def json_lines(listing: TrailListing) -> Iterator[str]:
    for entry in listing.entries:
        yield safe_json(json.dumps(entry, ensure_ascii=False))


def table_lines(listing: TrailListing) -> Iterator[str]:
    for entry in listing.entries:
        # Lines written before reasons were checked may hold a pasted password: never shown.
        reason = mask_passwords(str(entry.get("reason") or "")) or "(no reason given)"
        line = f"{entry.get('time')}  {entry.get('os_user')}  {_what(entry)}  {entry.get('source')}"
        yield safe(f"{line}  {reason}")


def render(listing: TrailListing, fmt: str) -> Iterator[Part]:
    """JSON lines (``fmt`` "json"), or a line per entry for people; a note when the trail
    holds none."""
    if fmt != "json" and not listing.entries:
        yield note(f"No entries in {safe(listing.path)}.")
    for line in json_lines(listing) if fmt == "json" else table_lines(listing):
        yield Part(line + "\n")


def _what(entry: dict[str, object]) -> str:
    if entry.get("action") == "export":
        what = f"export of {entry.get('keys')} keys to {entry.get('output')}"
        return what + (" (with key packages)" if entry.get("key_packages") else "")
    if entry.get("action") == "rotate":
        ids = entry.get("key_ids")
        count = len(ids) if isinstance(ids, list) else "?"
        device = entry.get("computer") or entry.get("device_id") or "-"
        return f"rotation ({entry.get('outcome')}) of {count} key(s) of {device}"
    if entry.get("action") == "refuse":
        held = entry.get("computers")
        names = ", ".join(str(name) for name in held) if isinstance(held, list) else "?"
        return f"refused, one Key ID held twice: {entry.get('key_id')}  {names}"
    if entry.get("action") in ("grant", "revoke"):
        changed = entry.get("changed")
        count = len(changed) if isinstance(changed, list) else "?"
        verb = "granted to" if entry.get("action") == "grant" else "revoked from"
        return f"rights {verb} {entry.get('grantee')} below {entry.get('scope')} ({count} entries)"
    what = f"{entry.get('key_id')}  {entry.get('computer') or '-'}"
    if entry.get("key_package"):
        what += f"  key package to {entry.get('key_package')}"
    if entry.get("shown") is False:
        what += "  (read, not shown)"
    return what
