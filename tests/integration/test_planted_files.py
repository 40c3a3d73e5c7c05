"""A trail or a Key ID index that another user created first, in a folder every user may write
to, is refused, never written to: the run is a real unprivileged user (setpriv --reuid), the
file a real one of another uid, as on a shared machine's /tmp."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.command_line import THIS_CHECKOUT, Outcome, run_process
from tests.conftest import ROOT
from tests.unit.helpers import KEY_ID, PASSWORD, utf16_le_bom, windows_key_file

pytestmark = pytest.mark.integration
AGENT, OTHER = 4242, 4343  # the agent running bitkey-dir, and the user who got there first
AS_AGENT = ("setpriv", f"--reuid={AGENT}", f"--regid={AGENT}", "--clear-groups", "--")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder like /tmp (mode 1777), and key files the agent may read beside it."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as two other users")
    top = Path(tempfile.mkdtemp(prefix="bitkey-dir-shared-", dir="/tmp"))
    try:
        top.chmod(0o755)
        (top / "tmp").mkdir(mode=0o1777)
        (top / "tmp").chmod(0o1777)
        keys = top / "keys"
        keys.mkdir()
        (keys / "key.TXT").write_bytes(utf16_le_bom(windows_key_file(KEY_ID, PASSWORD)))
        (keys / "key.TXT").chmod(0o644)
        (top / "home").mkdir()
        os.chown(top / "home", AGENT, AGENT)
        yield top
    finally:
        shutil.rmtree(top)


def planted(path: Path, content: bytes = b"") -> Path:
    """``path`` created by the other user, readable and writable by everybody."""
    path.write_bytes(content)
    os.chown(path, OTHER, OTHER)
    path.chmod(0o666)
    return path


def as_agent(top: Path, *args: str, config: str = "") -> Outcome:
    (top / "config.toml").write_text(config)
    (top / "config.toml").chmod(0o644)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "HOME": str(top / "home"),
        "XDG_STATE_HOME": str(top / "home" / "state"),
        "BITKEY_DIR_CONFIG": str(top / "config.toml"),
        "BITKEY_DIR_TRAIL": str(top / "tmp" / "trail.jsonl"),
        "BITKEY_DIR_INDEX": str(top / "tmp" / "key-index.sqlite3"),
    }
    return run_process(*args, command=(*AS_AGENT, *THIS_CHECKOUT), env=env, secrets=[PASSWORD])


def test_a_planted_trail_is_not_written_and_blocks_a_reveal_that_needs_it(shared: Path) -> None:
    trail = planted(shared / "tmp" / "trail.jsonl")
    required = "[defaults]\nrequire_reason = true\n"
    done = as_agent(
        shared, "find", "-k", KEY_ID[:8], "-s", str(shared / "keys"), "-r", "INC-1", config=required
    )
    assert (done.code, done.out) == (4, ""), done.err
    assert f"the access trail {trail} belongs to another user (uid {OTHER})" in done.err
    assert trail.read_bytes() == b""
    # Without require_reason the key is shown, the trail still not written, and it is said.
    shown = as_agent(shared, "find", "-k", KEY_ID[:8], "-s", str(shared / "keys"), "-f", "key")
    assert (shown.code, shown.out) == (0, PASSWORD + "\n"), shown.err
    assert "belongs to another user" in shown.err
    assert trail.read_bytes() == b""
    assert trail.stat().st_uid == OTHER


def test_the_agents_own_trail_in_the_same_folder_is_written(shared: Path) -> None:
    done = as_agent(shared, "find", "-k", KEY_ID[:8], "-s", str(shared / "keys"), "-f", "key")
    assert done.code == 0, done.err
    trail = shared / "tmp" / "trail.jsonl"
    assert trail.stat().st_uid == AGENT
    assert KEY_ID in trail.read_text()


@pytest.mark.parametrize("part", ["key-index.sqlite3", "key-index.sqlite3-journal"])
def test_a_planted_index_or_journal_is_not_written(shared: Path, part: str) -> None:
    keys = shared / "keys"
    config = f'[defaults]\nsources = ["keys"]\n[sources.keys]\ntype = "file"\npath = "{keys}"\n'
    file = planted(shared / "tmp" / part)
    done = as_agent(shared, "index", "refresh", config=config)
    assert done.code == 4, done.err
    assert f"the Key ID index {file} belongs to another user (uid {OTHER})" in done.err
    assert file.read_bytes() == b""
