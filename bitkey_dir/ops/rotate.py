"""Rotate disclosed keys: ask the directory where it can (Intune), say how by hand elsewhere.

Every device's rotation, asked for or left to be done by hand, is in the access trail before
the result is returned. No password is shown, and an Entra source reads none (rotation goes
by device, found from names or key metadata).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bitkey_dir.core.errors import ExitCode
from bitkey_dir.core.model import KeyId, Query, RecoveryKey
from bitkey_dir.core.rotation import Rotation, manage_bde_steps
from bitkey_dir.ops import policy
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.run import Run, ask_all
from bitkey_dir.sources.base import Rotates, Source, Warn
from bitkey_dir.store import trail


@dataclass
class RotateResult:
    """One Rotation per device found, each source's status, and its warnings."""

    query: Query
    rotations: list[Rotation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    trail_problem: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        """0 when every device was asked to rotate; 1 when nothing was found or a device
        must be rotated by hand; else a failed source's code (3 for a missing right)."""
        done = bool(self.rotations) and all(r.outcome == "requested" for r in self.rotations)
        answer = ExitCode.FOUND if done else ExitCode.NOT_FOUND
        return exit_code(answer, self.sources, every_source_needed=False)


def rotate(
    run: Run, query: Query, sources: Sequence[str] = (), *, reason: str | None = None
) -> RotateResult:
    """Rotate the keys answering ``query`` in ``sources`` (default: the config's)."""
    policy.check_reason(reason)
    policy.demand_reason(run.config, reason, "rotating keys")
    with run.active():
        opened = run.open(sources)
        principals = {source.name: getattr(source, "principal", None) for source in opened}
        result = RotateResult(query)
        for answer in ask_all(opened, _rotator(query)):
            result.rotations += answer.value or []
            result.warnings += answer.warnings
            result.sources.append(answer.status)
        result.trail_problem = policy.record(
            run.config,
            trail.rotation_entries(result.rotations, reason, run.command, principals),
            refusing="rotation was asked for, but",
        )
    return result


def rotate_revealed(
    run: Run, keys: Sequence[RecoveryKey], *, reason: str | None = None
) -> list[RotateResult]:
    """After a reveal (find --rotate): rotate exactly the keys whose password was shown, each
    in the source that held it; one result per key and source, asked once however many
    times the lookup listed it."""
    shown = dict.fromkeys(
        (key.key_id, key.source) for key in keys if key.recovery_password is not None
    )
    return [rotate(run, Query(key_id=key_id), [source], reason=reason) for key_id, source in shown]


def _rotator(query: Query) -> Callable[[Source, Warn], list[Rotation]]:
    def rotate_in(source: Source, warn: Warn) -> list[Rotation]:
        if isinstance(source, Rotates):
            return source.rotate(query, warn)
        return by_hand(source, query, warn)

    return rotate_in


def by_hand(source: Source, query: Query, warn: Warn) -> list[Rotation]:
    """A directory that cannot rotate: the keys found, per computer, with the steps."""
    kind = getattr(source, "type_name", None)
    backup: Literal["ad"] | None = "ad" if kind == "ad" else None
    where = (
        "Active Directory cannot ask a device to rotate its keys"
        if kind == "ad"
        else "this source cannot ask a device to rotate its keys"
    )
    per_computer: dict[str | None, list[KeyId]] = {}
    for key in source.find(query, warn):
        per_computer.setdefault(key.computer, []).append(key.key_id)
    rotations = []
    for computer, key_ids in per_computer.items():
        ids = tuple(dict.fromkeys(key_ids))
        rotations.append(
            Rotation(
                source.name,
                computer,
                None,
                ids,
                "by hand",
                f"{where}: rotate them on the device, as an administrator",
                manage_bde_steps(ids, backup=backup),
            )
        )
    return rotations
