"""`audit --disclosed`: revealed keys, rotated or still valid, as a table, JSON or CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator

from bitkey_dir.core.display import safe, safe_json
from bitkey_dir.core.records import csv_line
from bitkey_dir.ops.disclosure import DisclosureResult
from bitkey_dir.render.output import source_records

FIELDS = (
    "source",
    "key_id",
    "computer",
    "revealed",
    "reveals",
    "status",
    "rotated",
    "exposed_days",
    "detail",
)


def render_table(result: DisclosureResult) -> str:
    now = result.checked
    if not result.disclosures:
        return "No key revealed in the access trail.\n"
    lines = []
    for item in result.disclosures:
        if item.status == "still valid":
            status = f"STILL VALID for {item.exposed_days(now) or 0:.0f} days"
        elif item.status == "rotated" and item.newer is not None:
            status = f"rotated {item.newer:%Y-%m-%d}"
        else:
            status = item.status
        lines.append(
            f"{item.revealed:%Y-%m-%d %H:%M}  {item.key_id}  {item.computer or '-'}  "
            f"{item.source}  {status}"
        )
    valid = sum(item.status == "still valid" for item in result.disclosures)
    lines.append(
        f"{len(result.disclosures)} revealed key(s), {valid} still valid since the reveal"
        + (": rotate them (bitkey-dir rotate --key-id ID)" if valid else "")
    )
    return "".join(safe(line) + "\n" for line in lines)


def json_document(result: DisclosureResult) -> str:
    document = {
        "checked": result.checked.isoformat(timespec="seconds"),
        "disclosed": [item.to_record(result.checked) for item in result.disclosures],
        "warnings": result.warnings,
        "sources": source_records(result.sources),
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def csv_rows(result: DisclosureResult) -> Iterator[str]:
    yield csv_line(FIELDS)
    for item in result.disclosures:
        record = item.to_record(result.checked)
        yield csv_line(record[name] for name in FIELDS)


def render(result: DisclosureResult, fmt: str) -> Iterator[str]:
    """`audit --disclosed` in ``fmt`` (table, json or csv), in pieces to write as they come."""
    if fmt == "json":
        yield json_document(result)
    elif fmt == "csv":
        yield from csv_rows(result)
    else:
        yield render_table(result)
