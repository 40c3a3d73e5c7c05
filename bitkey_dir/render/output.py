"""What renderers share: output for two readers, and how sources fared.

A command's output has two readers: the result, which a pipe or a file may take (standard
output), and notes for the person at the terminal (standard error). A renderer whose output
has both returns :class:`Part` items in the order a person reads them, and the CLI writes
each to its stream, so a terminal shows them interleaved as they were meant to be read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bitkey_dir.ops.outcome import SourceStatus


@dataclass(frozen=True)
class Part:
    """Whole lines, each ending in a newline: the result's, or a note for the person."""

    text: str
    note: bool = False


def note(line: str) -> Part:
    """One line for the person, not for the pipe."""
    return Part(line + "\n", note=True)


def source_records(statuses: Iterable[SourceStatus]) -> list[dict[str, str | None]]:
    """Each source's name, status and error, as JSON documents list them."""
    return [
        {"name": status.name, "status": status.status, "error": status.error} for status in statuses
    ]
