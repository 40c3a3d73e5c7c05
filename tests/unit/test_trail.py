"""The access trail under concurrent runs: whole lines, nothing lost, private file."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from bitkey_dir.core.errors import SourceError
from bitkey_dir.core.model import KeyId, RecoveryKey, RecoveryPassword
from bitkey_dir.store import trail

PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"


def _key(n: int, readable: bool = True) -> RecoveryKey:
    return RecoveryKey(
        "files",
        KeyId.parse(f"{n:08X}-220C-4293-BA01-4754620A96E7"),
        RecoveryPassword.parse(PASSWORD) if readable else None,
        computer=f"PC-{n}",
    )


def _writer(path: str, worker: int) -> None:
    for run in range(100):
        keys = [_key(worker * 1000 + run * 3 + i) for i in range(3)]
        trail.append(trail.entries_for(keys, f"T-{worker}", ["find"]), Path(path))


def test_concurrent_runs_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trail.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(path), w)) for w in range(6)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 6 * 100 * 3
    entries = [json.loads(line) for line in lines]
    assert len({e["key_id"] for e in entries}) == len(entries)
    assert path.stat().st_mode & 0o777 == 0o600
    assert PASSWORD not in path.read_text()
    assert "531058" not in path.read_text()


def test_unreadable_keys_are_not_recorded_as_revealed(tmp_path: Path) -> None:
    entries = trail.entries_for([_key(1), _key(2, readable=False)], None, ["find"])
    assert [e["key_id"] for e in entries] == ["00000001-220C-4293-BA01-4754620A96E7"]


def test_recent_skips_damaged_lines(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    trail.append(trail.entries_for([_key(n) for n in range(30)], "r", ["find"]), path)
    with open(path, "a") as handle:
        handle.write('{"half": \n[1]\n')
    entries, broken = trail.recent(5, path)
    assert [e["computer"] for e in entries] == [f"PC-{n}" for n in range(25, 30)]
    assert broken == 2
    assert trail.recent(5, tmp_path / "none.jsonl") == ([], 0)


# -- a trail that is not a file of its own, a full disk, torn lines --------------------------------


def test_a_symbolic_link_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "someone-elses.txt"
    other.write_text("theirs\n")
    link = tmp_path / "trail.jsonl"
    link.symlink_to(other)
    with pytest.raises(SourceError, match="is a symbolic link"):
        trail.append(trail.entries_for([_key(1)], "r", ["find"]), link)
    assert other.read_text() == "theirs\n"


@pytest.mark.timeout(10)
def test_a_device_or_a_pipe_is_refused_without_hanging(tmp_path: Path) -> None:
    entries = trail.entries_for([_key(1)], "r", ["find"])
    with pytest.raises(SourceError, match="not a regular file"):
        trail.append(entries, Path("/dev/null"))
    fifo = tmp_path / "trail.fifo"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match="pipe"):
        trail.append(entries, fifo)
    with pytest.raises(SourceError, match="not a regular file"):
        trail.recent(5, Path("/dev/zero"))


def test_a_short_write_leaves_no_part_of_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trail.jsonl"
    trail.append(trail.entries_for([_key(1)], "first", ["find"]), path)
    before = path.read_bytes()
    real_write = os.write

    def half(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2]) if len(data) > 1 else 0

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(SourceError, match="full or failing"):
        trail.append(trail.entries_for([_key(2), _key(3)], "refused", ["find"]), path)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the refused reveal left nothing
    trail.append(trail.entries_for([_key(4)], "later", ["find"]), path)
    assert [json.loads(line)["reason"] for line in path.read_text().splitlines()] == [
        "first",
        "later",
    ]


def test_a_full_disk_takes_the_partial_write_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trail.jsonl"
    trail.append(trail.entries_for([_key(1)], "first", ["find"]), path)
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def fill_then_fail(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", fill_then_fail)
    with pytest.raises(SourceError, match="No space left on device"):
        trail.append(trail.entries_for([_key(2)], "refused", ["find"]), path)
    monkeypatch.undo()
    assert path.read_bytes() == before


def test_a_line_torn_by_an_older_version_does_not_swallow_the_next(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    trail.append(trail.entries_for([_key(1)], "first", ["find"]), path)
    with open(path, "a") as handle:
        handle.write('{"time": "2024-01-01T00:00:00+00:00", "key_id": "ABCD')  # torn
    trail.append(trail.entries_for([_key(2)], "second", ["find"]), path)
    entries, broken = trail.recent(10, path)
    assert [entry["reason"] for entry in entries] == ["first", "second"]
    assert broken == 1


def test_the_state_folder_is_private_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv("BITKEY_DIR_TRAIL")
    old = os.umask(0)
    try:
        trail.append(trail.entries_for([_key(1)], "r", ["find"]))
    finally:
        os.umask(old)
    assert stat.S_IMODE((state / "bitkey-dir").stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "bitkey-dir" / "trail.jsonl").stat().st_mode) == 0o600
    # A state folder left open by an older version is closed again.
    (state / "bitkey-dir").chmod(0o777)
    trail.append(trail.entries_for([_key(2)], "r", ["find"]))
    assert stat.S_IMODE((state / "bitkey-dir").stat().st_mode) == 0o700


def test_a_trail_in_a_folder_others_may_write_to_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(SourceError, match="other users may write to the folder"):
        trail.append(trail.entries_for([_key(1)], "r", ["find"]), shared / "trail.jsonl")
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o770)  # a team's shared trail: its group may write
    trail.append(trail.entries_for([_key(1)], "r", ["find"]), team / "trail.jsonl")
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: others may not replace what is ours
    trail.append(trail.entries_for([_key(1)], "r", ["find"]), sticky / "trail.jsonl")


def test_an_append_only_trail_its_writers_may_not_read_is_still_written(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    trail.append(trail.entries_for([_key(1)], "first", ["find"]), path)
    real_open = os.open

    def no_reading(file: object, flags: int, *args: object) -> int:
        if file == path and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied")
        return real_open(file, flags, *args)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "open", no_reading)
        trail.append(trail.entries_for([_key(2)], "second", ["find"]), path)
    reasons = [json.loads(line)["reason"] for line in path.read_text().splitlines()]
    assert reasons == ["first", "second"]


@pytest.mark.skipif(getattr(os, "geteuid", lambda: 1)() != 0, reason="chown needs root")
def test_a_trail_another_user_put_in_a_folder_everybody_writes_to_is_refused(
    tmp_path: Path,
) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    planted = sticky / "trail.jsonl"
    planted.write_bytes(b"")
    os.chown(planted, 4343, 4343)
    planted.chmod(0o666)
    with pytest.raises(SourceError, match=r"belongs to another user \(uid 4343\)"):
        trail.append(trail.entries_for([_key(1)], "r", ["find"]), planted)
    assert planted.read_bytes() == b""
    # A team's folder (only its group may write) is a deliberate share: a teammate's trail.
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o770)
    shared = team / "trail.jsonl"
    shared.write_bytes(b"")
    os.chown(shared, 4343, 4343)
    trail.append(trail.entries_for([_key(1)], "r", ["find"]), shared)
    assert shared.read_bytes()
