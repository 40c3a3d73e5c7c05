"""After a key is read, in Entra ID: rotation through Intune, disclosed keys, and who read
keys according to Entra's own audit log (the Graph emulator's Intune and audit endpoints)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from examples.lab.graph_emulator import GraphEmulator, RecoveryKey
from tests.command_line import invoke, invoke_with, trail_entries
from tests.integration.fixtures import FULL, SECRET, SOURCE, WRONG_SECRET, Entra

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

ROTATE = "DeviceManagementManagedDevices.ReadWrite.All"
AUDIT = "AuditLog.Read.All"
ROTATE_PATH = r"^/beta/deviceManagement/managedDevices/[^/]+/rotateBitLockerKeys$"


def test_rotate_asks_intune_and_reads_no_key(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, ROTATE)
    pc = graph.add_device("PC-0042")
    old = graph.add_recovery_key(pc, created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    managed = graph.home.add_managed_device(pc, rotation_policy=True)
    config = entra.config()
    # Read out to the user:
    shown = invoke_with(config, "find", "-k", old.id, "-f", "key", **entra.checks)
    assert shown.code == 0
    before = invoke_with(config, "audit", "--disclosed", "-f", "json", **entra.checks)
    assert [d["status"] for d in before.document["disclosed"]] == ["still valid"]
    graph.advance_clock(60)
    graph.clear_requests()
    reads_before = len(graph.key_reads)
    outcome = invoke_with(
        config, "rotate", "-k", old.id[:8], "-r", "INC-1", "-f", "json", **entra.checks
    )
    assert outcome.code == 0, outcome.err
    (rotation,) = outcome.document["rotations"]
    assert rotation["outcome"] == "requested"
    assert rotation["computer"] == "PC-0042"
    assert managed.id in rotation["detail"]
    assert [r.managed_device_id for r in graph.home.rotations] == [managed.id]
    assert graph.count(ROTATE_PATH, method="POST") == 1
    assert len(graph.key_reads) == reads_before  # no key value was read to rotate it
    reveal, entry = trail_entries()
    assert reveal["key_id"] == old.id.upper()
    assert (entry["action"], entry["outcome"], entry["reason"]) == ("rotate", "requested", "INC-1")
    # The device escrowed a new key for the volume: the disclosure is now "rotated".
    disclosed = invoke_with(config, "audit", "--disclosed", "-f", "json", **entra.checks)
    (item,) = disclosed.document["disclosed"]
    assert item["status"] == "rotated"


def managed_without_the_right_to_rotate(entra: Entra, graph: GraphEmulator) -> RecoveryKey:
    """A key of a device in Intune, and an app that may find the device but not rotate."""
    entra.daemon(*FULL, "DeviceManagementManagedDevices.Read.All")
    pc = graph.add_device("PC-0042")
    key = graph.add_recovery_key(pc)
    graph.home.add_managed_device(pc)
    return key


def test_rotate_without_the_permission_is_exit_3_naming_it(
    entra: Entra, graph: GraphEmulator
) -> None:
    key = managed_without_the_right_to_rotate(entra, graph)
    config = entra.config()
    outcome = invoke_with(config, "rotate", "-k", key.id, **entra.checks)
    assert outcome.code == 3
    assert ROTATE in outcome.err
    assert graph.home.rotations == []
    assert key.key not in outcome.out + outcome.err


def test_find_then_rotate_shows_the_key_then_asks_intune(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon(*FULL, ROTATE)
    pc = graph.add_device("PC-0042")
    key = graph.add_recovery_key(pc)
    managed = graph.home.add_managed_device(pc, rotation_policy=True)
    find = ("find", "-k", key.id[:8], "-f", "key", "-r", "INC-3", "--rotate")
    outcome = invoke_with(entra.config(), *find, **entra.checks)
    assert outcome.code == 0, outcome.err
    assert outcome.out == key.key + "\n"  # stdout stays the key; the rotation is on stderr
    assert f"PC-0042 ({SOURCE}): requested: " in outcome.err
    assert [r.managed_device_id for r in graph.home.rotations] == [managed.id]
    reveal, rotation = trail_entries()
    assert (reveal["key_id"], reveal["reason"]) == (key.id.upper(), "INC-3")
    assert (rotation["action"], rotation["outcome"]) == ("rotate", "requested")


def test_find_then_rotate_without_the_permission_shows_the_key_and_exits_3(
    entra: Entra, graph: GraphEmulator
) -> None:
    key = managed_without_the_right_to_rotate(entra, graph)
    # The key was revealed before the rotation failed, so it is on stdout of a run that
    # exits 3: invoke's "no password unless exit 0" does not hold here, and is checked so.
    config = entra.config()
    args = ("--config", str(config), "find", "-k", key.id, "-f", "key", "--rotate")
    outcome = invoke(*args, never_shown=[SECRET, WRONG_SECRET])
    assert outcome.code == 3, outcome.err
    assert outcome.out == key.key + "\n"
    assert key.key not in outcome.err
    assert ROTATE in outcome.err
    assert graph.home.rotations == []
    assert [entry.get("action") for entry in trail_entries()] == [None]  # the reveal only


def test_a_device_not_in_intune_is_rotated_by_hand(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, ROTATE)
    key = graph.add_recovery_key(graph.add_device("PC-0043"))
    config = entra.config()
    outcome = invoke_with(config, "rotate", "-c", "PC-0043", "-f", "json", **entra.checks)
    assert outcome.code == 1
    (rotation,) = outcome.document["rotations"]
    assert rotation["outcome"] == "by hand"
    assert "not managed by Intune" in rotation["detail"]
    assert "BackupToAAD-BitLockerKeyProtector" in rotation["steps"][1]
    assert rotation["steps"][-1] == (
        f"manage-bde -protectors -delete $env:SystemDrive -id '{{{key.id.upper()}}}'"
    )


def test_disclosed_keys_rotated_and_still_valid(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    a = graph.add_device("PC-A")
    b = graph.add_device("PC-B")
    old_a = graph.add_recovery_key(a, created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    old_b = graph.add_recovery_key(b, created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    config = entra.config()
    for key in (old_a, old_b):
        assert invoke_with(config, "find", "-k", key.id, "-f", "key", **entra.checks).code == 0
    graph.advance_clock(120)
    graph.add_recovery_key(a)  # PC-A's volume got a new key after the reveal
    outcome = invoke_with(config, "audit", "--disclosed", "-f", "json", **entra.checks)
    assert outcome.code == 0, outcome.err
    status = {d["key_id"]: d["status"] for d in outcome.document["disclosed"]}
    assert status == {old_a.id.upper(): "rotated", old_b.id.upper(): "still valid"}
    assert len(graph.key_reads) == 2  # only the two reveals read a key
    failing = invoke_with(
        config, "audit", "--disclosed", "--fail-on-missing", "-f", "json", **entra.checks
    )
    assert failing.code == 1


def test_reads_pages_the_audit_log_and_marks_reads_made_elsewhere(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon(*FULL, AUDIT)
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    other = graph.add_recovery_key(graph.add_device("PC-0043"))
    config = entra.config()
    shown = invoke_with(config, "find", "-k", key.id, "-f", "key", "-r", "INC-7", **entra.checks)
    assert shown.code == 0
    portal_user = graph.add_user("admin@contoso.onmicrosoft.com", roles=["Global Administrator"])
    for _ in range(6):  # several pages of events made elsewhere
        graph.home.add_audit_event("Read BitLocker key", user=portal_user, key=other)
    graph.home.audit_page_size = 3
    outcome = invoke_with(config, "reads", "--since", "1d", "-f", "json", **entra.checks)
    assert outcome.code == 0, outcome.err
    reads = outcome.document["reads"]
    ours = [r for r in reads if r["via"] == "bitkey-dir"]
    elsewhere = [r for r in reads if r["via"] == "elsewhere"]
    assert [(r["key_id"], r["reason"]) for r in ours] == [(key.id.upper(), "INC-7")]
    assert len(elsewhere) == 6
    assert {r["actor"] for r in elsewhere} == {"admin@contoso.onmicrosoft.com"}
    assert {r["key_id"] for r in elsewhere} == {other.id.upper()}
    assert graph.count(r"^/v1\.0/auditLogs/directoryAudits", method="GET") >= 3
    assert key.key not in outcome.out + outcome.err


def test_reads_without_the_permission_is_exit_3(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon()
    config = entra.config()
    outcome = invoke_with(config, "reads", **entra.checks)
    assert outcome.code == 3
    assert AUDIT in outcome.err


def test_reads_of_a_source_without_an_audit_log_is_bad_input(tmp_path: Path) -> None:
    from tests.command_line import invoke
    from tests.unit.helpers import EXAMPLE_KEYS

    outcome = invoke("reads", "-s", str(EXAMPLE_KEYS))
    assert outcome.code == 2
    assert "keeps no audit log" in outcome.err


def test_json_names_the_source(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, AUDIT)
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    config = entra.config()
    assert invoke_with(config, "find", "-k", key.id, "-f", "key", **entra.checks).code == 0
    outcome = invoke_with(config, "reads", "-f", "json", **entra.checks)
    assert {r["source"] for r in outcome.document["reads"]} == {SOURCE}


def test_one_trail_line_explains_one_read_however_many_the_account_made(
    entra: Entra, graph: GraphEmulator
) -> None:
    app = entra.daemon(*FULL, AUDIT)
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    config = entra.config()
    shown = invoke_with(config, "find", "-k", key.id, "-f", "key", "-r", "INC-8", **entra.checks)
    assert shown.code == 0
    now = graph.now_datetime()
    for minutes in (3, 6):  # the same app read the same key twice more, not through bitkey-dir
        graph.home.add_audit_event(app=app, key=key, time=now - dt.timedelta(minutes=minutes))
    outcome = invoke_with(config, "reads", "--since", "1d", "-f", "json", **entra.checks)
    assert outcome.code == 0, outcome.err
    reads = outcome.document["reads"]
    assert {r["actor"] for r in reads} == {app.client_id}
    assert [r["via"] for r in reads] == ["bitkey-dir", "elsewhere", "elsewhere"]
    assert reads[0]["reason"] == "INC-8"


def test_reads_since_the_year_1_is_bad_input(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, AUDIT)
    outcome = invoke_with(entra.config(), "reads", "--since", "0001-01-01", **entra.checks)
    assert (outcome.code, outcome.out) == (2, "")
    assert "is before 2000-01-01" in outcome.err
