"""rotate --wait: ask again how each requested rotation stands, until it ends or time is up.

Intune only queues the action; the device rotates when it next checks in, and says so in the
managed device's action results (sources/entra/intune.py). Each requested rotation is asked
about at once, then after 1, 2, 4, 8 and 15 seconds and every 30 seconds (never sooner than
the directory's Retry-After), until it is done, failed or not supported, or ``seconds`` have
passed: it is then left pending, and may still complete.

Ctrl-C while waiting raises :class:`WaitInterrupted` (exit 130), whose message says that the
rotation was requested and may still complete: the request is in the trail already.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Final, Protocol

from bitkey_dir.core.errors import AuthError, BitkeyError, ExitCode
from bitkey_dir.core.rotation import Progress, Rotation
from bitkey_dir.ops.outcome import SourceStatus
from bitkey_dir.ops.pool import release
from bitkey_dir.sources.base import FollowsRotations, Source

if TYPE_CHECKING:
    from bitkey_dir.ops.run import Run

BACKOFF: Final = (1.0, 2.0, 4.0, 8.0, 15.0)
LONGEST: Final = 30.0


class Followed(Protocol):
    """What is followed up and told of it (ops.rotate.Followed)."""

    rotations: list[Rotation]
    warnings: list[str]
    sources: list[SourceStatus]


class WaitInterrupted(BitkeyError):
    """Ctrl-C while waiting for a rotation that was already requested."""

    exit_code = ExitCode.INTERRUPTED


def follow_up(
    run: Run,
    result: Followed,
    seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Set each requested rotation's ``progress``: its last answer when the wait ended."""
    pending = [i for i, rotation in enumerate(result.rotations) if rotation.outcome == "requested"]
    if not pending:
        return
    deadline = clock() + seconds
    opened: dict[str, Source | None] = {}
    try:
        for name in dict.fromkeys(result.rotations[i].source for i in pending):
            try:
                opened[name] = run.open_one(name)
            except BitkeyError as exc:
                opened[name] = None
                result.sources.append(SourceStatus.failed(name, exc))
        for attempt in itertools.count():
            retry = 0.0
            for i in list(pending):
                progress, again = _ask(opened[result.rotations[i].source], result, i)
                result.rotations[i] = replace(result.rotations[i], progress=progress)
                if progress.state != "pending" or not again:
                    pending.remove(i)
                retry = max(retry, progress.retry_after or 0.0)
            left = deadline - clock()
            if not pending or left <= 0:
                break
            delay = BACKOFF[attempt] if attempt < len(BACKOFF) else LONGEST
            sleep(min(left, max(delay, retry)))
    except KeyboardInterrupt:
        raise WaitInterrupted(_interrupted([result.rotations[i] for i in pending])) from None
    finally:
        for source in opened.values():
            if source is not None:
                release(source)


def _ask(source: Source | None, result: Followed, index: int) -> tuple[Progress, bool]:
    """One answer, and whether to ask again: a request that failed leaves the rotation
    pending, and a refusal stops asking."""
    rotation = result.rotations[index]
    if source is None:
        return Progress("pending", detail="the source could not be opened again"), False
    if not isinstance(source, FollowsRotations):
        return Progress("pending", detail="this source cannot say how a rotation went"), False

    def warn(message: str) -> None:
        line = f"{source.name}: {message}"
        if line not in result.warnings:
            result.warnings.append(line)

    try:
        return source.rotation_progress(rotation, warn), True
    except AuthError as exc:
        result.sources.append(SourceStatus.failed(source.name, exc))
        return Progress("pending", detail=f"cannot tell how it went: {exc.message}"), False
    except BitkeyError as exc:
        return Progress("pending", detail=f"not known: {exc.message}"), True


def _interrupted(pending: list[Rotation]) -> str:
    devices = ", ".join(dict.fromkeys(r.computer or r.device_id or r.source for r in pending))
    return (
        f"interrupted while waiting: the rotation of {devices or 'the device'} was requested "
        "and may still complete (bitkey-dir audit --disclosed tells later)"
    )
