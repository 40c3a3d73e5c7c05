"""The Key ID index against the Graph emulator: 8 digits without listing the tenant.

Each test refreshes the index of the `cloud` source with the real CLI, then counts what a
lookup asks Graph for: a warm 8-digit lookup must read the one key by its full ID and list
nothing; a key escrowed after the refresh is still found (by the usual listing) and the user
is told the index was stale; a key deleted from Entra but still in the index is not shown.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import Outcome, invoke_with, trail_entries
from tests.integration.fixtures import DEVICES, KEY_GET, KEY_LIST, KEYS, Entra

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]


def estate(graph: GraphEmulator, devices: int = 30) -> None:
    for n in range(devices):
        pc = graph.add_device(f"PC-{n:04d}")
        graph.add_recovery_key(pc)
    graph.recovery_keys_page_size = 5  # many pages: a listing is easy to see


def refresh(entra: Entra, **settings: object) -> Outcome:
    config = entra.config(**settings)
    return invoke_with(config, "index", "refresh", "-f", "json", **entra.checks)


def index_file(tmp_home: Path) -> Path:
    found = list(tmp_home.rglob("key-index.sqlite3"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def cloud(entra: Entra, graph: GraphEmulator) -> Entra:
    entra.daemon()
    estate(graph)
    return entra


def test_refresh_lists_every_key_and_reads_none(cloud: Entra, graph: GraphEmulator) -> None:
    outcome = refresh(cloud)
    assert outcome.code == 0, outcome.err
    document = json.loads(outcome.out)
    assert document["refreshed"][0]["source"] == "cloud"
    assert document["refreshed"][0]["keys"] == 30
    assert graph.key_reads == []  # a listing never reads (and so never audits) a key value
    assert graph.count(KEY_GET, method="GET") == 0
    # The index holds the Key IDs and device names, and not one password.
    path = index_file(Path.home())
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    raw = path.read_bytes()
    for key in graph.recovery_keys.values():
        assert key.key.encode() not in raw
        assert key.key.replace("-", "").encode() not in raw
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key_id, computer, device_id FROM keys").fetchall()
        assert db.execute("SELECT count(*) FROM staged").fetchone() == (0,)
    assert {row[0] for row in rows} == {
        k.id.replace("-", "").upper() for k in graph.recovery_keys.values()
    }
    assert all(row[1].startswith("PC-") and row[2] for row in rows)


def test_warm_prefix_lookup_reads_one_key_and_lists_nothing(
    cloud: Entra, graph: GraphEmulator
) -> None:
    assert refresh(cloud).code == 0
    wanted = next(iter(graph.recovery_keys.values()))
    graph.clear_requests()
    outcome = cloud.find("--key-id", wanted.id[:8])
    assert outcome.code == 0, outcome.err
    document = json.loads(outcome.out)
    assert [key["key_id"] for key in document["keys"]] == [wanted.id.upper()]
    assert document["keys"][0]["recovery_password"] == wanted.key
    assert document["index"] == {"used": ["cloud"], "stale": [], "unconfirmed": ["cloud"]}
    assert graph.count(KEY_LIST, method="GET") == 0
    assert graph.count(DEVICES, method="GET") == 1  # its device's name, by device ID
    assert graph.count(KEY_GET, method="GET") == 1
    assert [read.key_id for read in graph.key_reads] == [wanted.id]
    assert document["keys"][0]["computer"].startswith("PC-")
    # It says what it cannot know: a key with these digits escrowed since the refresh.
    assert (document["ambiguous"], document["complete"]) == (None, False)
    assert isinstance(document["index_age_seconds"], int)
    (told,) = document["warnings"]
    assert "escrowed since then is not included" in told


def test_no_index_lists_the_tenant_as_before(cloud: Entra, graph: GraphEmulator) -> None:
    assert refresh(cloud).code == 0
    wanted = next(iter(graph.recovery_keys.values()))
    graph.clear_requests()
    outcome = cloud.find("--key-id", wanted.id[:8], "--no-index")
    assert outcome.code == 0, outcome.err
    assert json.loads(outcome.out)["index"] == {"used": [], "stale": [], "unconfirmed": []}
    assert json.loads(outcome.out)["complete"] is True
    assert graph.count(KEY_LIST, method="GET") == 6  # 30 keys, 5 a page


def test_a_key_escrowed_after_the_refresh_is_found_and_the_index_learns_it(
    cloud: Entra, graph: GraphEmulator
) -> None:
    assert refresh(cloud).code == 0
    late = graph.add_recovery_key(graph.add_device("PC-LATE"))
    outcome = cloud.find("--key-id", late.id[:8])
    assert outcome.code == 0, outcome.err
    document = json.loads(outcome.out)
    assert [key["key_id"] for key in document["keys"]] == [late.id.upper()]
    assert document["index"]["stale"] == ["cloud"]
    assert any(
        "was not in the Key ID index" in w and "index refresh" in w for w in document["warnings"]
    )
    assert "was not in the Key ID index" in outcome.err
    # The live search taught the index: the next lookup lists nothing.
    graph.clear_requests()
    again = cloud.find("--key-id", late.id[:8])
    assert again.code == 0, again.err
    assert json.loads(again.out)["index"]["used"] == ["cloud"]
    assert json.loads(again.out)["index"]["stale"] == []
    assert graph.count(KEY_LIST, method="GET") == 0
    assert graph.count(KEY_GET, method="GET") == 1


def test_a_key_deleted_from_entra_is_not_shown_and_leaves_the_index(
    cloud: Entra, graph: GraphEmulator
) -> None:
    assert refresh(cloud).code == 0
    gone = next(iter(graph.recovery_keys.values()))
    with graph.lock:
        del graph.recovery_keys[gone.id.lower()]
    graph.clear_requests()
    outcome = cloud.find("--key-id", gone.id[:8])
    assert outcome.code == 1, outcome.err
    assert json.loads(outcome.out)["keys"] == []
    assert gone.key not in outcome.out + outcome.err
    # It was tried by its ID, then the tenant was searched as without an index.
    assert graph.count(KEY_GET, method="GET") == 1
    assert graph.count(KEY_LIST, method="GET") == 6
    with sqlite3.connect(index_file(Path.home())) as db:
        left = db.execute(
            "SELECT count(*) FROM keys WHERE key_id = ?", (gone.id.replace("-", "").upper(),)
        ).fetchone()
    assert left == (0,)


def test_a_key_escrowed_after_the_refresh_with_the_same_8_digits_is_never_hidden_silently(
    cloud: Entra, graph: GraphEmulator
) -> None:
    assert refresh(cloud).code == 0
    known = next(iter(graph.recovery_keys.values()))
    twin = graph.add_recovery_key(graph.add_device("PC-TWIN"), id_prefix=known.id[:8])
    outcome = cloud.find("--key-id", known.id[:8])
    assert outcome.code == 0, outcome.err
    document = json.loads(outcome.out)
    # The index knows one key; the answer says it cannot speak for keys escrowed since.
    assert [key["key_id"] for key in document["keys"]] == [known.id.upper()]
    assert document["ambiguous"] is None
    assert document["complete"] is False
    assert document["index"]["unconfirmed"] == ["cloud"]
    assert "escrowed since then is not included" in outcome.err
    assert twin.key not in outcome.out
    # Listed live, both keys: ambiguous, for sure.
    live = cloud.find("--key-id", known.id[:8], "--no-index")
    assert sorted(key["key_id"] for key in json.loads(live.out)["keys"]) == sorted(
        [known.id.upper(), twin.id.upper()]
    )
    assert json.loads(live.out)["ambiguous"] is True


def test_a_renamed_key_shows_its_device_as_it_is_now(cloud: Entra, graph: GraphEmulator) -> None:
    assert refresh(cloud).code == 0
    key = next(iter(graph.recovery_keys.values()))
    device = next(d for d in graph.devices if d.device_id == key.device_id)
    with graph.lock:
        device.display_name = "PC-RENAMED"
    outcome = cloud.find("--key-id", key.id[:8], "--reason", "INC-1")
    assert outcome.code == 0, outcome.err
    assert [k["computer"] for k in json.loads(outcome.out)["keys"]] == ["PC-RENAMED"]
    assert trail_entries()[-1]["computer"] == "PC-RENAMED"


def test_a_computer_is_asked_of_entra_by_name_after_a_rename_and_a_reimage(
    cloud: Entra, graph: GraphEmulator
) -> None:
    assert refresh(cloud).code == 0  # the index maps PC-0007 to its old device
    old = next(device for device in graph.devices if device.display_name == "PC-0007")
    old_key = next(k for k in graph.recovery_keys.values() if k.device_id == old.device_id)
    with graph.lock:
        old.display_name = "PC-0007-OLD"  # renamed; the name went to a re-imaged machine
    reimaged = graph.add_recovery_key(graph.add_device("PC-0007"))
    graph.clear_requests()
    outcome = cloud.find("--computer", "PC-0007", "--reason", "INC-2")
    assert outcome.code == 0, outcome.err
    document = json.loads(outcome.out)
    assert [key["key_id"] for key in document["keys"]] == [reimaged.id.upper()]
    assert old_key.key not in outcome.out
    assert graph.count(DEVICES, method="GET") == 1  # the name, asked of Entra
    assert document["index"]["used"] == []
    ((entry),) = [e for e in trail_entries() if e.get("reason") == "INC-2"]
    assert (entry["key_id"], entry["computer"]) == (reimaged.id.upper(), "PC-0007")


def test_computer_lookup_of_a_device_the_index_does_not_know_searches_by_name(
    cloud: Entra, graph: GraphEmulator
) -> None:
    assert refresh(cloud).code == 0
    late = graph.add_recovery_key(graph.add_device("PC-NEW"))
    outcome = cloud.find("--computer", "PC-NEW")
    assert outcome.code == 0, outcome.err
    assert [key["key_id"] for key in json.loads(outcome.out)["keys"]] == [late.id.upper()]
    assert graph.count(DEVICES, method="GET") >= 1


def test_index_max_age_refreshes_before_a_lookup(cloud: Entra, graph: GraphEmulator) -> None:
    wanted = next(iter(graph.recovery_keys.values()))
    outcome = cloud.find("--key-id", wanted.id[:8], index_max_age="1h")
    assert outcome.code == 0, outcome.err
    assert "refreshing the Key ID index of cloud" in outcome.err
    assert json.loads(outcome.out)["index"]["used"] == ["cloud"]
    # Never while someone waits: the whole listing (6 pages, one after another); each
    # device's keys instead, 20 devices to a $batch.
    assert graph.count(KEYS + r"$", method="GET", via_batch=False) == 0
    assert graph.count(KEYS + r"$", method="GET", via_batch=True) == 30
    graph.clear_requests()
    again = cloud.find("--key-id", wanted.id[:8], index_max_age="1h")
    assert "refreshing" not in again.err
    assert graph.count(KEY_LIST, method="GET") == 0


def test_an_index_of_another_tenant_under_the_same_name_is_not_used(
    cloud: Entra, graph: GraphEmulator
) -> None:
    assert refresh(cloud).code == 0
    wanted = next(iter(graph.recovery_keys.values()))
    graph.clear_requests()
    # Same source name, the tenant named by its domain: another directory to the index.
    outcome = cloud.find("--key-id", wanted.id[:8], tenant_id=graph.tenant_domains[0])
    assert outcome.code == 0, outcome.err
    assert json.loads(outcome.out)["index"]["used"] == []
    assert graph.count(KEY_LIST, method="GET") == 6
