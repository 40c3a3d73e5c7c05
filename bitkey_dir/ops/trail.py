"""`bitkey-dir trail`: the most recent entries of the access trail, as the store keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bitkey_dir.store import trail


@dataclass(frozen=True)
class TrailListing:
    """The last entries (oldest first), the file they came from, and how many lines of it
    could not be read (torn by a full disk, or not JSON)."""

    path: Path
    entries: list[trail.Line] = field(default_factory=list)
    broken: int = 0


def recent(limit: int, path: Path | None = None) -> TrailListing:
    """The last ``limit`` entries of the trail at ``path`` (default: the configured one)."""
    target = path or trail.trail_path()
    entries, broken = trail.recent(limit, target)
    return TrailListing(target, entries, broken)
