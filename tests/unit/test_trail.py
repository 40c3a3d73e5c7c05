"""The access trail under concurrent runs: whole lines, nothing lost, private file."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from bitkey_dir import trail
from bitkey_dir.model import KeyId, RecoveryKey, RecoveryPassword

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
