"""Disclosed keys: every key the access trail says was revealed, checked against its directory.

A key read out to somebody stays a secret only once it is replaced. For each key revealed
(the latest reveal counts), the directory is asked which keys its volume has now, without
reading a password: a key escrowed for the same volume after the reveal means the disclosed
one was **rotated**; otherwise it is **still valid** since the reveal (and for how long is the
risk). A key the directory no longer holds is **gone**; a source that cannot tell, or is no
longer configured, gives **unknown**.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from bitkey_dir.core.errors import ExitCode, InputError
from bitkey_dir.core.model import KeyId, RecoveryKey
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.run import Run, ask_all
from bitkey_dir.sources.base import KnowsVolumes, Source, Warn
from bitkey_dir.store import trail

Status = Literal["rotated", "still valid", "gone", "unknown"]


@dataclass(frozen=True)
class Disclosure:
    """One revealed key and what its directory says now."""

    source: str
    key_id: KeyId
    computer: str | None
    revealed: datetime  # the latest reveal
    reveals: int
    status: Status = "unknown"
    newer: datetime | None = None  # rotated: when the newer key was escrowed
    detail: str = ""

    def exposed_days(self, now: datetime) -> float | None:
        """For a key still valid: how long it has been known to somebody else."""
        if self.status != "still valid":
            return None
        return (now - self.revealed).total_seconds() / 86400

    def to_record(self, now: datetime) -> dict[str, object]:
        days = self.exposed_days(now)
        return {
            "source": self.source,
            "key_id": str(self.key_id),
            "computer": self.computer,
            "revealed": self.revealed.isoformat(timespec="seconds"),
            "reveals": self.reveals,
            "status": self.status,
            "rotated": self.newer.isoformat(timespec="seconds") if self.newer else None,
            "exposed_days": round(days, 1) if days is not None else None,
            "detail": self.detail,
        }


@dataclass
class DisclosureResult:
    disclosures: list[Disclosure] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fail_on_valid: bool = False
    checked: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def exit_code(self) -> ExitCode:
        """0 done; 1 with ``fail_on_valid`` when a disclosed key is still valid; a failed
        source's code (the answer misses its keys)."""
        valid = any(d.status == "still valid" for d in self.disclosures)
        answer = ExitCode.NOT_FOUND if self.fail_on_valid and valid else ExitCode.FOUND
        return exit_code(answer, self.sources, every_source_needed=True)


def disclosed(
    run: Run, sources: Sequence[str] = (), *, fail_on_valid: bool = False
) -> DisclosureResult:
    """The keys the trail says were revealed (from ``sources``, default all), classified."""
    result = DisclosureResult(fail_on_valid=fail_on_valid)
    with run.active():
        broken = [0]
        revealed = _reveals(trail.read_lines(broken=broken))
        if broken[0]:
            result.warnings.append(f"{trail.trail_path()}: {broken[0]} unreadable line(s) skipped")
        wanted = set(sources)
        by_source: dict[str, list[Disclosure]] = {}
        for one in revealed:
            if not wanted or one.source in wanted or one.source.partition("/")[0] in wanted:
                by_source.setdefault(one.source, []).append(one)
        opened: list[Source] = []
        for name, found in by_source.items():
            try:
                opened.append(run.open_one(name))
            except InputError:
                result.disclosures += [
                    replace(d, detail="the source is no longer configured") for d in found
                ]
        for answer in ask_all(opened, _checker(by_source)):
            result.sources.append(answer.status)
            result.warnings += answer.warnings
            result.disclosures += answer.value or by_source[answer.status.name]
    result.disclosures.sort(key=lambda d: (d.status != "still valid", d.revealed))
    return result


def _reveals(lines: Iterable[trail.Line]) -> list[Disclosure]:
    """The latest reveal of each key, with how many times it was revealed."""
    latest: dict[tuple[str, str], Disclosure] = {}
    for line in lines:
        if line.get("action") is not None or line.get("shown") is False:
            continue  # an export or a rotation, or a password read but not shown
        source, key_text, when = line.get("source"), line.get("key_id"), line.get("time")
        if not (isinstance(source, str) and isinstance(key_text, str) and isinstance(when, str)):
            continue
        try:
            key_id = KeyId.parse(key_text)
            revealed = datetime.fromisoformat(when)
        except (InputError, ValueError):
            continue
        if not key_id.is_full or revealed.utcoffset() is None:
            continue
        computer = line.get("computer")
        before = latest.get((source, key_id.hex))
        latest[(source, key_id.hex)] = Disclosure(
            source,
            key_id,
            computer if isinstance(computer, str) else before.computer if before else None,
            max(revealed, before.revealed) if before else revealed,
            (before.reveals if before else 0) + 1,
        )
    return list(latest.values())


def _checker(
    by_source: dict[str, list[Disclosure]],
) -> Callable[[Source, Warn], list[Disclosure]]:
    def check(source: Source, warn: Warn) -> list[Disclosure]:
        found = by_source[source.name]
        if not isinstance(source, KnowsVolumes):
            return [
                replace(d, detail="this source cannot say which keys a volume has") for d in found
            ]
        return [classify(d, source.volume_keys(d.key_id, warn)) for d in found]

    return check


def classify(disclosure: Disclosure, volume: Sequence[RecoveryKey] | None) -> Disclosure:
    """What the volume's keys now say about a disclosed key."""
    if volume is None:
        return replace(
            disclosure,
            status="gone",
            detail="the directory no longer holds the key (deleted, or the device is gone)",
        )
    newer = [
        key.created
        for key in volume
        if key.key_id != disclosure.key_id
        and key.created is not None
        and key.created > disclosure.revealed
    ]
    if newer:
        return replace(
            disclosure,
            status="rotated",
            newer=min(newer),
            detail="a newer key was escrowed for the volume after the reveal",
        )
    return replace(
        disclosure,
        status="still valid",
        detail="no newer key for the volume: run bitkey-dir rotate",
    )
