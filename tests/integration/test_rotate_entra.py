"""`bitkey-dir rotate` against the Graph emulator: an 8-digit Key ID shared by devices of two
tenants rotates nothing; the steps for a device outside Intune name each key's own volume;
`--wait` follows the managed device's action result to its end (done with the new Key ID,
failed, not supported, still pending) and Ctrl-C leaves it requested."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bitkey_dir import Client, ExitCode
from bitkey_dir.core.errors import InputError
from examples.lab.graph_emulator import GraphEmulator, RotationScript
from tests.command_line import invoke, invoke_with, trail_entries
from tests.conftest import ROOT
from tests.integration.fixtures import FULL, SECRET, WRONG_SECRET, Entra

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

ROTATE = "DeviceManagementManagedDevices.ReadWrite.All"
ROTATE_PATH = r"^/beta/deviceManagement/managedDevices/[^/]+/rotateBitLockerKeys$"
HOSTILE = "NW-02\x1b]0;owned\x07\u202e"


def test_an_8_digit_key_id_in_two_tenants_rotates_nothing(
    entra: Entra, graph: GraphEmulator
) -> None:
    app = graph.add_app(
        "msp", public_client=False, secret=SECRET, app_roles=[*FULL, ROTATE], multi_tenant=True
    )
    entra.client_id = app.client_id
    entra.monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", SECRET)
    fabrikam = graph.add_tenant("fabrikam.onmicrosoft.com")
    northwind = graph.add_tenant("northwind.onmicrosoft.com")
    for tenant in (fabrikam, northwind):
        tenant.consent(app, app_roles=[*FULL, ROTATE])
    fab_pc = fabrikam.add_device("FAB-01")
    key = fabrikam.add_recovery_key(fab_pc)
    fabrikam.add_managed_device(fab_pc)
    nw_pc = northwind.add_device(HOSTILE)
    twin = northwind.add_recovery_key(nw_pc, id_prefix=key.id[:8])
    northwind.add_managed_device(nw_pc)
    config = entra.config(tenant_id=None, tenant_ids=[fabrikam.tenant_id, northwind.tenant_id])

    outcome = invoke_with(config, "rotate", "-k", key.id[:8], "-r", "INC-7", **entra.checks)
    assert outcome.code == 2, outcome.err
    (line,) = [line for line in outcome.err.splitlines() if not line.startswith("notice:")]
    assert "matches keys of 2 devices" in line
    assert "FAB-01" in line
    assert key.id.upper() in line
    assert twin.id.upper() in line
    assert "\\x1b]0;owned\\x07\\u202e" in line  # the device's name, escaped
    assert "give the full Key ID, or --computer" in line
    assert fabrikam.rotations == []
    assert northwind.rotations == []
    assert trail_entries() == []

    one = invoke_with(config, "rotate", "-k", key.id, "-f", "json", **entra.checks)
    assert one.code == 0, one.err
    (rotation,) = one.document["rotations"]
    assert (rotation["computer"], rotation["key_ids"]) == ("FAB-01", [key.id.upper()])
    assert len(fabrikam.rotations) == 1
    assert northwind.rotations == []
    (entry,) = trail_entries()
    assert entry["key_ids"] == [key.id.upper()]


def test_an_8_digit_key_id_of_one_device_rotates_it_and_only_it(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon(*FULL, ROTATE)
    pc = graph.add_device("PC-0042")
    key = graph.add_recovery_key(pc)
    managed = graph.home.add_managed_device(pc)
    other = graph.add_device("PC-0043")
    graph.add_recovery_key(other)
    graph.home.add_managed_device(other)
    reads = len(graph.key_reads)
    outcome = invoke_with(entra.config(), "rotate", "-k", key.id[:8], "-f", "json", **entra.checks)
    assert outcome.code == 0, outcome.err
    (rotation,) = outcome.document["rotations"]
    assert rotation["key_ids"] == [key.id.upper()]
    assert [r.managed_device_id for r in graph.home.rotations] == [managed.id]
    assert len(graph.key_reads) == reads  # matched by listing: no key value read


def test_steps_outside_intune_name_each_keys_own_volume(entra: Entra, graph: GraphEmulator) -> None:
    entra.daemon(*FULL, ROTATE)
    pc = graph.add_device("PC-0043")
    system = graph.add_recovery_key(pc, volume_type="operatingSystemVolume")
    data = graph.add_recovery_key(pc, volume_type="fixedDataVolume")
    stick = graph.add_recovery_key(pc, volume_type="removableDataVolume")
    outcome = invoke_with(entra.config(), "rotate", "-c", "PC-0043", "-f", "json", **entra.checks)
    assert outcome.code == 1, outcome.err
    (rotation,) = outcome.document["rotations"]
    assert rotation["outcome"] == "by hand"
    steps = rotation["steps"]
    assert not [step for step in steps if " C: " in step]
    system_id, data_id, stick_id = (f"{{{k.id.upper()}}}" for k in (system, data, stick))
    assert f"manage-bde -protectors -delete $env:SystemDrive -id '{system_id}'" in steps
    for key_id in (data_id, stick_id):
        delete = steps.index(f"manage-bde -protectors -delete $v -id '{key_id}'")
        # The last volume found before deleting it is the one holding that very key.
        found = max(i for i, step in enumerate(steps[:delete]) if step.startswith("$v = "))
        assert f"-contains '{key_id}'" in steps[found]
    assert any(
        step.startswith("BackupToAAD-BitLockerKeyProtector -MountPoint $v") for step in steps
    )


# -- rotate --wait ----------------------------------------------------------------------------


def rotation_with(
    entra: Entra, graph: GraphEmulator, script: RotationScript | None, *, policy: bool = True
) -> tuple[Path, str]:
    entra.daemon(*FULL, ROTATE)
    pc = graph.add_device("PC-0042")
    key = graph.add_recovery_key(pc)
    managed = graph.home.add_managed_device(pc, rotation_policy=policy)
    managed.rotation_script = script
    return entra.config(), key.id


def test_wait_reports_the_new_key_id_once_intune_says_done(
    entra: Entra, graph: GraphEmulator
) -> None:
    config, key_id = rotation_with(entra, graph, RotationScript(pending_reads=2))
    before = set(graph.recovery_keys)
    reads = len(graph.key_reads)
    outcome = invoke_with(
        config, "rotate", "-k", key_id, "--wait", "60", "-r", "INC-8", "-f", "json", **entra.checks
    )
    assert outcome.code == 0, outcome.err
    (rotation,) = outcome.document["rotations"]
    (new,) = set(graph.recovery_keys) - before
    assert rotation["progress"] == {"state": "done", "new_key_ids": [new.upper()], "detail": ""}
    assert outcome.document["waited"] == 60
    assert len(graph.key_reads) == reads  # the new key's ID, never its value
    assert graph.count(r"^/beta/deviceManagement/managedDevices/[^/]+$", method="GET") == 3
    requested, done = trail_entries()
    assert (requested["outcome"], done["outcome"]) == ("requested", "done")
    assert done["new_key_ids"] == [new.upper()]
    table = invoke_with(config, "rotate", "-k", key_id, "--wait", "60", **entra.checks)
    assert table.code == 0, table.err
    assert "done: new Key ID " in table.out


@pytest.mark.parametrize(
    ("script", "shown"),
    [
        (RotationScript(outcome="failed", error_code=-2147024809), "failed (Intune: failed, "),
        (RotationScript(outcome="notSupported"), "not supported (Intune: notSupported)"),
    ],
)
def test_wait_reports_a_device_that_cannot_rotate_as_exit_4(
    entra: Entra, graph: GraphEmulator, script: RotationScript, shown: str
) -> None:
    config, key_id = rotation_with(entra, graph, script)
    outcome = invoke_with(config, "rotate", "-k", key_id, "--wait", "30", **entra.checks)
    assert outcome.code == 4, outcome.err
    assert shown in outcome.out
    if script.outcome == "failed":
        assert "error code -2147024809 (0x80070057)" in outcome.out
    assert [entry["outcome"] for entry in trail_entries()] == [
        "requested",
        "failed" if script.outcome == "failed" else "not supported",
    ]


def test_wait_that_ends_first_leaves_the_rotation_pending_exit_1(
    entra: Entra, graph: GraphEmulator
) -> None:
    config, key_id = rotation_with(entra, graph, None, policy=False)  # never rotates
    started = time.monotonic()
    outcome = invoke_with(config, "rotate", "-k", key_id, "--wait", "2", **entra.checks)
    assert time.monotonic() - started < 10
    assert outcome.code == 1, outcome.err
    assert "still pending after 2 s (Intune: pending): it may yet complete" in outcome.out
    assert [entry["outcome"] for entry in trail_entries()] == ["requested"]
    bad = invoke_with(config, "rotate", "-k", key_id, "--wait", "0", **entra.checks)
    assert bad.code == 2


def test_ctrl_c_while_waiting_is_130_and_the_rotation_stays_requested(
    entra: Entra, graph: GraphEmulator
) -> None:
    config, key_id = rotation_with(entra, graph, RotationScript(pending_reads=1000))
    trail = Path(os.environ["BITKEY_DIR_TRAIL"])
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bitkey_dir",
            "--config",
            str(config),
            "rotate",
            "-k",
            key_id,
            "--wait",
            "120",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (trail.exists() and trail.read_text(encoding="utf-8").strip()):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the rotation was never requested"
            time.sleep(0.05)
        time.sleep(0.5)  # waiting now
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    text = err.decode()
    assert "the rotation of PC-0042 was requested and may still complete" in text
    assert "Traceback" not in text
    assert SECRET not in text
    (entry,) = (json.loads(line) for line in trail.read_text(encoding="utf-8").splitlines())
    assert entry["outcome"] == "requested"
    assert len(graph.home.rotations) == 1


def test_the_library_waits_as_the_command_does(entra: Entra, graph: GraphEmulator) -> None:
    config, key_id = rotation_with(entra, graph, RotationScript(pending_reads=1, outcome="failed"))
    with Client(config=config) as client:
        result = client.rotate(key_id=key_id, wait=30, reason="INC-9")
        (rotation,) = result.rotations
        assert rotation.progress is not None
        assert rotation.progress.state == "failed"
        assert result.exit_code == ExitCode.SOURCE_FAILED
        with pytest.raises(InputError, match=r"wait=1 to 86400|wait takes 1 to 86400"):
            client.rotate(key_id=key_id, wait=0)
    assert [entry["outcome"] for entry in trail_entries()] == ["requested", "failed"]


def test_find_rotate_wait_shows_the_key_then_follows_the_rotation_up(
    entra: Entra, graph: GraphEmulator
) -> None:
    config, key_id = rotation_with(entra, graph, RotationScript(pending_reads=1))
    before = set(graph.recovery_keys)
    args = ("find", "-k", key_id[:8], "-r", "INC-10", "--rotate", "--wait", "60", "-f", "json")
    outcome = invoke_with(config, *args, **entra.checks)
    assert outcome.code == 0, outcome.err
    (key,) = outcome.keys
    assert key["key_id"] == key_id.upper()
    (new,) = set(graph.recovery_keys) - before
    assert f"done: new Key ID {new.upper()}" in outcome.err
    reveal, requested, done = trail_entries()
    assert reveal["key_id"] == key_id.upper()
    assert (requested["outcome"], done["outcome"]) == ("requested", "done")


def test_find_rotate_wait_is_4_when_the_device_cannot_rotate(
    entra: Entra, graph: GraphEmulator
) -> None:
    config, key_id = rotation_with(entra, graph, RotationScript(outcome="notSupported"))
    # The key is shown before the rotation fails, so it is on stdout of a run that exits 4:
    # invoke's "no password unless exit 0" does not hold here.
    args = ("--config", str(config), "find", "-k", key_id, "-r", "INC-11", "--rotate")
    outcome = invoke(*args, "--wait", "30", "-f", "key", never_shown=[SECRET, WRONG_SECRET])
    assert outcome.code == 4, outcome.err
    assert outcome.out == graph.recovery_keys[key_id].key + "\n"
    assert graph.recovery_keys[key_id].key not in outcome.err
    assert "not supported (Intune: notSupported)" in outcome.err
    with Client(config=config) as client:
        found = client.find(key_id=key_id, reason="INC-12", then_rotate=True, wait=30)
        assert found.exit_code == ExitCode.SOURCE_FAILED
    reads = len(graph.key_reads)
    for bad in (("--wait", "30"), ("--rotate", "--wait", "0")):
        refused = invoke_with(config, "find", "-k", key_id, "-r", "INC-13", *bad, **entra.checks)
        assert refused.code == 2, refused.err
    assert len(graph.key_reads) == reads  # refused before anything was read
