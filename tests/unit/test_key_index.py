"""The Key ID index file: what it holds, how prefixes and names are found, all-or-nothing
refreshes, and what it refuses."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitkey_dir.core.errors import ConfigError, InputError, SourceError
from bitkey_dir.core.model import KeyEntry, KeyId
from bitkey_dir.runtime.config import parse_config
from bitkey_dir.store.key_index import DamagedIndex, KeyIndex, open_index, remove_index

ID_A = KeyId.parse("063EA4E1-220C-4293-BA01-4754620A96E7")
ID_B = KeyId.parse("063EA4E1-9D3A-4F5E-8B2C-ABCDEFABCDEF")
ID_C = KeyId.parse("C1ACC990-6424-450A-A36B-F9B3DDCB369D")


def entry(key_id: KeyId, computer: str | None = "PC-1", device: str | None = None) -> KeyEntry:
    return KeyEntry(
        key_id, computer=computer, device_id=device, created=datetime(2025, 1, 1, tzinfo=UTC)
    )


@pytest.fixture
def index(tmp_path: Path) -> Iterator[KeyIndex]:
    opened = open_index(tmp_path / "state" / "index.sqlite3", create=True)
    assert opened is not None
    with opened:
        yield opened


def test_no_file_means_no_index_until_one_is_created(tmp_path: Path) -> None:
    assert open_index(tmp_path / "none.sqlite3") is None
    assert not (tmp_path / "none.sqlite3").exists()


def test_the_file_and_its_folder_are_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        opened = open_index(tmp_path / "state" / "index.sqlite3", create=True)
    finally:
        os.umask(old)
    assert opened is not None
    opened.close()
    assert (tmp_path / "state" / "index.sqlite3").stat().st_mode & 0o777 == 0o600


def test_prefix_and_full_id_find_their_keys_only(index: KeyIndex) -> None:
    index.replace("cloud", "tenant 1", [entry(ID_A), entry(ID_B), entry(ID_C)])
    assert [e.key_id for e in index.candidates("cloud", KeyId.parse("063EA4E1"))] == [ID_A, ID_B]
    assert [e.key_id for e in index.candidates("cloud", ID_B)] == [ID_B]
    assert index.candidates("cloud", KeyId.parse("063EA4E2")) == []
    assert index.candidates("other", KeyId.parse("063EA4E1")) == []


hex_ids = st.text("0123456789ABCDEF", min_size=32, max_size=32).map(KeyId)


@functools.cache
def _shared_index() -> KeyIndex:
    """One file for every example: each replaces the last one's rows."""
    folder = Path(tempfile.mkdtemp(prefix="bitkey-index-test-"))
    atexit.register(shutil.rmtree, folder, True)
    opened = open_index(folder / "index.sqlite3", create=True)
    assert opened is not None
    return opened


@given(st.lists(hex_ids, max_size=30, unique=True), st.integers(8, 32), st.data())
def test_candidates_are_exactly_the_ids_starting_with_the_prefix(
    ids: list[KeyId], length: int, data: st.DataObject
) -> None:
    source = data.draw(st.sampled_from(ids)) if ids and data.draw(st.booleans()) else None
    prefix = (
        KeyId(source.hex[:length])
        if source
        else data.draw(hex_ids.map(lambda k: KeyId(k.hex[:length])))
    )
    shared = _shared_index()
    shared.replace("s", "f", [entry(key_id) for key_id in ids])
    found = {e.key_id for e in shared.candidates("s", prefix)}
    assert found == {key_id for key_id in ids if key_id.hex.startswith(prefix.hex)}


def test_a_refresh_that_fails_half_way_keeps_the_previous_index(index: KeyIndex) -> None:
    index.replace("cloud", "tenant 1", [entry(ID_A)])

    def broken() -> Iterator[KeyEntry]:
        yield entry(ID_B)
        raise SourceError("the directory went away")

    with pytest.raises(SourceError):
        index.replace("cloud", "tenant 1", broken())
    assert [e.key_id for e in index.candidates("cloud", KeyId.parse("063EA4E1"))] == [ID_A]
    assert index._db.execute("SELECT count(*) FROM staged").fetchone() == (0,)


def test_another_directory_under_the_same_name_is_not_this_index(index: KeyIndex) -> None:
    index.replace("cloud", "tenant 1", [entry(ID_A)])
    assert index.state("cloud", "tenant 1") is not None
    assert index.state("cloud", "tenant 2") is None
    # What a live search saw is only added to an index of the same directory.
    assert index.remember("cloud", "tenant 2", [entry(ID_B)]) == 0
    assert index.remember("cloud", "tenant 1", [entry(ID_B)]) == 1
    assert index.remember("never-indexed", "x", [entry(ID_B)]) == 0
    assert index.state("cloud") is not None
    assert index.state("cloud").keys == 2  # type: ignore[union-attr]


def test_forget_and_clear(index: KeyIndex) -> None:
    index.replace("a", "f", [entry(ID_A), entry(ID_B)])
    index.replace("b", "f", [entry(ID_C)])
    assert index.forget("a", [ID_A]) == 1
    assert [e.key_id for e in index.candidates("a", KeyId.parse("063EA4E1"))] == [ID_B]
    assert index.clear(["b"]) == ["b"]
    assert [state.source for state in index.states()] == ["a"]
    assert index.clear() == ["a"]
    assert index.states() == []


