"""The `bitkey-dir` command. Commands are thin: parse, call the library, render."""

from __future__ import annotations

import os
import sys

from bitkey_dir.env import DEBUG_ENV
from bitkey_dir.errors import ExitCode


def main() -> None:
    from bitkey_dir.cli.app import app

    try:
        app(prog_name="bitkey-dir")
    except KeyboardInterrupt:
        sys.stderr.write("\nbitkey-dir: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        # An unexpected exception's message is not vetted for secrets: name only its type.
        sys.stderr.write(
            f"bitkey-dir: internal error ({type(exc).__name__}); "
            "run again with BITKEY_DIR_DEBUG=1 for details\n"
        )
        sys.exit(ExitCode.INTERNAL)
