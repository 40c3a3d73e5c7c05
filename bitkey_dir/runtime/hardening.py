"""No core dump of a process that holds recovery passwords: a crash would write them to disk.

RLIMIT_CORE 0 is honoured by the kernel and by core handlers such as systemd-coredump.
(prctl(PR_SET_DUMPABLE, 0) would also stop other processes of the user reading its memory,
but it hides /proc/PID from keyring daemons that look there to name a caller.)

The command line sets the soft and the hard limit to 0 as it starts: nothing in it needs a
core dump. The library sets only the soft limit, once per process and only when a
:class:`bitkey_dir.Client` is about to read passwords: the program using it may raise it
again (its hard limit is left as it was), and is told through the ``bitkey_dir`` logger.
Platforms without the ``resource`` module (Windows) are left as they are.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("bitkey_dir")

_lock = threading.Lock()
_done = False


def no_core_dumps() -> None:
    """For the command line: soft and hard limit 0, for the whole process."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass


def no_core_dumps_from_now() -> None:
    """For the library: the soft limit 0, the first time this process reads passwords."""
    global _done  # noqa: PLW0603 - once per process, whichever Client asks first
    with _lock:
        if _done:
            return
        _done = True
        try:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
            if soft == 0:
                return
            resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
        except (ImportError, ValueError, OSError):
            return
    log.info(
        "core dumps are off from now on in this process (RLIMIT_CORE soft limit 0, was %s): "
        "it holds recovery passwords",
        "unlimited" if soft == resource.RLIM_INFINITY else soft,
    )
