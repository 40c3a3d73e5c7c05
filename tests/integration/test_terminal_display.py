"""What a real terminal receives when directory or file data is hostile: the table, the phone
format, warnings and the trail, on a pseudo-terminal (pexpect), hold no control sequence and
no bidi override that came from data; they show them escaped."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from tests.conftest import ROOT
from tests.unit.helpers import KEY_ID, PASSWORD, utf16_le_bom, windows_key_file

pytestmark = pytest.mark.integration

OSC_TITLE = "\x1b]0;owned\x07"
CLEAR_AND_PAINT = "\x1b[2J\x1b[H"
RAW = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
OUR_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # the table's own emphasis (SGR) on a terminal


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A config whose file source reads key files named by folder, as a share lays them
    out, where the folder names carry escape sequences."""
    folder = tmp_path / "keys"
    named = folder / f"PC{OSC_TITLE}{CLEAR_AND_PAINT}-42\u202eexe"
    named.mkdir(parents=True)
    (named / "BitLocker Recovery Key.TXT").write_bytes(
        utf16_le_bom(windows_key_file(KEY_ID, PASSWORD))
    )
    # A damaged file whose path appears in a warning.
    broken = folder / f"LAB{CLEAR_AND_PAINT}"
    broken.mkdir()
    (broken / "k.TXT").write_text(f"BitLocker\nIdentifier: {KEY_ID}\nRecovery Key: 12345\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.share]\ntype = "file"\npath = "{folder}"\ncomputer_from = "folder"\n'
    )
    return config


def spawn(*args: str, colour: bool = False) -> pexpect.spawn:
    """`bitkey-dir ARGS` on a pseudo-terminal."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if colour:
        env.pop("NO_COLOR", None)
    else:
        env["NO_COLOR"] = "1"
    return pexpect.spawn(
        sys.executable,
        ["-m", "bitkey_dir", *args],
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        timeout=60,
        dimensions=(50, 400),
    )


def on_terminal(*args: str, colour: bool) -> str:
    child = spawn(*args, colour=colour)
    output = child.read()
    child.close()
    assert child.exitstatus == 0, output
    return str(output)


@pytest.mark.parametrize("fmt", ["table", "phone"])
@pytest.mark.parametrize("colour", [False, True])
def test_a_terminal_never_receives_a_control_sequence_from_data(
    hostile: Path, fmt: str, colour: bool
) -> None:
    output = on_terminal(
        "--config", str(hostile), "find", "-k", KEY_ID[:8], "-s", "share", "-f", fmt, colour=colour
    )
    ours = OUR_COLOURS.sub("", output) if colour else output
    assert "\x1b" not in ours, repr(output)
    assert RAW.search(ours) is None, repr(output)
    assert PASSWORD.split("-")[-1] in output  # the real key is shown ...
    assert "\\x1b]0;owned\\x07" in output  # ... and the name's escapes are visible
    assert "\\u202eexe" in output
    if fmt == "table":
        assert "warning:" in output  # the damaged file's path, escaped too
        assert "LAB\\x1b[2J\\x1b[H" in output


def test_the_trail_listing_shows_the_same_names_escaped(hostile: Path) -> None:
    on_terminal("--config", str(hostile), "find", "-k", KEY_ID[:8], "-s", "share", colour=False)
    output = on_terminal("trail", colour=False)
    assert "\x1b" not in output
    assert "\\x1b]0;owned\\x07" in output


def test_export_to_a_terminal_is_refused_unless_encrypted() -> None:
    child = spawn("export", "-s", str(ROOT / "examples" / "keys"), "-o", "-")
    output = child.read()
    child.close()
    assert child.exitstatus == 2, output
    assert "not printing clear-text recovery passwords to a terminal" in output
    assert PASSWORD not in output


def test_verify_does_not_echo_the_password_typed() -> None:
    child = spawn("verify")
    child.expect("Recovery password")
    assert child.waitnoecho(timeout=10)
    child.sendline(PASSWORD)
    output = child.read()
    child.close()
    assert child.exitstatus == 0
    assert "valid: all 8 groups pass their checksum" in output
    assert PASSWORD not in output
    assert PASSWORD.split("-")[2] not in output


def test_index_refresh_shows_its_progress_on_a_terminal_and_clears_it(hostile: Path) -> None:
    output = on_terminal("--config", str(hostile), "index", "refresh", colour=False)
    assert "\rkeys listed: 1" in output
    assert "\r\x1b[K" in output  # the progress line is cleared before the result
    assert re.search(r"share: 1 key in [0-9.]+ s", output)
    # The same escaping as everywhere: a name from data cannot reach the terminal raw.
    status = on_terminal("--config", str(hostile), "index", "status", colour=False)
    assert "share  1 key, refreshed" in status
