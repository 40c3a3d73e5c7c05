"""Merging answers from several sources: order, duplicates, conflicts, and failures; and
find --rotate, which rotates exactly the keys revealed, over the same stand-in sources."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bitkey_dir.core.errors import AuthError, ExitCode, SourceError
from bitkey_dir.core.model import ComputerName, KeyId, Query, RecoveryKey, RecoveryPassword
from bitkey_dir.core.rotation import Rotation
from bitkey_dir.ops import lookup
from bitkey_dir.ops.lookup import LookupResult
from bitkey_dir.ops.lookup import ask_sources as find_keys
from bitkey_dir.ops.run import Run
from bitkey_dir.runtime.config import parse_config
from bitkey_dir.sources.base import Source, Warn

P1 = RecoveryPassword.parse("531058-303050-716078-383614-460922-106975-083446-139161")
P2 = RecoveryPassword.parse("000000-000011-000022-000033-000044-000055-000066-000077")
ID_A = KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7")
ID_B = KeyId.parse("063EA4E1-0000-4293-BA01-4754620A96E7")


class ListSource:
    """A source over a fixed list, or one that fails the way a directory can."""

    def __init__(
        self,
        name: str,
        keys: list[RecoveryKey],
        error: Exception | None = None,
        barrier: threading.Barrier | None = None,
    ):
        self.name = name
        self.keys = keys
        self.error = error
        self.closed = False
        self.barrier = barrier

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        if self.barrier:
            self.barrier.wait()  # only passes if the other source is being asked at the same time
        warn("asked")
        if self.error:
            raise self.error
        return [key for key in self.keys if query.matches(key)]

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        yield from self.keys

    def describe(self) -> str:
        return "a list"

    def close(self) -> None:
        self.closed = True


def key(source: str, key_id: KeyId, password: RecoveryPassword, hours: float | None) -> RecoveryKey:
    created = None
    if hours is not None:
        created = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=-8))) + timedelta(
            hours=hours
        )
    return RecoveryKey(source, key_id, password, computer="PC-1", created=created)


def test_list_source_satisfies_the_protocol() -> None:
    assert isinstance(ListSource("a", []), Source)


def test_newest_first_across_sources_and_offsets() -> None:
    both = threading.Barrier(2, timeout=10)
    a = ListSource("a", [key("a", ID_A, P1, 0), key("a", ID_B, P2, None)], barrier=both)
    b = ListSource("b", [key("b", ID_B, P2, 5)], barrier=both)
    result = find_keys(Query(key_id=KeyId.parse("063EA4E1")), [a, b])
    assert [(k.source, k.key_id, k.created is None) for k in result.keys] == [
        ("b", ID_B, False),
        ("a", ID_A, False),
        ("a", ID_B, True),
    ]
    assert result.ambiguous
    assert result.exit_code == ExitCode.FOUND
    assert a.closed
    assert b.closed
    assert result.warnings == ["a: asked", "b: asked"]


def test_utc_offsets_are_compared_as_instants() -> None:
    early = RecoveryKey("a", ID_A, P1, created=datetime(2025, 1, 1, 12, tzinfo=UTC))
    later = RecoveryKey(
        "a", ID_B, P2, created=datetime(2025, 1, 1, 10, tzinfo=timezone(timedelta(hours=-5)))
    )
    result = find_keys(Query(key_id=KeyId.parse("063EA4E1")), [ListSource("a", [early, later])])
    assert [k.key_id for k in result.keys] == [ID_B, ID_A]


def test_the_same_key_twice_in_one_source_is_one_key() -> None:
    duplicate = [key("a", ID_A, P1, 1), key("a", ID_A, P1, 1)]
    result = find_keys(Query(key_id=ID_A), [ListSource("a", duplicate)])
    assert len(result.keys) == 1
    assert not result.ambiguous


def test_one_key_id_with_two_passwords_is_a_conflict() -> None:
    result = find_keys(
        Query(key_id=ID_A), [ListSource("a", [key("a", ID_A, P1, 1), key("a", ID_A, P2, 2)])]
    )
    assert len(result.keys) == 2
    (conflict,) = result.conflicts
    assert conflict.key_id == ID_A
    assert "different recovery passwords" in conflict.describe()


@pytest.mark.parametrize(
    ("errors", "code"),
    [
        ([SourceError("down")], ExitCode.SOURCE_FAILED),
        ([AuthError("no rights")], ExitCode.AUTH),
        ([AuthError("no rights"), SourceError("down")], ExitCode.AUTH),
        ([RuntimeError("bug with secret 531058")], ExitCode.SOURCE_FAILED),
    ],
)
def test_nothing_found_with_a_failure_takes_the_failures_code(
    errors: list[Exception], code: ExitCode
) -> None:
    sources = [ListSource(f"s{i}", [], error) for i, error in enumerate(errors)]
    sources.append(ListSource("ok", []))
    result = find_keys(Query(computer=ComputerName.parse("PC-1")), sources)
    assert result.exit_code == code
    assert [s.status for s in result.sources][-1] == "ok"
    assert all("531058" not in (s.error or "") for s in result.sources)
    assert all(s.closed for s in sources)


def test_keys_found_but_none_readable_is_a_rights_problem() -> None:
    unreadable = RecoveryKey("a", ID_A, None, computer="PC-1")
    result = find_keys(Query(key_id=ID_A), [ListSource("a", [unreadable])])
    assert result.keys == [unreadable]
    assert result.exit_code == ExitCode.AUTH
    readable = key("b", ID_A, P1, 1)
    result = find_keys(
        Query(key_id=ID_A), [ListSource("a", [unreadable]), ListSource("b", [readable])]
    )
    assert result.exit_code == ExitCode.FOUND


# -- find --rotate: the keys revealed, then rotated, with one exit rule ------------------------


class RotatingSource(ListSource):
    """A stand-in for a directory that can ask devices to rotate (Entra through Intune)."""

    def __init__(
        self, name: str, keys: list[RecoveryKey], events: list[str], error: Exception | None
    ):
        super().__init__(name, keys)
        self.events = events
        self.rotate_error = error

    def rotate(self, query: Query, warn: Warn) -> list[Rotation]:
        self.events.append(f"rotate {query.key_id} in {self.name}")
        if self.rotate_error:
            raise self.rotate_error
        key_id = query.key_id
        assert key_id is not None
        return [Rotation(self.name, "PC-1", "device-1", (key_id,), "requested", "asked")]


def stand_in_run(monkeypatch: pytest.MonkeyPatch, make: dict[str, Callable[[], Source]]) -> Run:
    """A run whose sources are built by ``make`` (fresh each time: asking closes them)."""
    monkeypatch.setattr(Run, "open", lambda run, specs: [make[n]() for n in specs or make])
    return Run(parse_config({}, Path("stand-in.toml")))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (None, ExitCode.FOUND),
        (AuthError("no right to rotate"), ExitCode.AUTH),
        (SourceError("Intune unreachable"), ExitCode.SOURCE_FAILED),
    ],
)
def test_find_then_rotate_shows_then_rotates_exactly_the_keys_revealed(
    monkeypatch: pytest.MonkeyPatch, error: Exception | None, code: ExitCode
) -> None:
    events: list[str] = []
    unreadable = RecoveryKey("intune", ID_B, None, computer="PC-1")
    run = stand_in_run(
        monkeypatch,
        {
            "files": lambda: ListSource("files", [key("files", ID_A, P1, 1)]),
            "intune": lambda: RotatingSource(
                "intune", [key("intune", ID_A, P1, 1), unreadable], events, error
            ),
        },
    )

    def shown(result: LookupResult) -> None:
        events.append(f"shown {len(result.keys)} keys")

    result = lookup.find(
        run, Query(key_id=KeyId.parse("063EA4E1")), use_index=False, then_rotate=True, shown=shown
    )
    # Shown first; then the readable key in each source that held it, the unreadable not.
    assert events == ["shown 3 keys", f"rotate {ID_A} in intune"]
    assert [(r.query.key_id, [s.name for s in r.sources]) for r in result.rotations] == [
        (ID_A, ["files"]),
        (ID_A, ["intune"]),
    ]
    by_hand, asked = result.rotations
    assert [r.outcome for r in by_hand.rotations] == ["by hand"]  # not a failure: exit 0
    assert [r.outcome for r in asked.rotations] == ([] if error else ["requested"])
    assert result.exit_code == code
    assert [key.key_id for key in result.keys] == [ID_A, ID_A, ID_B]  # still shown


def test_nothing_is_rotated_unless_a_password_was_revealed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    unreadable = RecoveryKey("intune", ID_A, None, computer="PC-1")
    run = stand_in_run(
        monkeypatch, {"intune": lambda: RotatingSource("intune", [unreadable], events, None)}
    )
    result = lookup.find(run, Query(key_id=ID_A), use_index=False, then_rotate=True)
    assert (result.exit_code, result.rotations, events) == (ExitCode.AUTH, [], [])
    nothing = lookup.find(run, Query(key_id=ID_B), use_index=False, then_rotate=True)
    assert (nothing.exit_code, nothing.rotations, events) == (ExitCode.NOT_FOUND, [], [])
    shown = lookup.find(run, Query(key_id=ID_A), use_index=False)  # no --rotate
    assert (shown.rotations, events) == ([], [])
