"""A reason never keeps a recovery password, and the trail listing never shows one."""

from __future__ import annotations

import json
from pathlib import Path

from tests.command_line import invoke
from tests.conftest import EXAMPLES
from tests.unit.helpers import PASSWORD

GROUPS = PASSWORD.split("-")


def test_find_refuses_before_anything_is_revealed_or_recorded(trail_file: Path) -> None:
    keys = str(EXAMPLES / "keys")
    done = invoke("find", "-k", "063EA4E1", "-s", keys, "-r", f"read {PASSWORD}")
    assert (done.code, done.out) == (2, "")
    assert not trail_file.exists()


def test_the_trail_listing_masks_a_password_an_older_version_recorded(trail_file: Path) -> None:
    line = {
        "time": "2024-01-01T00:00:00+00:00",
        "os_user": "agent",
        "source": "corp",
        "key_id": "063EA4E1-220C-4293-BA01-4754620A96E7",
        "computer": "PC-0042",
        "reason": f"user read {PASSWORD}",
        "command": [],
    }
    trail_file.write_text(json.dumps(line) + "\n")
    done = invoke("trail")
    assert done.code == 0
    assert "user read ######-######-######-######-######-######-######-######" in done.out
    assert GROUPS[3] not in done.out
