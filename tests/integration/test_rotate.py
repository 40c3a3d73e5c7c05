"""`bitkey-dir rotate` against real directories: Active Directory (by hand, with the steps)
and Entra ID through Intune (the emulator's managed devices and rotate action)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.conftest import Directory
from tests.integration.test_ad import ADMIN, SECRETS, Lab, run

pytestmark = pytest.mark.integration


def trail_lines() -> list[dict[str, object]]:
    path = Path(os.environ["BITKEY_DIR_TRAIL"])
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_ad_computer_is_rotated_by_hand_with_adbackup(lab: Lab, samba_dc: Directory) -> None:
    config = lab.config(user=ADMIN)
    outcome = run("--config", str(config), "rotate", "-c", "WS002", "-s", "lab", "-f", "json")
    assert outcome.code == 1, outcome.err
    (rotation,) = outcome.document["rotations"]
    assert rotation["computer"] == "WS002"
    assert rotation["outcome"] == "by hand"
    assert "Active Directory cannot ask a device" in rotation["detail"]
    expected = sorted(key.key_id for key in samba_dc.keys("WS002"))
    assert sorted(rotation["key_ids"]) == expected
    assert rotation["steps"][1] == "manage-bde -protectors -adbackup C: -id {NEW-ID}"
    assert not [secret for secret in SECRETS if secret in outcome.out + outcome.err]
    (entry,) = trail_lines()
    assert entry["action"] == "rotate"
    assert entry["computer"] == "WS002"
