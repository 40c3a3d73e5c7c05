"""`bitkey-dir sources`: the configured sources, as a table for people or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from bitkey_dir.core.display import safe
from bitkey_dir.ops.inventory import SourceInfo
from bitkey_dir.render.output import Part, note


def render_json(config: Path, rows: Sequence[SourceInfo]) -> str:
    document = {"config": str(config), "sources": [asdict(row) for row in rows]}
    return json.dumps(document, indent=2) + "\n"


def render_table(config: Path, rows: Sequence[SourceInfo]) -> Iterator[Part]:
    """One line per source, the default ones marked, and what the mark means."""
    if not rows:
        yield note(f"No sources configured in {safe(config)}.")
        return
    width = max(len(row.name) for row in rows)
    yield Part(
        "".join(
            f"{'*' if row.default else ' '} {row.name:<{width}}  "
            f"{safe(row.type):<6} {safe(row.where)}\n"
            for row in rows
        )
    )
    yield note("(* = searched when find has no --source)")
