"""Render an escrow audit: a table of problems for people, JSON and CSV for programs.

Renderers return text (or chunks of it, written as produced) and never print.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Final

from bitkey_dir.core.coverage import Coverage
from bitkey_dir.core.display import no_formula, safe, safe_json
from bitkey_dir.core.records import csv_line
from bitkey_dir.sources.base import Escrow

AUDIT_FIELDS: Final = ("source", "computer", "location", "keys", "newest", "status")


def _record(escrow: Escrow, status: str) -> dict[str, object]:
    return {
        "source": escrow.source,
        "computer": escrow.computer,
        "location": escrow.location,
        "keys": escrow.keys,
        "newest": escrow.newest.isoformat() if escrow.newest else None,
        "status": status,
    }


def render_json(audit: Coverage) -> str:
    return "".join(json_chunks(audit))


def json_chunks(audit: Coverage) -> Iterator[str]:
    """The JSON document in pieces, one computer a line: at 10,000 computers the document
    built whole took three times the memory of the audit itself."""
    yield '{\n  "computers": [\n'
    separator = "    "
    for escrow, status in audit.ordered():
        yield separator + safe_json(json.dumps(_record(escrow, status), ensure_ascii=False))
        separator = ",\n    "
    summary = json.dumps(audit.summary(), indent=2, ensure_ascii=False).replace("\n", "\n  ")
    summary = safe_json(summary)
    yield ("\n  ],\n" if audit.rows else "],\n") + f'  "summary": {summary}\n}}\n'


def render_csv(audit: Coverage) -> str:
    return "".join(csv_chunks(audit))


def csv_chunks(audit: Coverage) -> Iterator[str]:
    yield csv_line(AUDIT_FIELDS)
    for escrow, status in audit.ordered():
        record = _record(escrow, status)
        record["source"] = no_formula(str(record["source"]))
        record["computer"] = no_formula(str(record["computer"]))
        record["location"] = no_formula(str(record["location"] or ""))
        yield csv_line(record[name] for name in AUDIT_FIELDS)


def render_table(audit: Coverage, *, show_ok: bool = False) -> str:
    """Problems first, one line each; every computer with ``show_ok``; then the totals."""
    rows = [row for row in audit.ordered() if show_ok or row[1] != "ok"]
    lines = []
    if rows:
        names = {id(escrow): safe(escrow.computer) for escrow, _ in rows}
        width = min(max(len("COMPUTER"), *(len(name) for name in names.values())), 40)
        lines.append(f"{'STATUS':<8} {'COMPUTER':<{width}} {'KEYS':>4}  {'NEWEST':<10}  LOCATION")
        for escrow, status in rows:
            newest = escrow.newest.date().isoformat() if escrow.newest else "-"
            lines.append(
                f"{status:<8} {names[id(escrow)]:<{width}} {escrow.keys:>4}  {newest:<10}  "
                f"{safe(escrow.location) if escrow.location else '-'}"
            )
        lines.append("")
    summary = audit.summary()
    stale = f", {summary['stale']} stale" if audit.stale_days is not None else ""
    lines.append(
        f"{_count(summary['computers'], 'computer')}: {summary['ok']} ok{stale}, "
        f"{summary['missing']} without a key ({_percent(summary['coverage'])} escrowed)"
    )
    for group in summary["groups"]:
        computers = group["computers"]
        noun = "computer" if computers == 1 else "computers"
        lines.append(
            f"  {_percent(group['coverage']):>6}  {computers:>6} {noun:<9}  "
            f"{group['missing']:>5} missing  {safe(group['source'])}: {safe(group['group'])}"
        )
    return "\n".join(lines) + "\n"


def render(audit: Coverage, fmt: str, *, show_ok: bool = False) -> Iterator[str]:
    """The audit in ``fmt`` (table, json or csv), in pieces to write as they come."""
    if fmt == "json":
        yield from json_chunks(audit)
    elif fmt == "csv":
        yield from csv_chunks(audit)
    else:
        yield render_table(audit, show_ok=show_ok)


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{value}%"


def _count(number: int, noun: str) -> str:
    """ "1 computer", "2 computers"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
