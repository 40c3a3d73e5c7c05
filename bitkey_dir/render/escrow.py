"""Render an escrow audit: a table of problems for people, JSON and CSV for programs.

Renderers return text (or chunks of it, written as produced) and never print.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Final

from bitkey_dir.coverage import Coverage
from bitkey_dir.records import csv_line
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
        yield separator + json.dumps(_record(escrow, status), ensure_ascii=False)
        separator = ",\n    "
    summary = json.dumps(audit.summary(), indent=2, ensure_ascii=False).replace("\n", "\n  ")
    yield ("\n  ],\n" if audit.rows else "],\n") + f'  "summary": {summary}\n}}\n'


def render_csv(audit: Coverage) -> str:
    return "".join(csv_chunks(audit))


def csv_chunks(audit: Coverage) -> Iterator[str]:
    yield csv_line(AUDIT_FIELDS)
    for escrow, status in audit.ordered():
        record = _record(escrow, status)
        record["computer"] = _no_formula(str(record["computer"]))
        record["location"] = _no_formula(str(record["location"] or ""))
        yield csv_line(record[name] for name in AUDIT_FIELDS)


def _no_formula(text: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; a directory name must not.

    >>> _no_formula("=HYPERLINK(1)"), _no_formula("PC-01")
    ("'=HYPERLINK(1)", 'PC-01')
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_table(audit: Coverage, *, show_ok: bool = False) -> str:
    """Problems first, one line each; every computer with ``show_ok``; then the totals."""
    rows = [row for row in audit.ordered() if show_ok or row[1] != "ok"]
    lines = []
    if rows:
        width = max(len(escrow.computer) for escrow, _ in rows)
        width = min(max(width, len("COMPUTER")), 40)
        lines.append(f"{'STATUS':<8} {'COMPUTER':<{width}} {'KEYS':>4}  {'NEWEST':<10}  LOCATION")
        for escrow, status in rows:
            newest = escrow.newest.date().isoformat() if escrow.newest else "-"
            lines.append(
                f"{status:<8} {escrow.computer:<{width}} {escrow.keys:>4}  {newest:<10}  "
                f"{escrow.location or '-'}"
            )
        lines.append("")
    summary = audit.summary()
    stale = f", {summary['stale']} stale" if audit.stale_days is not None else ""
    lines.append(
        f"{summary['computers']} computers: {summary['ok']} ok{stale}, "
        f"{summary['missing']} without a key ({summary['coverage']}% escrowed)"
    )
    for group in summary["groups"]:
        lines.append(
            f"  {group['coverage']:>5}%  {group['computers']:>6} computers  "
            f"{group['missing']:>5} missing  {group['source']}: {group['group']}"
        )
    return "\n".join(lines) + "\n"
