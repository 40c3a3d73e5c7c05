"""`reads`: which of the directory's key reads a trail line explains (ops/reads.py, matched).

A trail line stands for one reveal, so it explains one read at most: the reads it cannot
explain are reported as made elsewhere, however close in time they are.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bitkey_dir.core.errors import InputError
from bitkey_dir.core.model import KeyId
from bitkey_dir.core.reports import KeyRead
from bitkey_dir.ops import reads as reading
from bitkey_dir.ops.reads import matched, parse_since

KEY = "063EA4E1-220C-4293-BA01-4754620A96E7"
OTHER = "3CEAAF30-8142-48EA-91D9-3080F9B439FC"
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
APP = "11111111-2222-3333-4444-555555555555"


def read(minutes: float, *, key: str = KEY, actor: str = APP, ok: bool = True) -> KeyRead:
    return KeyRead(
        source="cloud",
        time=NOON + timedelta(minutes=minutes),
        actor=actor,
        actor_kind="app",
        key_id=KeyId.parse(key),
        device="PC-0042",
        succeeded=ok,
        event_id=f"event-{minutes}-{key[:4]}-{actor[:4]}",
    )


def reveals(*minutes: float, key: str = KEY) -> dict[tuple[str, str], list[reading.Reveal]]:
    lines = [
        {
            "time": (NOON + timedelta(minutes=m)).isoformat(timespec="seconds"),
            "source": "cloud",
            "key_id": key,
            "principal": f"app {APP}",
            "reason": f"INC-{m}",
        }
        for m in minutes
    ]
    return reading._reveals_by_key(lines, NOON - timedelta(days=1))


def via(result: list[reading.Read]) -> dict[float, str | None]:
    return {
        (item.read.time - NOON).total_seconds() / 60: (
            str(item.trail.get("reason")) if item.trail else None
        )
        for item in result
    }


def test_one_trail_line_explains_one_read_of_several_close_ones() -> None:
    result = matched([read(-4), read(0.5), read(6)], reveals(0))
    assert via(result) == {-4: None, 0.5: "INC-0", 6: None}


def test_each_line_explains_the_read_nearest_to_it() -> None:
    result = matched([read(0), read(3), read(9)], reveals(2, 8))
    assert via(result) == {0: None, 3: "INC-2", 9: "INC-8"}


def test_the_answer_does_not_depend_on_the_listing_order() -> None:
    reads = [read(m) for m in (-9, -5, -1, 0, 1, 2, 5, 9)]
    expected = via(matched(reads, reveals(-3, 0, 4)))
    assert sorted(v for v in expected.values() if v) == ["INC--3", "INC-0", "INC-4"]
    for seed in range(20):
        shuffled = reads[:]
        random.Random(seed).shuffle(shuffled)  # noqa: S311 - a repeatable order, no secret
        assert via(matched(shuffled, reveals(-3, 0, 4))) == expected


def test_a_line_never_explains_another_key_account_or_a_failed_read() -> None:
    reads = [
        read(0, key=OTHER),
        read(0.1, actor="99999999-2222-3333-4444-555555555555"),
        read(0.2, ok=False),
        read(11),  # too far
    ]
    assert all(item.trail is None for item in matched(reads, reveals(0)))


@pytest.mark.parametrize(
    "since", ["0001-01-01", "0001-01-01T00:00:00+14:00", "1999-12-31", "1000-06-01T00:00"]
)
def test_since_before_any_audit_log_is_bad_input(since: str) -> None:
    with pytest.raises(InputError, match="is before 2000-01-01"):
        parse_since(since, datetime.now(UTC))


def test_since_in_range_is_taken() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    assert parse_since("2000-01-01", now) == datetime(2000, 1, 1, tzinfo=UTC)
    assert parse_since("99999d", now) == now - timedelta(days=99999)
