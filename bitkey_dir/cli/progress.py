"""A progress line on stderr for long runs: on a terminal only, never when piped."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_EVERY = 0.2  # seconds between redraws: cheap even at thousands of items a second


def counted(items: Iterable[T], label: str) -> Iterator[T]:
    """Yield ``items``, showing "label: N" on a terminal's stderr, cleared at the end."""
    if not sys.stderr.isatty():
        yield from items
        return
    count, drawn = 0, 0.0
    try:
        for item in items:
            count += 1
            now = time.monotonic()
            if now - drawn >= _EVERY:
                sys.stderr.write(f"\r{label}: {count:,}")
                sys.stderr.flush()
                drawn = now
            yield item
    finally:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
