"""`bitkey-dir reads`: the directory's key reads, each matched with the trail or not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Final

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.core.records import csv_line
from bitkey_dir.ops.reads import ReadsResult
from bitkey_dir.render.output import Part, note

FIELDS: Final = (
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


def render_json(result: ReadsResult) -> str:
    document = {
        "since": result.since.isoformat(timespec="seconds"),
        "reads": [item.to_record() for item in result.reads],
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def csv_rows(result: ReadsResult) -> Iterator[str]:
    yield csv_line(FIELDS)
    for item in result.reads:
        record = item.to_record()
        yield csv_line(record[name] for name in FIELDS)


def render_table(result: ReadsResult) -> Iterator[Part]:
    """One line per read, then how many were not made through bitkey-dir."""
    records = [item.to_record() for item in result.reads]
    lines = []
    for record in records:
        via = "bitkey-dir" if record["via"] == "bitkey-dir" else "ELSEWHERE"
        line = (
            f"{record['time']}  {record['actor'] or '?'}  {record['key_id'] or '?'}  "
            f"{record['device'] or '-'}  {via}"
        )
        if record["os_user"]:
            line += f" ({record['os_user']}: {record['reason'] or 'no reason'})"
        lines.append(safe(line) + "\n")
    yield Part("".join(lines))
    elsewhere = sum(record["via"] == "elsewhere" for record in records)
    reads = "key read" if len(records) == 1 else "key reads"
    yield note(
        f"{len(records)} {reads} since {result.since:%Y-%m-%d %H:%M} UTC, {elsewhere} not "
        "through bitkey-dir"
    )
