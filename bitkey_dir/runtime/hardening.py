"""No core dump of a process that holds recovery passwords, when bitkey-dir is a library.

The command line turns core dumps off altogether as it starts (platform.limit_core_dumps).
A program that uses the library is another matter: it may want its core dumps. So only the
soft limit is set to 0, once per process, when a :class:`bitkey_dir.Client` is about to read
passwords; the hard limit is left as it was, the program may raise the soft one again, and
it is told through the ``bitkey_dir`` logger.
"""

from __future__ import annotations

import logging
import threading

from bitkey_dir.runtime import platform

log = logging.getLogger("bitkey_dir")

_lock = threading.Lock()
_done = False


def no_core_dumps_from_now() -> None:
    """The soft RLIMIT_CORE limit 0, the first time this process reads passwords."""
    global _done  # noqa: PLW0603 - once per process, whichever Client asks first
    with _lock:
        if _done:
            return
        _done = True
        was = platform.limit_core_dumps_softly()
    if was is not None:
        log.info(
            "core dumps are off from now on in this process (RLIMIT_CORE soft limit 0, was "
            "%s): it holds recovery passwords",
            was,
        )
