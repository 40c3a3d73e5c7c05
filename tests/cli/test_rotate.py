"""`bitkey-dir rotate` and `find --rotate` where no directory can rotate: key files.

The steps printed must replace the disclosed password without ever leaving the volume
without an escrowed one (add, keep, then delete), name the disclosed key by its ID, find the
volume by that ID (a key file does not say which volume: never C: by guess), and the access
trail must say that a rotation is owed. An 8-digit Key ID that matches keys of two devices
rotates nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.command_line import invoke, trail_entries
from tests.unit.helpers import (
    EXAMPLE_KEYS,
    KEY_ID,
    PASSWORD,
    SAME_PREFIX_KEY_ID,
    SAME_PREFIX_PASSWORD,
    windows_key_file,
)


def test_rotate_a_key_file_by_hand() -> None:
    outcome = invoke(
        "rotate", "-k", KEY_ID[:8], "-s", str(EXAMPLE_KEYS), "-r", "INC-4711", secrets=[PASSWORD]
    )
    assert outcome.code == 1  # nothing was rotated: it must be done on the device
    assert PASSWORD not in outcome.out
    lines = outcome.out.splitlines()
    assert lines[0].startswith("PC-0042") or "by hand" in lines[0]
    steps = [line.strip() for line in lines[2:]]
    assert steps[0].startswith("$v = @(Get-BitLockerVolume | Where-Object")
    assert f"KeyProtectorId -contains '{{{KEY_ID}}}'" in steps[0]
    assert steps[1].startswith("manage-bde -protectors -add $v -RecoveryPassword")
    assert steps[-1] == f"manage-bde -protectors -delete $v -id '{{{KEY_ID}}}'"
    assert "C:" not in outcome.out
    (entry,) = trail_entries()
    assert entry["action"] == "rotate"
    assert entry["outcome"] == "by hand"
    assert entry["key_ids"] == [KEY_ID]
    assert entry["reason"] == "INC-4711"


def test_rotate_json_and_bad_input() -> None:
    outcome = invoke("rotate", "-k", KEY_ID, "-s", str(EXAMPLE_KEYS), "-f", "json")
    document = json.loads(outcome.out)
    (rotation,) = document["rotations"]
    assert rotation["outcome"] == "by hand"
    assert rotation["key_ids"] == [KEY_ID]
    assert rotation["steps"][-1].endswith(f"'{{{KEY_ID}}}'")
    assert rotation["progress"] is None
    assert invoke("rotate", "-s", str(EXAMPLE_KEYS)).code == 2
    assert invoke("rotate", "-k", KEY_ID, "-c", "PC-1", "-s", str(EXAMPLE_KEYS)).code == 2
    nothing = invoke("rotate", "-k", "0BADC0DE", "-s", str(EXAMPLE_KEYS))
    assert nothing.code == 1
    assert "No key found" in nothing.err


def test_find_then_rotate_keeps_stdout_for_the_key() -> None:
    outcome = invoke(
        "find",
        "-k",
        KEY_ID[:8],
        "-s",
        str(EXAMPLE_KEYS),
        "-f",
        "key",
        "--rotate",
        secrets=[PASSWORD],
    )
    assert outcome.code == 0
    assert outcome.out == PASSWORD + "\n"
    assert f"manage-bde -protectors -delete $v -id '{{{KEY_ID}}}'" in outcome.err
    actions = [entry.get("action") for entry in trail_entries()]
    assert actions == [None, "rotate"]  # the reveal, then the rotation owed


def test_the_trail_listing_shows_rotations() -> None:
    invoke("rotate", "-k", KEY_ID, "-s", str(EXAMPLE_KEYS), "-r", "INC-1")
    listed = invoke("trail")
    assert (
        "rotation (by hand) of 1 key(s) of PC-0042" in listed.out
        or "rotation (by hand) of 1 key(s)" in listed.out
    )


def test_disclosed_keys_of_a_source_that_cannot_tell_and_a_damaged_trail_line() -> None:
    shown = invoke("find", "-k", KEY_ID, "-s", str(EXAMPLE_KEYS), "-f", "key", secrets=[PASSWORD])
    assert shown.code == 0
    trail = Path(os.environ["BITKEY_DIR_TRAIL"])
    with trail.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    outcome = invoke("audit", "--disclosed", "-f", "json")
    assert outcome.code == 0
    (item,) = outcome.document["disclosed"]
    assert (item["key_id"], item["status"], item["reveals"]) == (KEY_ID, "unknown", 1)
    assert "cannot say which keys a volume has" in item["detail"]
    assert "1 unreadable line(s) skipped" in outcome.err
    table = invoke("audit", "--disclosed", "-f", "csv")
    assert table.out.splitlines()[0].startswith("source,key_id,computer,revealed")


def test_an_8_digit_key_id_of_two_devices_rotates_nothing(tmp_path: Path) -> None:
    for key_id, password in ((KEY_ID, PASSWORD), (SAME_PREFIX_KEY_ID, SAME_PREFIX_PASSWORD)):
        folder = tmp_path / f"PC-{key_id[9:13]}"
        folder.mkdir()
        (folder / f"BitLocker Recovery Key {key_id}.TXT").write_text(
            windows_key_file(key_id, password), encoding="utf-8"
        )
    secrets = [PASSWORD, SAME_PREFIX_PASSWORD]
    outcome = invoke("rotate", "-k", KEY_ID[:8], "-s", tmp_path, "-r", "INC-9", secrets=secrets)
    assert outcome.code == 2, outcome.err
    assert outcome.out == ""
    (line,) = outcome.err.splitlines()
    assert "matches keys of 2 devices" in line
    assert KEY_ID in line
    assert SAME_PREFIX_KEY_ID in line
    assert "full Key ID, or --computer" in line
    assert trail_entries() == []  # nothing rotated, nothing recorded
    # The full Key ID names one device: only its key is rotated.
    one = invoke("rotate", "-k", KEY_ID, "-s", tmp_path, "-f", "json", secrets=secrets)
    (rotation,) = one.document["rotations"]
    assert rotation["key_ids"] == [KEY_ID]
