"""`bitkey-dir index` and lookups through the index, with key-file sources as directories.

Key files are the quickest real source: what a lookup read can be changed between runs
(a key saved after the refresh, a file deleted), and a source that is searched when it
should not be fails loudly (its folder is gone).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.command_line import Outcome, invoke_with, trail_entries
from tests.unit.helpers import (
    EXAMPLE_KEYS,
    KEY_ID,
    OTHER_KEY_ID,
    OTHER_PASSWORD,
    PASSWORD,
    PASSWORD_TEXT,
    windows_key_file,
)

LATE_ID = "063EA4E1-5555-4293-BA01-4754620A96E7"  # shares KEY_ID's 8 digits
SECRETS = [PASSWORD, OTHER_PASSWORD]


class Share:
    """Two file sources, `share` (a copy of examples/keys) and `other`, in one config."""

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.share = root / "share"
        self.other = root / "other"
        shutil.copytree(EXAMPLE_KEYS, self.share)
        self.other.mkdir()
        self.save(self.other, OTHER_KEY_ID, OTHER_PASSWORD)
        extra = "".join(f'{key} = "{value}"\n' for key, value in settings.items())
        self.config = root / "config.toml"
        self.config.write_text(
            '[defaults]\nsources = ["share", "other"]\n'
            f'[sources.share]\ntype = "file"\npath = ["{self.share}"]\n{extra}'
            f'[sources.other]\ntype = "file"\npath = ["{self.other}"]\n',
            encoding="utf-8",
        )

    @staticmethod
    def save(folder: Path, key_id: str, password: str) -> Path:
        path = folder / f"BitLocker Recovery Key {key_id}.TXT"
        path.write_text(windows_key_file(key_id, password), encoding="utf-8")
        return path

    def find(self, *args: str) -> Outcome:
        return invoke_with(self.config, "find", *args, "-f", "json", secrets=SECRETS)


@pytest.fixture
def share(tmp_path: Path) -> Share:
    return Share(tmp_path)


def index_file() -> Path:
    found = list(Path.home().rglob("key-index.sqlite3"))
    assert len(found) == 1, found
    return found[0]


def index_file_exists() -> bool:
    return any(Path.home().rglob("key-index.sqlite3"))


def test_refresh_status_and_clear(share: Share) -> None:
    status = invoke_with(share.config, "index", "status", secrets=SECRETS)
    assert status.code == 0
    assert "not indexed" in status.out
    done = invoke_with(share.config, "index", "refresh", secrets=SECRETS)
    assert done.code == 0, done.err
    assert "share: 7 keys" in done.out
    assert "other: 1 key in" in done.out
    listed = invoke_with(share.config, "index", "status", "--format", "json", secrets=SECRETS)
    rows = {row["source"]: row for row in listed.document["sources"]}
    assert rows["share"]["keys"] == 7
    assert rows["other"]["indexed"] is True
    assert rows["share"]["due"] is False
    cleared = invoke_with(share.config, "index", "clear", "-s", "other", secrets=SECRETS)
    assert cleared.out == "other: cleared\n"
    listed = invoke_with(share.config, "index", "status", "--json", secrets=SECRETS)
    rows = {row["source"]: row for row in listed.document["sources"]}
    assert rows["other"]["indexed"] is False
    assert rows["share"]["indexed"] is True
    assert invoke_with(share.config, "index", "clear", secrets=SECRETS).out == "share: cleared\n"


def test_the_index_never_holds_a_password(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    raw = index_file().read_bytes()

    passwords = {
        match
        for path in share.share.rglob("*")
        if path.is_file()
        for match in re.findall(
            PASSWORD_TEXT,
            path.read_bytes().decode("utf-16", "ignore")
            + path.read_bytes().decode("utf-8", "ignore"),
        )
    }
    passwords |= {PASSWORD, OTHER_PASSWORD}
    assert len(passwords) >= 2
    for password in passwords:
        assert password.encode() not in raw
        assert password.replace("-", "").encode() not in raw
        assert password.encode("utf-16-le") not in raw


def test_only_configured_sources_are_indexed(share: Share, tmp_path: Path) -> None:
    outcome = invoke_with(share.config, "index", "refresh", "-s", str(tmp_path), secrets=SECRETS)
    assert outcome.code == 2
    assert "only configured sources are indexed" in outcome.err


def test_a_warm_lookup_skips_sources_without_a_candidate(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    # Searched, `other` would now fail: its folder is gone. The index says the key is in
    # `share`, so `other` is not searched at all.
    shutil.rmtree(share.other)
    outcome = share.find("--key-id", KEY_ID[:8])
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [KEY_ID]
    assert outcome.document["index"] == {
        "used": ["share", "other"],
        "stale": [],
        "unconfirmed": ["share", "other"],
    }
    # Without the index, the missing folder is a failure again.
    assert share.find("--key-id", KEY_ID[:8], "--no-index").code == 0
    assert "other" in share.find("--key-id", KEY_ID[:8], "--no-index").err


def test_a_key_saved_after_the_refresh_is_found_and_learnt(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    late = share.save(share.share, LATE_ID, OTHER_PASSWORD)
    outcome = share.find("--key-id", "063EA4E1-5555")
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [LATE_ID]
    assert outcome.document["index"]["stale"] == ["share"]
    assert "was not in the Key ID index" in outcome.err
    again = share.find("--key-id", "063EA4E1-5555")
    assert again.document["index"]["used"] == ["share", "other"]
    assert again.document["index"]["stale"] == []
    assert "was not in the Key ID index" not in again.err
    # Gone again: not shown, and the index forgets it.
    late.unlink()
    gone = share.find("--key-id", "063EA4E1-5555")
    assert gone.code == 1
    assert gone.keys == []
    with sqlite3.connect(index_file()) as db:
        assert db.execute(
            "SELECT count(*) FROM keys WHERE key_id = ?", (LATE_ID.replace("-", ""),)
        ).fetchone() == (0,)


@pytest.mark.parametrize("where", ["share", "other"])
def test_a_key_saved_after_the_refresh_is_never_hidden_without_a_word(
    share: Share, where: str
) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    # Another key with KEY_ID's 8 digits, in the same source or in another one.
    share.save(share.share if where == "share" else share.other, LATE_ID, OTHER_PASSWORD)
    outcome = share.find("--key-id", KEY_ID[:8])
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [KEY_ID]  # what the index knew, read live
    document = outcome.document
    assert document["ambiguous"] is None  # it cannot know: never false
    assert document["complete"] is False
    assert 0 <= document["index_age_seconds"] < 60
    assert document["index"]["unconfirmed"] == ["share", "other"]
    told = [w for w in document["warnings"] if "escrowed since then is not included" in w]
    assert len(told) == 1
    assert re.search(r"refreshed \d+ s ago", told[0])
    assert "--no-index" in told[0]
    assert "escrowed since then is not included" in outcome.err
    for fmt in ("table", "phone", "key"):
        shown = invoke_with(share.config, "find", "-k", KEY_ID[:8], "-f", fmt, secrets=SECRETS)
        assert re.search(r"From the Key ID index \(\d+ s old\)", shown.out + shown.err), fmt
    # The table says it in full once, above the key, and its summary points back to that.
    table = shown_table(share).out
    assert len(re.findall(r"From the Key ID index", table)) == 1
    found = f"1 recovery key found for Key ID {KEY_ID[:8]}"
    assert table.rstrip().endswith(f"{found}, from the Key ID index: see the note above the key.")
    # Asked live, both keys: ambiguous for sure.
    live = share.find("--key-id", KEY_ID[:8], "--no-index")
    assert sorted(live.key_ids) == sorted([KEY_ID, LATE_ID])
    assert (live.document["ambiguous"], live.document["complete"]) == (True, True)
    assert live.document["index_age_seconds"] is None


def shown_table(share: Share) -> Outcome:
    return invoke_with(share.config, "find", "-k", KEY_ID[:8], "-f", "table", secrets=SECRETS)


def test_a_full_key_id_is_asked_of_every_source(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    share.save(share.other, KEY_ID, PASSWORD)  # a copy, after the refresh, elsewhere
    outcome = share.find("--key-id", KEY_ID)
    assert outcome.code == 0, outcome.err
    assert sorted(key["source"] for key in outcome.keys) == ["other", "share"]
    assert outcome.document["complete"] is True
    assert outcome.document["index"]["used"] == []


def test_rows_deleted_or_altered_in_the_index_never_decide_what_is_shown(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    hex_id = KEY_ID.replace("-", "")
    with sqlite3.connect(index_file()) as db:
        db.execute(
            "UPDATE keys SET computer = 'NOT-THIS-ONE', deleted = 0 WHERE key_id = ?", (hex_id,)
        )
    altered = share.find("--key-id", KEY_ID[:8], "--no-index")
    assert share.find("--key-id", KEY_ID[:8]).keys == altered.keys  # the file's data wins
    with sqlite3.connect(index_file()) as db:
        db.execute("DELETE FROM keys WHERE key_id = ?", (hex_id,))
    deleted = share.find("--key-id", KEY_ID[:8])
    assert deleted.keys == altered.keys
    assert deleted.document["complete"] is True  # no candidate left: searched live


def test_the_8_digits_of_two_keys_are_still_ambiguous(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    share.save(share.share, LATE_ID, OTHER_PASSWORD)
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    outcome = share.find("--key-id", KEY_ID[:8])
    assert outcome.code == 0
    assert sorted(outcome.key_ids) == sorted([KEY_ID, LATE_ID])
    assert outcome.document["ambiguous"] is True


def test_index_max_age_builds_and_refreshes_the_index(tmp_path: Path) -> None:
    share = Share(tmp_path, index_max_age="1h")
    outcome = share.find("--key-id", KEY_ID[:8])
    assert outcome.code == 0, outcome.err
    assert "refreshing the Key ID index of share" in outcome.err
    assert outcome.document["index"]["used"] == ["share"]  # `other` has no index_max_age
    again = share.find("--key-id", KEY_ID[:8])
    assert "refreshing" not in again.err
    due = invoke_with(share.config, "index", "refresh", "--due", secrets=SECRETS)
    assert due.code == 0
    assert "No source is due" in due.err


def _bad_dates(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE keys SET created = 'the 5th of never'")
        db.execute("UPDATE sources SET refreshed = 'yesterday'")


def _dropped_tables(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE keys")


def _corrupt_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:] = b"\x00garbage" * ((len(data) - 100) // 8) + b"\x00" * ((len(data) - 100) % 8)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_bad_dates, _dropped_tables, _corrupt_pages])
def test_a_damaged_index_never_stops_a_lookup(share: Share, damage: Callable[[Path], None]) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    damage(index_file())
    outcome = share.find("--key-id", KEY_ID[:8])
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [KEY_ID]
    assert "is damaged" in outcome.err
    assert "index clear" in outcome.err  # it is an index: clearing it is the cure
    assert outcome.document["index"]["used"] == []
    status = invoke_with(share.config, "index", "status", secrets=SECRETS)
    assert status.code == 4, status.err
    assert status.err.count("\n") == 1  # one line
    assert str(index_file()) in status.err
    assert "index clear" in status.err
    assert invoke_with(share.config, "index", "clear", "-s", "share", secrets=SECRETS).code == 4
    # A refresh rewrites every row: it mends bad values, and refuses a file it cannot use.
    refreshed = invoke_with(share.config, "index", "refresh", secrets=SECRETS)
    if damage is _bad_dates:
        assert refreshed.code == 0, refreshed.err
        assert invoke_with(share.config, "index", "status", secrets=SECRETS).code == 0
    else:
        assert refreshed.code == 4, refreshed.err
        assert refreshed.err.count("\n") == 1
        assert "index clear" in refreshed.err
        cleared = invoke_with(share.config, "index", "clear", secrets=SECRETS)
        assert cleared.code == 0
        assert "whole index file" in cleared.out
        assert not index_file_exists()
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    assert share.find("--key-id", KEY_ID[:8]).document["index"]["used"] == ["share", "other"]


def _text_file(root: Path) -> Path:
    path = root / "notes.txt"
    path.write_text("meeting notes: nothing to do with an index\n", encoding="utf-8")
    return path


def _trail(root: Path) -> Path:
    return Path(os.environ["BITKEY_DIR_TRAIL"])  # a lookup just wrote its line there


def _foreign_database(root: Path) -> Path:
    path = root / "other-program.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
        db.execute("PRAGMA user_version = 1")
    return path


def _fifo(root: Path) -> Path:
    path = root / "pipe"
    os.mkfifo(path)
    return path


def _dangling_link(root: Path) -> Path:
    path = root / "link.sqlite3"
    path.symlink_to(root / "nowhere" / "index.sqlite3")
    return path


def _link_to_an_index(root: Path) -> Path:
    real = root / "real" / "key-index.sqlite3"
    real.parent.mkdir()
    shutil.copyfile(index_file(), real)
    path = root / "link.sqlite3"
    path.symlink_to(real)
    return path


def _null_device(root: Path) -> Path:
    """A character device as /dev/null is one (1, 3), made here: as root, `index clear`
    once removed whatever device the path named, and no test risks the real one."""
    if not hasattr(os, "getuid") or os.getuid() != 0:
        pytest.skip("making a device node needs root")
    path = root / "null"
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


NOT_AN_INDEX = [
    _text_file,
    _trail,
    _foreign_database,
    _fifo,
    _dangling_link,
    _link_to_an_index,
    _null_device,
]


def _snapshot(path: Path) -> tuple[int, int, bytes | str | None]:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return info.st_mode, info.st_ino, os.readlink(path)
    content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
    return info.st_mode, info.st_ino, content


@pytest.mark.parametrize("make", NOT_AN_INDEX)
def test_a_path_that_holds_no_index_is_never_cleared_nor_written(
    share: Share, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], Path]
) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    assert share.find("--key-id", KEY_ID[:8]).code == 0  # a trail line, for _trail
    path = make(tmp_path)
    before = _snapshot(path)
    monkeypatch.setenv("BITKEY_DIR_INDEX", str(path))
    for command in (("index", "clear"), ("index", "status"), ("index", "refresh")):
        refused = invoke_with(share.config, *command, secrets=SECRETS)
        assert refused.code == 2, (command, refused.err)
        assert refused.err.count("\n") == 1, refused.err  # one line
        assert str(path) in refused.err
        assert "index clear" not in refused.err
    # A lookup is never stopped by it, and is not told to clear what is no index.
    outcome = share.find("--key-id", KEY_ID[:8], "--reason", "INC-1")
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [KEY_ID]
    assert "not a bitkey-dir Key ID index" in outcome.err
    assert "index clear" not in outcome.err
    if make is not _trail:
        assert _snapshot(path) == before
    else:
        assert trail_entries()[-1]["reason"] == "INC-1"  # still the trail, appended to


def test_an_index_of_the_previous_version_is_used_and_cleared(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    with sqlite3.connect(index_file()) as db:  # as the first format was written
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 1")
        db.execute("DROP TABLE passes")
        db.execute("DROP TABLE covered")
    outcome = share.find("--key-id", KEY_ID[:8])
    assert outcome.document["index"]["used"] == ["share", "other"]
    with sqlite3.connect(index_file()) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] != 0  # marked since
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2  # and made the new format
        assert db.execute("SELECT DISTINCT pass FROM passes").fetchall() == [("full",)]
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 1")
    assert invoke_with(share.config, "index", "clear", secrets=SECRETS).out == (
        "other: cleared\nshare: cleared\n"
    )


def test_a_source_that_fails_keeps_its_previous_index(share: Share) -> None:
    assert invoke_with(share.config, "index", "refresh", secrets=SECRETS).code == 0
    shutil.rmtree(share.other)
    outcome = invoke_with(share.config, "index", "refresh", "--format", "json", secrets=SECRETS)
    assert outcome.code == 4
    assert [done["source"] for done in outcome.document["refreshed"]] == ["share"]
    listed = invoke_with(share.config, "index", "status", "--json", secrets=SECRETS)
    rows = {row["source"]: row for row in listed.document["sources"]}
    assert rows["other"]["keys"] == 1


def test_an_automatic_refresh_that_fails_is_said_and_the_lookup_goes_on(tmp_path: Path) -> None:
    share = Share(tmp_path, index_max_age="1h")
    shutil.rmtree(share.share)
    outcome = share.find("--key-id", OTHER_KEY_ID[:8])
    assert outcome.key_ids == [OTHER_KEY_ID]
    assert "share: the Key ID index was not refreshed" in outcome.err
    assert outcome.code == 0
