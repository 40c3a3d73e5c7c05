"""The access trail on a real full disk: a small tmpfs, filled up (root only)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.command_line import invoke, invoke_with, trail_entries
from tests.conftest import EXAMPLES
from tests.unit.helpers import PASSWORD

pytestmark = pytest.mark.integration
KEYS = str(EXAMPLES / "keys")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs. Mounting needs root (CAP_SYS_ADMIN); where the machine does not allow
    it, the injected short writes of tests/unit/test_trail.py cover the same code."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["/bin/mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr!r}")
    try:
        yield mount
    finally:
        subprocess.run(["/bin/umount", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk but ``leave`` bytes (to within a block)."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"x" * max(free - leave, 0))
    return filler


def end_near_a_page(trail: Path, page: int = 4096, slack: int = 60) -> None:
    """Append one whole entry so that the file ends ``slack`` bytes before a page boundary:
    tmpfs gives space a page at a time, so only a line crossing it can fail."""
    entry = json.loads(trail.read_text().splitlines()[0])
    size = trail.stat().st_size
    target = (size // page + 2) * page - slack
    entry["reason"] = ""
    bare = len(json.dumps(entry, ensure_ascii=False)) + 1
    entry["reason"] = "p" * (target - size - bare)
    with trail.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    assert trail.stat().st_size == target


def test_a_full_disk_never_leaves_a_torn_line(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = small_disk / "trail.jsonl"
    monkeypatch.setenv("BITKEY_DIR_TRAIL", str(trail))
    first = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-r", "T-1", secrets=[PASSWORD])
    assert first.code == 0, first.err
    end_near_a_page(trail)  # so that the next line needs a new page, and the disk has none
    before = trail.read_bytes()
    filler = fill(small_disk, leave=0)

    strict = tmp_path / "strict.toml"
    strict.write_text("[defaults]\nrequire_reason = true\n")
    refused = invoke_with(strict, "find", "-k", "063EA4E1", "-s", KEYS, "-r", "T-2")
    assert (refused.code, refused.out) == (4, "")  # not revealed, since it was not recorded
    assert "not revealing keys" in refused.err
    lenient = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-r", "T-3", "-f", "key")
    assert lenient.code == 0  # without require_reason the trail is a warning
    assert "warning: cannot write the access trail" in lenient.err
    assert trail.read_bytes() == before  # neither left part of a line

    filler.unlink()
    again = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-r", "T-4", "-f", "key")
    assert again.code == 0
    reasons = [entry["reason"] for entry in trail_entries()]
    assert [reason[:1] for reason in reasons] == ["T", "p", "T"]
    assert reasons[-1] == "T-4"
