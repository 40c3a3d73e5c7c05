"""The Key ID index refreshed device by device, or by the devices changed since, against the
Graph emulator with the real msal and msgraph-sdk: the index ends as a full listing would
make it (same key IDs, devices, names and dates), throttled or not.

Each comparison lists the tenant in full into a second index file (``--how full``) and
compares the rows of both.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import Outcome, invoke_with
from tests.integration.fixtures import BATCH, KEY_LIST, Entra

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

DELTA = r"^/v1\.0/devices/(microsoft\.graph\.)?delta"
Row = tuple[str, str | None, str | None, str | None]


def refresh(entra: Entra, how: str, index: Path, **settings: object) -> Outcome:
    entra.monkeypatch.setenv("BITKEY_DIR_INDEX", str(index))
    config = entra.config(**settings)
    return invoke_with(config, "index", "refresh", "--how", how, "-f", "json", **entra.checks)


def rows(index: Path) -> set[Row]:
    with sqlite3.connect(index) as db:
        found = db.execute("SELECT key_id, computer, lower(device_id), created FROM keys")
        return set(found.fetchall())


def full_listing(entra: Entra, tmp_path: Path) -> set[Row]:
    fresh = tmp_path / f"full-{len(list(tmp_path.glob('full-*')))}.sqlite3"
    outcome = refresh(entra, "full", fresh)
    assert outcome.code == 0, outcome.err
    return rows(fresh)


def refreshed(outcome: Outcome) -> dict[str, object]:
    assert outcome.code == 0, outcome.err
    done: dict[str, object] = json.loads(outcome.out)["refreshed"][0]
    return done


@pytest.fixture
def cloud(entra: Entra, graph: GraphEmulator) -> Entra:
    """Devices with 0 to 45 keys (pages of 5: many pages for one device), generated ones,
    and keys whose device is not in the device list."""
    entra.daemon()
    graph.recovery_keys_page_size = 5
    graph.devices_page_size = 7
    for n in range(24):
        pc = graph.add_device(f"PC-{n:03d}")
        for _ in range(n if n != 23 else 45):
            graph.add_recovery_key(pc)
    graph.add_generated_keys(120, seed=7, keys_per_device=3)
    for n in range(3):
        graph.add_recovery_key(f"0000000{n}-dead-4000-8000-000000000000")  # no device object
    return entra


def test_by_device_after_changes_holds_what_a_full_listing_holds(
    cloud: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    assert refreshed(refresh(cloud, "full", index))["how"] == "full"
    # Meanwhile: a rotation on a device, a new device, one deleted (its keys stay in Entra).
    graph.add_recovery_key(graph.devices[5])
    new = graph.add_device("PC-NEW")
    graph.add_recovery_key(new)
    graph.home.remove_device(graph.devices[3])
    graph.clear_requests()
    done = refreshed(refresh(cloud, "devices", index))
    assert done["how"] == "devices"
    assert done["devices"] == 24 + 40  # every device in the list, generated ones too
    assert graph.count(KEY_LIST, via_batch=False) == 0  # not one page of the whole listing
    assert graph.count(BATCH) >= 4
    assert graph.count(KEY_LIST, via_batch=True) > 64  # devices with several pages
    assert graph.key_reads == []
    assert rows(index) == full_listing(cloud, tmp_path)


def test_changes_see_new_and_renamed_devices_and_every_device_sees_rotations(
    cloud: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    assert refreshed(refresh(cloud, "full", index))["how"] == "full"
    assert refreshed(refresh(cloud, "devices", index))["how"] == "devices"
    # Nothing changed: one delta request, nothing listed.
    graph.clear_requests()
    quiet = refreshed(refresh(cloud, "changes", index))
    assert (quiet["how"], quiet["devices"], quiet["listed"]) == ("changes", 0, 0)
    assert graph.count(DELTA) == 1
    assert graph.count(BATCH) == 0
    # A new device, a renamed one, and a rotation on a device that did not change.
    new = graph.add_device("PC-NEW")
    added = graph.add_recovery_key(new)
    graph.home.rename_device(graph.devices[2], "PC-RENAMED")
    rotated = graph.add_recovery_key(graph.devices[8])
    changed = refreshed(refresh(cloud, "changes", index))
    assert (changed["how"], changed["devices"]) == ("changes", 2)
    held = rows(index)
    ids = {row[0] for row in held}
    assert added.id.replace("-", "").upper() in ids
    assert any(row[1] == "PC-RENAMED" for row in held)
    assert not any(row[1] == "PC-002" for row in held)
    # What a round of changes cannot see: a new key on a device that did not change.
    assert rotated.id.replace("-", "").upper() not in ids
    graph.clear_requests()
    assert refreshed(refresh(cloud, "devices", index))["how"] == "devices"
    assert graph.count(DELTA) == 0  # the cursor held stays good: devices 999 a page instead
    assert rows(index) == full_listing(cloud, tmp_path)


def test_throttled_by_device_refresh_slows_down_and_loses_nothing(
    cloud: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    assert refresh(cloud, "full", index).code == 0  # the keys without a device come from it
    graph.max_in_flight = 2  # more at once is answered 429 with Retry-After
    graph.in_flight_retry_after = "0.2"
    graph.add_fault(KEY_LIST, status=429, retry_after="0.1", in_batch=True, times=6)
    graph.add_fault(KEY_LIST, status=503, in_batch=True, times=2)
    graph.recovery_keys_page_size = 2  # more requests, more chances to be throttled
    done = refreshed(refresh(cloud, "devices", index, batches_in_flight=8))
    assert done["throttled"] >= 8
    assert graph.errors == []
    graph.max_in_flight = None
    assert rows(index) == full_listing(cloud, tmp_path)


def test_auto_lists_in_full_first_then_every_device_then_the_changes(
    cloud: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    assert refreshed(refresh(cloud, "auto", index))["how"] == "full"
    assert refreshed(refresh(cloud, "auto", index))["how"] == "devices"  # for a cursor
    assert refreshed(refresh(cloud, "auto", index))["how"] == "changes"
    time.sleep(1.1)  # the shortest ages are a second
    again = refresh(cloud, "auto", index, index_devices_age="1s")
    assert refreshed(again)["how"] == "devices"
    assert refreshed(refresh(cloud, "auto", index, index_full_age="1s"))["how"] == "full"
    status = invoke_with(cloud.config(), "index", "status", "-f", "json", **cloud.checks)
    assert status.code == 0, status.err
    source = json.loads(status.out)["sources"][0]
    assert set(source["refreshes"]) == {"full", "devices", "changes"}
    assert source["refreshes"]["changes"]["devices"] == 0
    table = invoke_with(cloud.config(), "index", "status", **cloud.checks)
    assert "full listing" in table.out
    assert "every device" in table.out
    assert "changed devices" in table.out


def test_a_vanished_device_keeps_its_keys_until_the_next_full_listing(
    cloud: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite3"
    assert refresh(cloud, "full", index).code == 0
    graph.add_fault(KEY_LIST, status=404, in_batch=True, times=3)  # PC-000 to PC-002
    done = refreshed(refresh(cloud, "devices", index))
    assert done["vanished"] == 3
    assert rows(index) == full_listing(cloud, tmp_path)  # its keys were kept
