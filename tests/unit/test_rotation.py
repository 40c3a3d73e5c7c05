"""Rotation without a directory that rotates: the steps name the key's own volume, a key
whose password the account may not read is not rotated in its name, and rotate --wait asks
again with backoff, honours Retry-After and stops when its time is up."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bitkey_dir.core.errors import AuthError, ExitCode, SourceError
from bitkey_dir.core.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.core.rotation import KeyOnVolume, Progress, Rotation, rotation_steps
from bitkey_dir.ops import rotation_wait
from bitkey_dir.ops.rotate import RotateResult, by_hand
from bitkey_dir.sources.base import Warn

OS_KEY = KeyId.parse("0CA5A386-D95D-4BD4-A796-74CEDD03A88E")
DATA_KEY = KeyId.parse("19F9CBEF-0F69-44D0-AB57-F9854332C3DA")
OTHER_DATA_KEY = KeyId.parse("3CEAAF30-8142-48EA-91D9-3080F9B439FC")
PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"


def volume_of(step: str) -> str:
    """The volume a manage-bde step acts on."""
    words = step.split()
    return words[3]


# -- the steps name the right volume ----------------------------------------------------------


def test_an_operating_system_key_is_replaced_on_the_system_drive() -> None:
    steps = rotation_steps([KeyOnVolume(OS_KEY, "operatingSystemVolume")], backup="entra")
    assert steps == (
        "manage-bde -protectors -add $env:SystemDrive -RecoveryPassword"
        "   # note the new ID it prints",
        "BackupToAAD-BitLockerKeyProtector -MountPoint $env:SystemDrive -KeyProtectorId '{NEW-ID}'",
        f"manage-bde -protectors -delete $env:SystemDrive -id '{{{OS_KEY}}}'",
    )


@pytest.mark.parametrize(
    "kind", ["fixedDataVolume", "removableDataVolume", None, "unknownFutureValue"]
)
def test_any_other_key_is_replaced_on_the_volume_that_holds_it(kind: str | None) -> None:
    steps = rotation_steps([KeyOnVolume(DATA_KEY, kind)], backup="ad")
    assert "C:" not in " ".join(steps)
    assert "SystemDrive" not in " ".join(steps)
    find, add, keep, delete = steps
    # The volume is the one whose key protector is the disclosed key, and only that one.
    assert find.startswith("$v = @(Get-BitLockerVolume | Where-Object { $_.KeyProtector")
    assert f"KeyProtectorId -contains '{{{DATA_KEY}}}' }}).MountPoint" in find
    assert "if (@($v).Count -ne 1) { throw" in find
    assert add == "manage-bde -protectors -add $v -RecoveryPassword   # note the new ID it prints"
    assert keep == "manage-bde -protectors -adbackup $v -id '{NEW-ID}'"
    assert delete == f"manage-bde -protectors -delete $v -id '{{{DATA_KEY}}}'"


def test_keys_of_two_volumes_are_replaced_each_on_its_own_the_system_first() -> None:
    keys = [
        KeyOnVolume(DATA_KEY, "fixedDataVolume"),
        KeyOnVolume(OS_KEY, "operatingSystemVolume"),
        KeyOnVolume(OTHER_DATA_KEY, "removableDataVolume"),
    ]
    steps = rotation_steps(keys, backup=None)
    adds = [step for step in steps if "-add" in step]
    assert [volume_of(step) for step in adds] == ["$env:SystemDrive", "$v", "$v"]
    deletes = [step for step in steps if "-delete" in step]
    assert deletes == [
        f"manage-bde -protectors -delete $env:SystemDrive -id '{{{OS_KEY}}}'",
        f"manage-bde -protectors -delete $v -id '{{{DATA_KEY}}}'",
        f"manage-bde -protectors -delete $v -id '{{{OTHER_DATA_KEY}}}'",
    ]
    # Each data volume is found by its own key, right before its steps.
    finds = [i for i, step in enumerate(steps) if step.startswith("$v = ")]
    assert [str(DATA_KEY) in steps[finds[0]], str(OTHER_DATA_KEY) in steps[finds[1]]] == [
        True,
        True,
    ]
    assert finds[1] > steps.index(deletes[1])


def test_keys_of_one_ad_volume_guid_share_one_new_password() -> None:
    volume = "3F7B320C-8626-4AB4-98E2-4E9E84FE8A03"
    keys = [KeyOnVolume(DATA_KEY, None, volume), KeyOnVolume(OTHER_DATA_KEY, None, volume.lower())]
    steps = rotation_steps(keys, backup="ad")
    assert sum("-add" in step for step in steps) == 1
    assert sum("-delete" in step for step in steps) == 2


# -- a key the account may not read was not disclosed through it -------------------------------


@dataclass
class Directory:
    """A directory that cannot rotate, holding keys some of whose passwords are unreadable."""

    keys: list[RecoveryKey]
    name: str = "corp"
    type_name: str = "ad"
    principal: str = "helpdesk@corp.example"

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        return [key for key in self.keys if query.matches(key)]

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        yield from self.keys

    def describe(self) -> str:
        return "a stand-in"

    def close(self) -> None:
        pass


def key(key_id: KeyId, computer: str, *, readable: bool) -> RecoveryKey:
    password = RecoveryPassword.parse(PASSWORD) if readable else None
    return RecoveryKey("corp", key_id, password, computer, volume_type="operatingSystemVolume")


def test_a_key_whose_password_is_unreadable_is_not_rotated_in_the_accounts_name() -> None:
    directory = Directory([key(OS_KEY, "SRV-01", readable=False)])
    with pytest.raises(AuthError, match=r"helpdesk@corp\.example may not read the password of"):
        by_hand(directory, Query(key_id=OS_KEY), list[str]().append)


def test_readable_keys_are_rotated_and_the_unreadable_one_is_a_warning() -> None:
    directory = Directory(
        [key(OS_KEY, "PC-01", readable=True), key(DATA_KEY, "PC-01", readable=False)]
    )
    warned: list[str] = []
    (rotation,) = by_hand(directory, Query(computer=ComputerName.parse("PC-01")), warned.append)
    assert rotation.key_ids == (OS_KEY,)
    assert not any(str(DATA_KEY) in step for step in rotation.steps)
    (warning,) = warned
    assert str(DATA_KEY) in warning
    assert "not rotated here" in warning
    assert PASSWORD not in repr(rotation) + warning


# -- rotate --wait --------------------------------------------------------------------------------


@dataclass
class Intune:
    """A source that rotates and answers with the progress it was given, one per ask."""

    answers: Sequence[Progress | Exception]
    name: str = "cloud"
    asked: int = 0

    def rotation_progress(self, rotation: Rotation, warn: Warn) -> Progress:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    def rotate(self, query: Query, warn: Warn) -> list[Rotation]:
        return []

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        return []

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        yield from ()

    def describe(self) -> str:
        return "a stand-in"

    def close(self) -> None:
        pass


@dataclass
class Clock:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Lends:
    source: Intune

    def open_one(self, name: str) -> Intune:
        assert name == self.source.name
        return self.source


def requested() -> RotateResult:
    rotation = Rotation(
        "cloud",
        "PC-01",
        "dev-1",
        (OS_KEY,),
        "requested",
        "asked",
        follow_up="md-1",
        requested=datetime.now(UTC),
    )
    return RotateResult(Query(key_id=OS_KEY), rotations=[rotation], waited=60)


def follow(
    answers: Sequence[Progress | Exception], seconds: float = 60
) -> tuple[RotateResult, Clock]:
    result, clock = requested(), Clock()
    run = Lends(Intune(answers))
    rotation_wait.follow_up(run, result, seconds, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    return result, clock


def test_waiting_asks_at_once_then_backs_off_until_done() -> None:
    done = Progress("done", (DATA_KEY,))
    result, clock = follow([Progress("pending")] * 3 + [done])
    assert clock.slept == [1.0, 2.0, 4.0]
    assert result.rotations[0].progress == done
    assert result.exit_code == ExitCode.FOUND


def test_waiting_honours_retry_after_and_a_transient_failure() -> None:
    busy = Progress("pending", detail="Intune is busy", retry_after=7.5)
    result, clock = follow([busy, SourceError("Graph answered 500"), Progress("done", (DATA_KEY,))])
    assert clock.slept == [7.5, 2.0]
    assert result.exit_code == ExitCode.FOUND


def test_waiting_ends_with_the_time_given_and_leaves_it_pending() -> None:
    result, clock = follow([Progress("pending", detail="Intune: pending")], seconds=40)
    assert clock.now == 40
    assert all(delay <= 30 for delay in clock.slept)
    progress = result.rotations[0].progress
    assert progress is not None
    assert progress.state == "pending"
    assert result.exit_code == ExitCode.NOT_FOUND  # not done, not failed: it may still complete


@pytest.mark.parametrize("state", ["failed", "not supported"])
def test_a_device_that_cannot_rotate_is_exit_4(state: str) -> None:
    result, clock = follow([Progress(state, detail="Intune: failed, error code -1")])  # type: ignore[arg-type]
    assert clock.slept == []
    assert result.exit_code == ExitCode.SOURCE_FAILED


def test_a_refusal_stops_asking_and_is_exit_3() -> None:
    result, clock = follow([AuthError("may not read managed devices")])
    assert clock.slept == []
    assert result.exit_code == ExitCode.AUTH


def test_ctrl_c_while_waiting_says_the_rotation_may_still_complete() -> None:
    result, clock = requested(), Clock()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    run = Lends(Intune([Progress("pending")]))
    with pytest.raises(rotation_wait.WaitInterrupted) as caught:
        rotation_wait.follow_up(run, result, 60, clock=clock, sleep=interrupted)  # type: ignore[arg-type]
    assert caught.value.exit_code == ExitCode.INTERRUPTED
    assert "PC-01 was requested and may still complete" in caught.value.message


def test_nothing_requested_is_nothing_to_wait_for() -> None:
    result = RotateResult(Query(key_id=OS_KEY), waited=60)
    rotation_wait.follow_up(Lends(Intune([])), result, 60)  # type: ignore[arg-type]
    assert result.exit_code == ExitCode.NOT_FOUND