def test_rows_keep_what_the_entry_said(index: KeyIndex) -> None:
    deleted = KeyEntry(ID_C, computer="OLD$", location="OU=Gone,DC=corp", deleted=True)
    index.replace("ad", "f", [deleted])
    assert index.candidates("ad", ID_C) == [deleted]
    state = index.state("ad")
    assert state is not None
    assert (state.keys, state.deleted) == (1, 1)


def test_a_file_that_is_not_an_index_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match=r"index.sqlite3 is a file that is not an SQLite") as e:
        open_index(path, create=True)
    assert "index clear" not in e.value.message  # it is no index: clearing is no cure
    assert "--no-index" in e.value.message
    assert path.read_bytes() == b"not a database at all" * 100


def test_another_programs_database_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "theirs.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    before = path.read_bytes()
    for create in (False, True):
        with pytest.raises(InputError, match="an SQLite database of another program"):
            open_index(path, create=create)
    assert not remove_index_refused(path)
    assert path.read_bytes() == before


def remove_index_refused(path: Path) -> bool:
    with pytest.raises(InputError, match="not clearing the Key ID index"):
        remove_index(path)
    return False


def test_an_index_from_a_newer_version_is_refused_and_may_be_removed(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    opened = open_index(path, create=True)
    assert opened is not None
    opened.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(DamagedIndex, match="newer bitkey-dir"):
        open_index(path)
    assert remove_index(path) is True
    assert not path.exists()


def test_an_empty_file_is_no_index_until_one_is_made_in_it(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    path.touch()
    assert open_index(path) is None
    assert remove_index(path) is False  # nothing of ours in it: left alone
    assert path.exists()
    opened = open_index(path, create=True)
    assert opened is not None
    opened.close()
    assert open_index(path) is not None


def test_an_entry_has_no_place_for_a_password() -> None:
    assert "recovery_password" not in KeyEntry.__slots__
    with pytest.raises(ValueError, match="full Key ID"):
        KeyEntry(KeyId.parse("063EA4E1"))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(3600, 3600.0), ("90m", 5400.0), ("12h", 43200.0), ("7d", 604800.0), (" 30 S ", 30.0)],
)
def test_index_max_age_reads_durations(value: object, seconds: float) -> None:
    config = parse_config(
        {"sources": {"share": {"type": "file", "path": ["x"], "index_max_age": value}}},
        Path("c.toml"),
    )
    assert config.sources["share"].index_max_age == seconds


@pytest.mark.parametrize(
    ("source", "given", "seconds"),
    [
        ({"type": "entra", "tenant_id": "t", "client_id": "c"}, {}, 900.0),
        ({"type": "entra", "tenant_id": "t", "client_id": "c"}, {"index_max_age": "off"}, None),
        ({"type": "entra", "tenant_id": "t", "client_id": "c"}, {"index_max_age": "2h"}, 7200.0),
        ({"type": "file", "path": ["x"]}, {}, None),
        ({"type": "ad", "servers": ["ldaps://dc"]}, {}, None),
    ],
)
def test_only_an_entra_source_refreshes_its_index_by_default(
    source: dict[str, object], given: dict[str, object], seconds: float | None
) -> None:
    """Its refresh of changed devices is one request when nothing changed; the others
    would list everything before each lookup."""
    config = parse_config({"sources": {"s": source | given}}, Path("c.toml"))
    assert config.sources["s"].index_max_age == seconds


def test_off_is_no_age_of_the_other_refreshes() -> None:
    with pytest.raises(ConfigError, match=r"sources\.s\.index_full_age: expected a duration"):
        parse_config({"sources": {"s": {"type": "entra", "index_full_age": "off"}}}, Path("c.toml"))


@pytest.mark.parametrize("value", [0, -5, True, "soon", "5 weeks", "400d", 10**12, [1]])
def test_index_max_age_refuses_what_is_not_a_duration(value: object) -> None:
    with pytest.raises(ConfigError, match=r"sources\.share\.index_max_age: expected a duration"):
        parse_config(
            {"sources": {"share": {"type": "file", "path": ["x"], "index_max_age": value}}},
            Path("c.toml"),
        )


@given(st.integers(1, 10**6), st.sampled_from(["", "s", "m", "h", "d"]), st.sampled_from(["", " "]))
def test_any_duration_in_range_is_read_and_others_are_one_line_errors(
    number: int, unit: str, space: str
) -> None:
    seconds = number * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    table = {"type": "file", "path": ["x"], "index_max_age": f"{number}{space}{unit.upper()}"}
    if seconds <= 366 * 86400:
        config = parse_config({"sources": {"share": table}}, Path("c.toml"))
        assert config.sources["share"].index_max_age == seconds
    else:
        with pytest.raises(ConfigError) as refused:
            parse_config({"sources": {"share": table}}, Path("c.toml"))
        assert "\n" not in refused.value.message


def test_a_fifo_a_folder_or_a_link_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere" / "index.sqlite3")
    for path, what in ((fifo, "a named pipe"), (tmp_path, "a folder"), (dangling, "a symbolic")):
        with pytest.raises(InputError, match=what):
            open_index(path)
        with pytest.raises(InputError, match=what):
            open_index(path, create=True)
        with pytest.raises(InputError, match=what):
            remove_index(path)
    assert dangling.is_symlink()
    assert not (tmp_path / "nowhere").exists()
