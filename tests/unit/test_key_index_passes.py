"""Refreshes of the Key ID index that replace only the devices they listed
(store/index_passes.py), and the choice of which one runs (ops/index_listing.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bitkey_dir.core.model import KeyEntry, KeyId
from bitkey_dir.ops.index_listing import choose
from bitkey_dir.runtime.config import SourceConfig
from bitkey_dir.store.index_passes import PassState, ended
from bitkey_dir.store.key_index import KeyIndex, SourceState, open_index

A1 = KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7")
A2 = KeyId.parse("063EA4E1-9D3A-4F5E-8B2C-ABCDEFABCDEF")
B1 = KeyId.parse("C1ACC990-6424-450A-A36B-F9B3DDCB369D")
ORPHAN = KeyId.parse("7F000000-0000-4000-8000-000000000001")
NEW = KeyId.parse("AB000000-0000-4000-8000-000000000002")


def entry(key_id: KeyId, name: str | None, device: str | None) -> KeyEntry:
    return KeyEntry(key_id, name, device, datetime(2025, 1, 1, tzinfo=UTC))


@pytest.fixture
def index(tmp_path: Path) -> Iterator[KeyIndex]:
    opened = open_index(tmp_path / "index.sqlite3", create=True)
    assert opened is not None
    with opened:
        opened.replace(
            "cloud",
            "tenant 1",
            [
                entry(A1, "PC-A", "dev-a"),
                entry(A2, "PC-A", "dev-a"),
                entry(B1, "PC-B", "DEV-B"),
                entry(ORPHAN, None, "dev-gone"),
            ],
        )
        yield opened


def held(index: KeyIndex) -> dict[KeyId, tuple[str | None, str | None]]:
    every = [A1, A2, B1, ORPHAN, NEW]
    return {
        e.key_id: (e.computer, e.device_id)
        for key_id in every
        for e in index.candidates("cloud", key_id)
    }


def by_device(
    index: KeyIndex, how: str, devices: list[tuple[str, bool]], entries: list[KeyEntry]
) -> None:
    token = index.new_token()
    index.stage(token, "cloud", entries)
    index.cover(token, "cloud", devices)
    done = ended(how, 1.0, len(entries), len(devices), "cursor-1")  # type: ignore[arg-type]
    index.commit_devices(token, "cloud", "tenant 1", done)


def test_a_device_listed_is_replaced_and_the_others_kept(index: KeyIndex) -> None:
    by_device(index, "changes", [("dev-a", True)], [entry(A2, "PC-A2", "dev-a")])
    assert held(index) == {
        A2: ("PC-A2", "dev-a"),  # A1 is gone from the device: gone from the index
        B1: ("PC-B", "DEV-B"),
        ORPHAN: (None, "dev-gone"),
    }
    state = index.state("cloud", "tenant 1")
    assert state is not None
    assert set(state.passes) == {"full", "changes"}
    assert index.cursor("cloud") == "cursor-1"
    index.drop_cursor("cloud")
    assert index.cursor("cloud") is None


def test_every_device_listed_unnames_keys_whose_device_left_the_list(index: KeyIndex) -> None:
    by_device(
        index,
        "devices",
        [("dev-a", True), ("dev-b", False), ("dev-new", True)],  # dev-b: case, not listed
        [entry(A1, "PC-A", "dev-a"), entry(A2, "PC-A", "dev-a"), entry(NEW, "PC-N", "dev-new")],
    )
    assert held(index) == {
        A1: ("PC-A", "dev-a"),
        A2: ("PC-A", "dev-a"),
        B1: ("PC-B", "DEV-B"),  # could not be listed: kept as it was
        NEW: ("PC-N", "dev-new"),
        ORPHAN: (None, "dev-gone"),
    }
    by_device(index, "devices", [("dev-a", True)], [entry(A1, "PC-A", "dev-a")])
    assert held(index)[B1] == (None, "DEV-B")  # no longer in the device list


def test_another_directory_under_the_same_name_is_dropped_first(index: KeyIndex) -> None:
    token = index.new_token()
    index.stage(token, "cloud", [entry(NEW, "PC-N", "dev-new")])
    index.cover(token, "cloud", [("dev-new", True)])
    index.commit_devices(token, "cloud", "tenant 2", ended("devices", 1.0, 1, 1, None))
    assert held(index) == {NEW: ("PC-N", "dev-new")}
    state = index.state("cloud", "tenant 2")
    assert state is not None
    assert set(state.passes) == {"devices"}


class _ByDevice:
    name = "cloud"

    def iter_device_keys(self, since: object, round: object, warn: object) -> Iterator[object]:
        return iter(())


class _Plain:
    name = "share"


def _state(**ages: float) -> SourceState:
    now = datetime.now(UTC)
    passes = {
        name: PassState(name, now - timedelta(seconds=age), 1.0, None, 0, None)
        for name, age in ages.items()
    }
    return SourceState("cloud", "t", now, 1.0, 0, 0, passes)


CONFIG = SourceConfig("cloud", "entra", None, None, 3600.0, 86400.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "cursor", "how", "before_lookup", "expected"),
    [
        (None, None, "auto", False, "full"),  # the first refresh lists everything
        (None, None, "auto", True, "devices"),  # before a lookup: never the slow one
        (_state(full=10), None, "auto", False, "devices"),  # no cursor yet
        (_state(full=10, devices=10), "c", "auto", False, "changes"),
        (_state(full=5000, devices=4000), "c", "auto", False, "devices"),
        (_state(full=90000, devices=10), "c", "auto", False, "full"),
        (_state(full=90000, devices=10), "c", "auto", True, "changes"),
        (_state(full=10), None, "changes", False, "devices"),  # nothing to resume from
        (_state(full=10), "c", "full", False, "full"),
    ],
)
def test_the_kind_of_refresh(
    state: SourceState | None, cursor: str | None, how: str, before_lookup: bool, expected: str
) -> None:
    source = _ByDevice()
    kind = choose(CONFIG, source, state, cursor, how, before_lookup=before_lookup)  # type: ignore[arg-type]
    assert kind == expected


def test_a_source_without_listings_by_device_is_always_listed_in_full() -> None:
    state = replace(_state(full=10, devices=10))
    assert choose(CONFIG, _Plain(), state, "c", "changes") == "full"  # type: ignore[arg-type]
