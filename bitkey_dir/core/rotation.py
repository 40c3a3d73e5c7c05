"""Rotating a recovery password after it was read out: what was done for each device.

A password read over the phone is disclosed. Intune can ask a device to replace it (Entra
devices with the client-driven rotation policy); anything else is rotated on the device
itself, with manage-bde, in an order that never leaves the volume without an escrowed
password: add a new one, back it up, then delete the disclosed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bitkey_dir.core.model import KeyId

Outcome = Literal["requested", "by hand"]


@dataclass(frozen=True)
class Rotation:
    """One device's rotation: asked of the directory, or to be done on the device."""

    source: str
    computer: str | None
    device_id: str | None
    key_ids: tuple[KeyId, ...]  # the disclosed keys of that device
    outcome: Outcome
    detail: str  # one line: what was asked of whom, or why it must be done by hand
    steps: tuple[str, ...] = ()  # for "by hand": the commands, in order

    def to_record(self) -> dict[str, object]:
        return {
            "source": self.source,
            "computer": self.computer,
            "device_id": self.device_id,
            "key_ids": [str(key_id) for key_id in self.key_ids],
            "outcome": self.outcome,
            "detail": self.detail,
            "steps": list(self.steps),
        }


def manage_bde_steps(
    key_ids: tuple[KeyId, ...], *, backup: Literal["ad", "entra"] | None
) -> tuple[str, ...]:
    """The commands that replace disclosed recovery passwords on the device, run as an
    administrator there: add a new password, keep it where the old one was kept, then
    delete the old ones. The volume is C: for the operating-system drive; a data drive has
    its own letter, which `manage-bde -status` shows."""
    if backup == "ad":
        keep = "manage-bde -protectors -adbackup C: -id {NEW-ID}"
    elif backup == "entra":
        keep = (
            'powershell -Command "BackupToAAD-BitLockerKeyProtector -MountPoint C: '
            "-KeyProtectorId '{NEW-ID}'\""
        )
    else:
        keep = "manage-bde -protectors -get C: -id {NEW-ID}   (keep it where the old one was)"
    steps = ["manage-bde -protectors -add C: -RecoveryPassword   (note the new ID it prints)", keep]
    steps += [f"manage-bde -protectors -delete C: -id {{{key_id}}}" for key_id in key_ids]
    return tuple(steps)
