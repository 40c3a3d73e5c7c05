"""The access trail for people (one line per entry) and as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.core.model import mask_passwords
from bitkey_dir.ops.trail import TrailListing


def json_lines(listing: TrailListing) -> Iterator[str]:
    for entry in listing.entries:
        yield safe_json(json.dumps(entry, ensure_ascii=False))


def table_lines(listing: TrailListing) -> Iterator[str]:
    for entry in listing.entries:
        # Lines written before reasons were checked may hold a pasted password: never shown.
        reason = mask_passwords(str(entry.get("reason") or "")) or "(no reason given)"
        line = f"{entry.get('time')}  {entry.get('os_user')}  {_what(entry)}  {entry.get('source')}"
        yield safe(f"{line}  {reason}")


def _what(entry: dict[str, object]) -> str:
    if entry.get("action") == "export":
        what = f"export of {entry.get('keys')} keys to {entry.get('output')}"
        return what + (" (with key packages)" if entry.get("key_packages") else "")
    if entry.get("action") == "rotate":
        ids = entry.get("key_ids")
        count = len(ids) if isinstance(ids, list) else "?"
        device = entry.get("computer") or entry.get("device_id") or "-"
        return f"rotation ({entry.get('outcome')}) of {count} key(s) of {device}"
    what = f"{entry.get('key_id')}  {entry.get('computer') or '-'}"
    if entry.get("key_package"):
        what += f"  key package to {entry.get('key_package')}"
    return what
