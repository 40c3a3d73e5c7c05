"""`bitkey-dir rotate` against real directories: Active Directory (by hand, with the steps)
and Entra ID through Intune (the emulator's managed devices and rotate action)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from examples.lab.samba_dc import RecoveryKey as LabKey
from tests.command_line import invoke_with, trail_entries
from tests.integration.fixtures import ADMIN, SECRETS, Directory, Lab, ad_checks
from tests.integration.seed import (
    COLLIDING_LT001,
    COLLIDING_PREFIX,
    COLLIDING_WS002,
    TEMPORARY_COMPUTER,
)

pytestmark = pytest.mark.integration


def test_an_ad_computer_is_rotated_by_hand_with_adbackup(lab: Lab, samba_dc: Directory) -> None:
    config = lab.config(user=ADMIN)
    outcome = invoke_with(config, "rotate", "-c", "WS002", "-s", "lab", "-f", "json", **ad_checks())
    assert outcome.code == 1, outcome.err
    (rotation,) = outcome.document["rotations"]
    assert rotation["computer"] == "WS002"
    assert rotation["outcome"] == "by hand"
    assert "Active Directory cannot ask a device" in rotation["detail"]
    expected = sorted(key.key_id for key in samba_dc.keys("WS002"))
    assert sorted(rotation["key_ids"]) == expected
    # AD does not say which volume a key is for: the steps find it by the key's own ID.
    (key_id,) = expected
    steps = rotation["steps"]
    assert f"KeyProtectorId -contains '{{{key_id}}}' }}).MountPoint" in steps[0]
    assert steps[2] == "manage-bde -protectors -adbackup $v -id '{NEW-ID}'"
    assert steps[-1] == f"manage-bde -protectors -delete $v -id '{{{key_id}}}'"
    assert not [step for step in steps if "C:" in step]
    assert not [secret for secret in SECRETS if secret in outcome.out + outcome.err]
    (entry,) = trail_entries()
    assert entry["action"] == "rotate"
    assert entry["computer"] == "WS002"


def test_an_8_digit_key_id_of_two_computers_rotates_nothing(lab: Lab) -> None:
    config = lab.config(user=ADMIN)
    outcome = invoke_with(config, "rotate", "-k", COLLIDING_PREFIX, "-s", "lab", **ad_checks())
    assert outcome.code == 2, outcome.err
    assert outcome.out == ""
    (line,) = outcome.err.splitlines()
    assert "matches keys of 2 devices" in line
    for name, key_id in (("WS002", COLLIDING_WS002), ("LT001", COLLIDING_LT001)):
        assert f"{name} (lab: {key_id})" in line
    assert trail_entries() == []


def test_a_key_the_account_may_not_read_is_not_rotated_in_its_name(
    lab: Lab, samba_dc: Directory
) -> None:
    config = lab.config()  # the helpdesk reads passwords below OU=Workstations only
    (key, *_) = samba_dc.keys("SRV001")
    outcome = invoke_with(
        config, "rotate", "-k", key.key_id, "-s", "lab", "-f", "json", **ad_checks()
    )
    assert outcome.code == 3, outcome.err
    assert outcome.document["rotations"] == []
    assert f"may not read the password of {key.key_id} (SRV001)" in outcome.err
    assert trail_entries() == []  # neither disclosed nor rotated through this account
    readable = invoke_with(
        config, "rotate", "-c", "WS001", "-s", "lab", "-f", "json", **ad_checks()
    )
    assert readable.code == 1, readable.err  # by hand
    (rotation,) = readable.document["rotations"]
    assert len(rotation["key_ids"]) == 3
    (entry,) = trail_entries()
    assert (entry["computer"], entry["outcome"]) == ("WS001", "by hand")


@pytest.fixture
def fresh_computer(samba_dc: Directory) -> Iterator[tuple[str, LabKey]]:
    """A computer of its own with one key, removed after the test (the session's DC is
    shared: audits elsewhere count its computers)."""
    dc = samba_dc.dc
    name = f"{TEMPORARY_COMPUTER}{uuid.uuid4().hex[:8].upper()}"
    key = LabKey.derive(name, dt.datetime(2025, 1, 1, 9, 0, tzinfo=dt.UTC))
    conn = dc.connect()
    created: list[str] = []
    try:
        computer_dn = dc.add_computer(conn, name, "OU=Lab")
        created.append(computer_dn)
        created.append(dc.add_recovery_key(conn, computer_dn, key))
        yield name, key
    finally:
        for dn in reversed(created):
            conn.delete(dn)
        conn.unbind()


def test_audit_disclosed_tells_rotated_from_still_valid(
    lab: Lab, samba_dc: Directory, fresh_computer: tuple[str, LabKey]
) -> None:
    name, key = fresh_computer
    config = lab.config(user=ADMIN)
    shown = invoke_with(config, "find", "-k", key.key_id, "-s", "lab", "-f", "key", **ad_checks())
    assert shown.code == 0, shown.err
    first = invoke_with(config, "audit", "--disclosed", "-f", "json", **ad_checks())
    assert first.code == 0, first.err
    (item,) = [d for d in first.document["disclosed"] if d["key_id"] == key.key_id]
    assert item["status"] == "still valid"
    assert item["computer"] == name
    assert item["exposed_days"] == 0.0
    failing = invoke_with(
        config, "audit", "--disclosed", "--fail-on-missing", "-f", "json", **ad_checks()
    )
    assert failing.code == 1
    # The device replaces it: a new key for the same volume, escrowed after the reveal.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    # A valid password of its own: a damaged one would be left out of listings that read
    # passwords, and a later test in the session would meet that difference.
    replacement = LabKey.derive(f"{name}/rotated", later)
    newer = dataclasses.replace(
        key, created=later, recovery_guid=uuid.uuid4(), password=replacement.password
    )
    dc = samba_dc.dc
    conn = dc.connect()
    computer_dn = f"CN={name},{dc.dn('OU=Lab')}"
    newer_dn = dc.add_recovery_key(conn, computer_dn, newer)
    try:
        second = invoke_with(config, "audit", "--disclosed", "-f", "json", **ad_checks())
        (item,) = [d for d in second.document["disclosed"] if d["key_id"] == key.key_id]
        assert item["status"] == "rotated"
        assert item["rotated"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
        table = invoke_with(config, "audit", "--disclosed", "-f", "table", **ad_checks())
        assert "rotated" in table.out
        assert key.password not in table.out + table.err
    finally:
        conn.delete(newer_dn)
        conn.unbind()
