"""`bitkey-dir reads` on the command line without a directory: what it refuses, in one line.
(Reads themselves, matched with the trail, are tested against the Graph emulator in
tests/integration/test_after_reading_entra.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.command_line import invoke, invoke_with
from tests.conftest import EXAMPLES

KEYS = str(EXAMPLES / "keys")


def one_error(err: str) -> str:
    (line,) = err.splitlines()
    assert line.startswith("bitkey-dir: error: ")
    return line


def test_only_key_files_configured_is_nothing_to_read(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"[defaults]\nsources = ['share', 'usb']\n[sources.share]\ntype = 'file'\npath = '{KEYS}'\n"
        f"[sources.usb]\ntype = 'file'\npath = '{KEYS}'\n"
    )
    done = invoke_with(config, "reads")
    assert (done.code, done.out) == (2, "")
    assert one_error(done.err) == (
        "bitkey-dir: error: nothing to read: none of the sources (share, usb) keeps an audit "
        "log of key reads (Entra ID does; an AD domain's are in each DC's security log)"
    )


@pytest.mark.parametrize("since", ["0001-01-01", "1999-12-31T23:59:59+01:00"])
def test_since_out_of_range_is_one_line_exit_2(since: str) -> None:
    done = invoke("reads", "--since", since, "-s", KEYS)
    assert (done.code, done.out) == (2, "")
    assert f"--since '{since}' is before 2000-01-01" in one_error(done.err)
