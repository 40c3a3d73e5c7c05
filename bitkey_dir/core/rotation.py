"""Rotating a recovery password after it was read out: what was done for each device.

A password read over the phone is disclosed. Intune can ask a device to replace it (Entra
devices with the client-driven rotation policy); anything else is rotated on the device
itself, in an order that never leaves the volume without an escrowed password: add a new
one, back it up, then delete the old one.

The steps name the volume that holds the key, never a guessed drive letter: the operating
system volume is ``$env:SystemDrive``; any other volume (a data or removable drive, or one the
directory does not type, as AD does not) is found on the device by the key protector's ID,
which is the Key ID. Following ``manage-bde -protectors -add C:`` for a data drive's key
would add a protector to C: and leave the disclosed one valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from bitkey_dir.core.model import KeyId

Outcome = Literal["requested", "by hand"]
# What the directory says of a requested rotation when asked again (rotate --wait).
State = Literal["pending", "done", "failed", "not supported"]
OS_VOLUME: Final = "operatingSystemVolume"


@dataclass(frozen=True)
class Progress:
    """How a requested rotation stands: still pending, done (with the new keys' IDs, never
    their values), failed (with the device's error) or not supported by the device."""

    state: State
    new_key_ids: tuple[KeyId, ...] = ()
    detail: str = ""  # one line: the error, or what is known of a pending rotation
    retry_after: float | None = None  # the directory asked to be asked again this much later

    def to_record(self) -> dict[str, object]:
        return {
            "state": self.state,
            "new_key_ids": [str(key_id) for key_id in self.new_key_ids],
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Rotation:
    """One device's rotation: asked of the directory, or to be done on the device."""

    source: str
    computer: str | None
    device_id: str | None
    key_ids: tuple[KeyId, ...]  # the keys this rotation replaces
    outcome: Outcome
    detail: str  # one line: what was asked of whom, or why it must be done by hand
    steps: tuple[str, ...] = ()  # for "by hand": the commands, in order
    # For "requested": what the source needs to ask how it went (Intune: the managed
    # device's ID), and when it was asked, as the source's clock had it.
    follow_up: str | None = None
    requested: datetime | None = None
    progress: Progress | None = None  # rotate --wait: the last answer

    def to_record(self) -> dict[str, object]:
        return {
            "source": self.source,
            "computer": self.computer,
            "device_id": self.device_id,
            "key_ids": [str(key_id) for key_id in self.key_ids],
            "outcome": self.outcome,
            "detail": self.detail,
            "steps": list(self.steps),
            "progress": self.progress.to_record() if self.progress else None,
        }


@dataclass(frozen=True)
class KeyOnVolume:
    """A key to replace and what the directory says of its volume: Graph's volumeType,
    AD's msFVE-VolumeGuid (either may be missing)."""

    key_id: KeyId
    volume_type: str | None = None
    volume_id: str | None = None


def rotation_steps(
    keys: Sequence[KeyOnVolume], *, backup: Literal["ad", "entra"] | None
) -> tuple[str, ...]:
    """PowerShell lines, run as an administrator on the device, that replace ``keys``: per
    volume, add a new recovery password, keep it where the old one was kept, then delete
    the old ones.

    >>> key = KeyId.parse("0CA5A386-D95D-4BD4-A796-74CEDD03A88E")
    >>> steps = rotation_steps([KeyOnVolume(key, "fixedDataVolume")], backup="ad")
    >>> steps[0]
    "$v = @(Get-BitLockerVolume | Where-Object { $_.KeyProtector.KeyProtectorId -contains '{0CA5A386-D95D-4BD4-A796-74CEDD03A88E}' }).MountPoint; if (@($v).Count -ne 1) { throw 'no single volume has the key protector {0CA5A386-D95D-4BD4-A796-74CEDD03A88E}' }"
    >>> steps[1:]
    ('manage-bde -protectors -add $v -RecoveryPassword   # note the new ID it prints', "manage-bde -protectors -adbackup $v -id '{NEW-ID}'", "manage-bde -protectors -delete $v -id '{0CA5A386-D95D-4BD4-A796-74CEDD03A88E}'")
    """  # noqa: E501
    steps: list[str] = []
    for first, key_ids, system in _volumes(keys):
        if system:
            volume = "$env:SystemDrive"
        else:
            volume = "$v"
            steps.append(
                "$v = @(Get-BitLockerVolume | Where-Object { $_.KeyProtector.KeyProtectorId "
                f"-contains '{{{first}}}' }}).MountPoint; if (@($v).Count -ne 1) {{ throw "
                f"'no single volume has the key protector {{{first}}}' }}"
            )
        steps.append(
            f"manage-bde -protectors -add {volume} -RecoveryPassword   # note the new ID it prints"
        )
        if backup == "ad":
            steps.append(f"manage-bde -protectors -adbackup {volume} -id '{{NEW-ID}}'")
        elif backup == "entra":
            steps.append(
                f"BackupToAAD-BitLockerKeyProtector -MountPoint {volume} "
                "-KeyProtectorId '{NEW-ID}'"
            )
        else:
            steps.append(
                f"manage-bde -protectors -get {volume} -id '{{NEW-ID}}'   "
                "# keep it where the old one was"
            )
        steps += [
            f"manage-bde -protectors -delete {volume} -id '{{{key_id}}}'" for key_id in key_ids
        ]
    return tuple(steps)


def _volumes(keys: Sequence[KeyOnVolume]) -> list[tuple[KeyId, list[KeyId], bool]]:
    """The keys by volume, the operating system's first: (a key that finds the volume, its
    keys, whether it is the operating system volume). Keys of one volume GUID share one;
    an untyped key without a GUID is a volume of its own (found by its own ID)."""
    groups: dict[tuple[str, str], list[KeyId]] = {}
    for key in keys:
        if key.volume_type == OS_VOLUME:
            where = ("os", "")
        elif key.volume_id:
            where = ("volume", key.volume_id.lower())
        else:
            where = ("key", key.key_id.hex)
        found = groups.setdefault(where, [])
        if key.key_id not in found:
            found.append(key.key_id)
    ordered = sorted(groups.items(), key=lambda item: item[0][0] != "os")
    return [(ids[0], ids, where[0] == "os") for where, ids in ordered]
