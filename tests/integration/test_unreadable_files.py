"""A key file or folder that cannot be read is a source failure naming it, not "no key found",
and an export never silently drops its keys. Real unreadable files: run as root, the command
runs without the capability that lets root read anything (setpriv)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.command_line import THIS_CHECKOUT, run_process
from tests.unit.helpers import (
    KEY_ID,
    OTHER_KEY_ID,
    OTHER_PASSWORD,
    PASSWORD,
    utf16_le_bom,
    windows_key_file,
)

pytestmark = pytest.mark.integration
DROP = "-dac_override,-dac_read_search"
SECRETS = [PASSWORD, OTHER_PASSWORD]
# Root reads any file: without these capabilities, only what the file's mode lets it.
SETPRIV = ("setpriv", f"--bounding-set={DROP}", f"--inh-caps={DROP}", "--")
UNPRIVILEGED = (*SETPRIV, *THIS_CHECKOUT) if os.geteuid() == 0 else THIS_CHECKOUT


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Path]:
    """PC-1's key file cannot be read; PC-2's folder cannot be listed; PC-3's key can be."""
    folder = tmp_path / "share"
    for name, key_id, password in (
        ("PC-1", KEY_ID, PASSWORD),
        ("PC-2", "0AAAAAAA-220C-4293-BA01-4754620A96E7", PASSWORD),
        ("PC-3", OTHER_KEY_ID, OTHER_PASSWORD),
    ):
        (folder / name).mkdir(parents=True)
        (folder / name / "key.TXT").write_bytes(utf16_le_bom(windows_key_file(key_id, password)))
    (folder / "PC-1" / "key.TXT").chmod(0)
    (folder / "PC-2").chmod(0)
    try:
        yield folder
    finally:
        (folder / "PC-1" / "key.TXT").chmod(0o600)
        (folder / "PC-2").chmod(0o700)


def test_a_key_that_may_be_in_an_unreadable_file_is_not_reported_missing(share: Path) -> None:
    done = run_process(
        "find", "-k", KEY_ID[:8], "-s", share, "-f", "json", command=UNPRIVILEGED, secrets=SECRETS
    )
    assert done.code == 4, done.err
    assert "cannot read 2 files or folders" in done.err
    assert "Permission denied" in done.err


def test_keys_found_elsewhere_are_shown_with_a_warning_naming_the_unreadable(share: Path) -> None:
    done = run_process(
        "find",
        "-k",
        OTHER_KEY_ID[:8],
        "-s",
        share,
        "-f",
        "key",
        command=UNPRIVILEGED,
        secrets=SECRETS,
    )
    assert (done.code, done.out) == (0, OTHER_PASSWORD + "\n"), done.err
    assert f"{share / 'PC-1' / 'key.TXT'}: skipped, cannot read it (Permission denied)" in (
        done.err
    )
    assert f"{share / 'PC-2'}: skipped, cannot read it" in done.err


def test_an_export_never_drops_the_keys_it_cannot_read(share: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "keys.json"
    out.parent.mkdir()
    done = run_process("export", "-s", share, "-o", out, command=UNPRIVILEGED, secrets=SECRETS)
    assert done.code == 4, done.err
    assert "cannot read 2 files or folders" in done.err
    assert list(out.parent.iterdir()) == []


def test_doctor_names_each_unreadable_file_and_folder_with_the_chmod(share: Path) -> None:
    import json

    done = run_process("doctor", share, "-f", "json", command=UNPRIVILEGED, secrets=SECRETS)
    assert done.code == 3, done.err
    (source,) = json.loads(done.out)["sources"]
    found = {(c["area"], c["subject"]): c for c in source["checks"]}
    assert found["files", str(share)]["detail"] == "1 key file (1 key), 2 skipped"
    unreadable = found["skipped", str(share / "PC-1" / "key.TXT")]
    assert unreadable["status"] == "missing-right"
    assert unreadable["detail"] == "cannot read it (Permission denied)"
    assert unreadable["fix"] == f"chmod u+r {share / 'PC-1' / 'key.TXT'}"
    unlisted = found["skipped", str(share / "PC-2")]
    assert unlisted["status"] == "missing-right"
    assert unlisted["fix"] == f"chmod u+rx {share / 'PC-2'}"
    for password in (PASSWORD, OTHER_PASSWORD):
        assert password not in done.out + done.err
