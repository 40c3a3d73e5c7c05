"""The access trail and reason policy, the same for the CLI and the library.

Every revealed key and every export is recorded in the trail before anything is shown or
written. With ``require_reason = true`` in ``[defaults]``, a reason is required and a trail that
cannot be written stops the operation; otherwise a failing trail is a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Final

from bitkey_dir.core.display import safe
from bitkey_dir.core.errors import InputError, SourceError
from bitkey_dir.core.model import holds_password
from bitkey_dir.runtime.config import Config
from bitkey_dir.store import trail

REASON_MAX: Final = 500
#: Called with each trail line written by a call made in this context, once it is written
#: (the portal's copy to syslog); it must not raise.
TRAIL_COPY: ContextVar[Callable[[Mapping[str, object]], None] | None] = ContextVar(
    "trail_copy", default=None
)


def check_reason(reason: str | None) -> None:
    """A reason goes into the trail as one line: refuse anything else before any work, and
    never keep a recovery password pasted into it by mistake."""
    if reason is None:
        return
    if len(reason) > REASON_MAX or not reason.isprintable() or not safe(reason) == reason:
        raise InputError(f"--reason must be one printable line of at most {REASON_MAX} characters")
    if holds_password(reason):
        raise InputError(
            "--reason looks like it holds a recovery password, which must never be kept in the "
            "access trail: give a ticket number or a few words instead"
        )


def demand_reason(config: Config, reason: str | None, doing: str) -> None:
    """Refuse (exit 2) when the config requires a reason and none was given."""
    if config.require_reason and not (reason and reason.strip()):
        raise InputError(
            f"{config.path} requires a reason for {doing}: add --reason TEXT "
            "(a ticket number, for example)"
        )


def record(config: Config, entries: Sequence[trail.Entry], *, refusing: str) -> str | None:
    """Append to the trail before anything is revealed. Returns a warning when the trail
    cannot be written and the config allows that; raises SourceError when it does not."""
    try:
        trail.append(entries)
    except SourceError as exc:
        if config.require_reason:
            raise SourceError(f"{refusing}: {exc.message}") from None
        return str(exc)
    copy = TRAIL_COPY.get()
    if copy is not None:
        for entry in entries:
            copy(entry)
    return None
