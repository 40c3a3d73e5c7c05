"""The `bitkey-dir` command. Commands are thin: parse, call the library, render."""

from __future__ import annotations

import os
import sys

from bitkey_dir.core.env import DEBUG_ENV
from bitkey_dir.core.errors import ExitCode

# Allocations between two young-generation collections (CPython's default: 700).
_GC_THRESHOLD = 20_000


class _Stopped(BaseException):
    """SIGTERM, SIGHUP or Ctrl-Break: unwind like Ctrl-C, so that every ``finally`` runs (an
    export's clear-text temporary file is removed) before the process ends."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def main() -> None:
    import gc
    import signal

    # Start-up makes some 100,000 objects that live as long as the process (modules, classes,
    # functions), and an export a few short-lived ones a key, none in cycles. At the default
    # threshold the collector runs every 700 allocations and walks the old ones again each
    # time its older generations are due: run it less often, and never on start-up's objects.
    gc.set_threshold(_GC_THRESHOLD, 20, 20)
    from bitkey_dir.cli.app import for_command_line
    from bitkey_dir.runtime import platform

    gc.freeze()

    # No core dump of a process that holds recovery passwords and credentials in memory.
    platform.limit_core_dumps()
    for signum in platform.stop_signals():
        signal.signal(signum, _stop)
    try:
        for_command_line(sys.argv[1:])(prog_name="bitkey-dir")
    except KeyboardInterrupt:
        sys.stderr.write("\nbitkey-dir: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except _Stopped as stopped:
        import signal

        sys.stderr.write(f"\nbitkey-dir: stopped by {signal.Signals(stopped.signum).name}\n")
        sys.exit(128 + stopped.signum)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            # The traceback for whoever debugs, but still the documented code: a bare raise
            # would end with 1, which means "not found". (traceback is imported only here: it
            # brings tokenize and textwrap, a few ms of every start.)
            import traceback

            traceback.print_exc()
            sys.exit(ExitCode.INTERNAL)
        # An unexpected exception's message is not vetted for secrets: name only its type.
        sys.stderr.write(
            f"bitkey-dir: internal error ({type(exc).__name__}); "
            "run again with BITKEY_DIR_DEBUG=1 for details\n"
        )
        sys.exit(ExitCode.INTERNAL)
