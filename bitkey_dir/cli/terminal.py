"""The command line's Interaction: notices and prompts on the terminal, progress on stderr.

stdout carries results only; everything here goes to stderr. Prompts are hidden (getpass)
and only offered when both stdin and stderr are a terminal; progress is drawn only when
stderr is one, never into a pipe or a log file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_EVERY = 0.2  # seconds between redraws: cheap even at thousands of items a second


class Terminal:
    """What `bitkey-dir` gives every operation (see bitkey_dir.runtime.interaction)."""

    def notice(self, message: str) -> None:
        from bitkey_dir.core.display import safe

        sys.stderr.write(f"notice: {safe(message)}\n")
        sys.stderr.flush()

    def instructions(self, text: str) -> None:
        from bitkey_dir.core.display import safe_lines

        # The identity platform's words: several lines, but never a control sequence.
        sys.stderr.write(safe_lines(text) + "\n")
        sys.stderr.flush()

    def can_prompt(self) -> bool:
        return sys.stdin.isatty() and sys.stderr.isatty()

    def secret(self, prompt: str) -> str:
        import getpass

        try:
            return getpass.getpass(prompt)
        except EOFError:  # Ctrl-D: end the prompt's line before any message
            sys.stderr.write("\n")
            return ""

    def progress(self, items: Iterable[T], label: str) -> Iterator[T]:
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


TERMINAL = Terminal()
