"""`doctor` on a source with no diagnosis of its own: one lookup proves that it answers."""

from __future__ import annotations

from collections.abc import Iterator

from bitkey_dir.core.errors import ExitCode, SourceError
from bitkey_dir.core.model import Query, RecoveryKey
from bitkey_dir.ops import doctor
from bitkey_dir.sources.base import Warn


class LazySource:
    """A plugin-like source whose find is a generator: nothing is asked until it is read."""

    def __init__(self, name: str, error: SourceError | None = None) -> None:
        self.name = name
        self.error = error
        self.asked = 0

    def find(self, query: Query, warn: Warn) -> Iterator[RecoveryKey]:
        self.asked += 1
        warn("looked in the vault")
        if self.error is not None:
            raise self.error
        yield from ()

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        yield from ()

    def describe(self) -> str:
        return "a vault"

    def close(self) -> None:
        pass


def test_a_lookup_that_fails_only_when_read_makes_doctor_fail() -> None:
    down = LazySource("vault", SourceError("the vault does not answer"))
    result = doctor.check_sources([down])
    assert down.asked == 1
    assert result.exit_code == ExitCode.SOURCE_FAILED
    assert result.diagnoses[0].status.error == "the vault does not answer"


def test_a_lookup_that_answers_is_healthy_and_its_warnings_are_kept() -> None:
    up = LazySource("vault")
    result = doctor.check_sources([up])
    assert result.exit_code == ExitCode.FOUND
    assert [check.status for check in result.diagnoses[0].checks] == ["ok"]
    assert result.warnings == ["vault: looked in the vault"]
