"""`bitkey-dir rights show|grant|revoke`: who may read keys, and what a change did, for
people or as JSON. Names and ACEs come from the directory: everything is escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.ops.rights import ChangeResult, RightsResult
from bitkey_dir.render.output import Part, note, source_records


def show_json(result: RightsResult) -> str:
    document = {
        "holders": [holder.to_record() for holder in result.holders],
        "warnings": result.warnings,
        "sources": source_records(result.sources),
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def show_lines(result: RightsResult) -> Iterator[Part]:
    """Per source and scope, per right: each holder and, indented, what gives it."""
    lines: list[str] = []
    heading = None
    right = None
    for holder in result.holders:
        if (holder.source, holder.scope) != heading:
            heading, right = (holder.source, holder.scope), None
            lines += [*([""] if lines else []), f"{holder.source}: {holder.scope}"]
        if holder.right != right:
            right = holder.right
            lines.append(f"  {right}:")
        lines.append(f"    {holder.principal}")
        lines += [f"      {way.origin}: {way.text}" for way in holder.via]
    yield Part("".join(safe(line) + "\n" for line in lines))
    if not result.holders and not [s for s in result.sources if s.status != "ok"]:
        yield note("Nobody holds a right to read keys here, as far as these sources say.")


def change_json(result: ChangeResult) -> str:
    document = {
        "change": result.change.to_record() if result.change else None,
        "warnings": result.warnings,
        "sources": source_records(result.sources),
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def change_lines(result: ChangeResult) -> Iterator[Part]:
    """What was (or, with --what-if, would be) added or removed, and the equivalent
    commands."""
    change = result.change
    if change is None:
        return
    added = change.action == "grant"
    if change.applied:
        verb = "added" if added else "removed"
    elif change.changed:
        verb = "would add" if added else "would remove"
    else:
        verb = ""
    lines = [f"{change.source}: {change.scope}: {change.principal} ({change.ident})"]
    lines += [f"  {verb}: {text}" for text in change.changed]
    kept = "already there" if added else "not there"
    lines += [f"  {kept}: {text}" for text in change.unchanged]
    yield Part("".join(safe(line) + "\n" for line in lines))
    if result.request.what_if:
        yield note("Nothing was changed (--what-if). The same by hand, on a DC:")
        yield Part("".join(safe(command) + "\n" for command in change.commands))
    elif not change.changed:
        yield note("Nothing to change.")
