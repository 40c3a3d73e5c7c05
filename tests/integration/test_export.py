"""`bitkey-dir export` against the Samba DC and the Graph emulator: the backup holds every key
the directory holds, each once, with its password, and reads back (encrypted too) by Key ID.

A backup is judged by what it lets a person do when the directory is gone, so every export is
read back with `bitkey-dir find --source FILE`, not only parsed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from examples.lab.graph_emulator import GraphEmulator
from examples.lab.graph_emulator import RecoveryKey as GraphKey
from tests.command_line import Outcome, invoke, invoke_with, trail_entries
from tests.integration.fixtures import (
    ADMIN,
    BATCH,
    KEY_GET,
    KEY_LIST,
    SOURCE,
    Directory,
    Entra,
    Lab,
    ad_checks,
    day,
    only,
    read_ids,
)
from tests.integration.seed import HELPDESK, SPEC, TEMPORARY_COMPUTER, WORKSTATIONS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

pyrage = pytest.importorskip("pyrage")


def exported(path: Path) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["keys"]
    return keys


def live_keys(directory: Directory) -> dict[str, dict[str, Any]]:
    """Key ID → the record `find` prints, for every key of every computer not deleted."""
    return {
        key.key_id: directory.record(computer.name, key)
        for computer in SPEC.computers
        if not computer.delete
        for key in computer.keys
    }


def ad_export(lab: Lab, out: Path, *args: str, user: str = ADMIN, **settings: object) -> Outcome:
    config = lab.config(user=user, **settings)
    return invoke_with(
        config, "export", "--source", "lab", "--output", str(out), *args, **ad_checks()
    )


# -- Active Directory -----------------------------------------------------------------------------


def test_ad_export_as_domain_admin_holds_exactly_the_directory_keys(
    lab: Lab, samba_dc: Directory, tmp_path: Path
) -> None:
    out = tmp_path / "ad.json"
    done = ad_export(lab, out)
    assert done.code == 0, done.err
    expected = live_keys(samba_dc)
    assert done.out == f"{len(expected)} keys from lab written to {out} (json)\n"
    assert "clear text" in done.err
    records = exported(out)
    ids = Counter(record["key_id"] for record in records)
    assert [key_id for key_id, n in ids.items() if n > 1] == []  # no duplicates
    assert set(ids) == set(expected)
    for record in records:
        assert record == expected[record["key_id"]]
    # Keys of the deleted computer are not in it (export has no --include-deleted).
    deleted = [key.key_id for c in SPEC.computers if c.delete for key in c.keys]
    assert deleted
    assert not set(deleted) & set(ids)
    # The backup answers a lookup by Key ID with the same record (from the file now).
    key = samba_dc.keys("LT002")[0]  # the renamed computer: the current name is kept
    found = invoke(
        "find", "--key-id", key.key_id[:8], "--source", str(out), "--format", "json", **ad_checks()
    )
    assert found.code == 0, found.err
    assert found.keys == [{**samba_dc.record("LT002", key), "source": str(out)}]


@pytest.mark.parametrize("page_size", [1, 3, 5])
def test_ad_export_over_many_small_pages_loses_and_doubles_nothing(
    lab: Lab, samba_dc: Directory, tmp_path: Path, page_size: int
) -> None:
    # The next page is asked for before this one is handed on: every page boundary, the last
    # page (full or not) and a page of one must still give each key exactly once.
    out = tmp_path / "ad.json"
    done = ad_export(lab, out, page_size=page_size)
    assert done.code == 0, done.err
    records = exported(out)
    expected = live_keys(samba_dc)
    assert len(records) == len(expected) > 2 * page_size
    assert sorted(r["key_id"] for r in records) == sorted(expected)
    assert all(record == expected[record["key_id"]] for record in records)


def test_ad_export_with_include_deleted_adds_the_deleted_computers_keys(
    lab: Lab, samba_dc: Directory, tmp_path: Path
) -> None:
    out = tmp_path / "ad.json"
    done = ad_export(lab, out, "--include-deleted")
    assert done.code == 0, done.err
    deleted = {
        key.key_id: samba_dc.record(computer.name, key)
        for computer in SPEC.computers
        if computer.delete
        for key in computer.keys
    }
    assert deleted
    assert all(record["deleted"] is True for record in deleted.values())
    expected = {**live_keys(samba_dc), **deleted}
    records = [
        record
        for record in exported(out)
        if not (record["deleted"] and record["computer"].startswith(TEMPORARY_COMPUTER))
    ]
    ids = Counter(record["key_id"] for record in records)
    assert set(ids.values()) == {1}
    assert set(ids) == set(expected)
    for record in records:
        # A deleted key names its computer and the OU it was deleted from, as find does.
        assert record == expected[record["key_id"]]
    name = next(c.name for c in SPEC.computers if c.delete)
    found = invoke(
        "find",
        "--computer",
        name,
        "--include-deleted",
        "--source",
        str(out),
        "--format",
        "json",
        **ad_checks(),
    )
    assert found.code == 0, found.err
    assert {k["key_id"] for k in found.keys} == {
        key_id for key_id, record in deleted.items() if record["computer"] == name
    }


def test_include_deleted_as_the_helpdesk_exports_the_live_keys_it_sees(
    lab: Lab, samba_dc: Directory, tmp_path: Path
) -> None:
    # Deleted Objects is closed to a delegated helpdesk: not a failure, just nothing more.
    with_deleted, without = tmp_path / "with.json", tmp_path / "without.json"
    first = ad_export(lab, with_deleted, "--include-deleted", user="helpdesk")
    second = ad_export(lab, without, user="helpdesk")
    assert (first.code, second.code) == (3, 3)  # as above: some passwords are not readable
    assert exported(with_deleted) == exported(without)
    assert not any(record["deleted"] for record in exported(with_deleted))


def test_an_export_is_one_line_in_the_access_trail(
    lab: Lab, samba_dc: Directory, tmp_path: Path, trail_file: Path
) -> None:
    out = tmp_path / "ad.json"
    done = ad_export(lab, out, "--reason", "CHG-1042 quarterly backup")
    assert done.code == 0, done.err
    (entry,) = trail_entries()
    assert entry["action"] == "export"
    assert entry["keys"] == len(live_keys(samba_dc))
    assert entry["source"] == "lab"
    assert entry["output"] == str(out.resolve())
    assert entry["protection"] == "none"
    assert entry["reason"] == "CHG-1042 quarterly backup"
    assert entry["principal"]  # the directory account the keys were read as
    text = trail_file.read_text(encoding="utf-8")
    assert not [r for r in exported(out) if r["recovery_password"] in text]
    listed = invoke("trail", **ad_checks())
    assert listed.code == 0, listed.err
    assert f"export of {entry['keys']} keys to {out.resolve()}  lab  CHG-1042" in listed.out


def _requiring_reasons(config: Path) -> Path:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[defaults]\n", "[defaults]\nrequire_reason = true\n", 1))
    return config


def test_with_require_reason_an_export_needs_one_and_a_trail(
    lab: Lab, tmp_path: Path, trail_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _requiring_reasons(lab.config(user=ADMIN))
    out = tmp_path / "ad.json"
    args = ("--config", str(config), "export", "-s", "lab", "-o", str(out))
    refused = invoke(*args, **ad_checks())
    assert refused.code == 2
    assert "requires a reason for exporting keys" in refused.err
    # A trail that cannot be written blocks the export: the keys never reach the disk.
    blocker = tmp_path / "a-file"  # a file where the trail's folder should be (root or not)
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("BITKEY_DIR_TRAIL", str(blocker / "trail.jsonl"))
    blocked = invoke(*args, "--reason", "CHG-7", **ad_checks())
    assert blocked.code == 4, blocked.err
    assert "not writing the export" in blocked.err
    assert list(tmp_path.glob("*ad.json*")) == []
    assert not trail_file.exists()


def test_without_require_reason_an_unwritable_trail_is_a_warning(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("BITKEY_DIR_TRAIL", str(blocker / "trail.jsonl"))
    out = tmp_path / "ad.json"
    done = ad_export(lab, out)
    assert done.code == 0, done.err
    assert "cannot write the access trail" in done.err
    assert out.exists()


def helpdesk_readable(computer: str) -> bool:
    spec = next(c for c in SPEC.computers if c.name == computer)
    return spec.ou.endswith(WORKSTATIONS)


def test_ad_export_as_helpdesk_has_the_workstation_passwords(
    lab: Lab, samba_dc: Directory, tmp_path: Path
) -> None:
    out = tmp_path / "ad.json"
    done = ad_export(lab, out, user="helpdesk")
    assert done.code == 3, done.err  # written, but a backup without passwords is a failure
    records = {record["key_id"]: record for record in exported(out)}
    assert len(records) == len(exported(out))  # no duplicates
    expected = live_keys(samba_dc)
    readable = {
        key.key_id
        for c in SPEC.computers
        if not c.delete and helpdesk_readable(c.name)
        for key in c.keys
    }
    assert readable
    # Every key below OU=Workstations (OU=Laptops included), with its password.
    for key_id in readable:
        assert records[key_id] == expected[key_id]
    # What happens to the others: the helpdesk sees the recovery objects (generic read on
    # OU=Corp and OU=Lab) but not their passwords, and the export keeps them with a null
    # password, counted in the summary like any other key.
    unreadable = set(expected) - readable
    assert unreadable
    assert set(records) == set(expected)
    for key_id in unreadable:
        assert records[key_id] == {**expected[key_id], "recovery_password": None}
    assert done.out == f"{len(expected)} keys from lab written to {out} (json)\n"


def test_ad_export_warns_about_keys_it_could_not_read_the_password_of(
    lab: Lab, tmp_path: Path
) -> None:
    out = tmp_path / "ad.json"
    done = ad_export(lab, out, user="helpdesk")
    assert done.code == 3, done.err
    missing = [record for record in exported(out) if record["recovery_password"] is None]
    assert missing
    assert (
        f"bitkey-dir: error: {len(missing)} of {len(exported(out))} keys were exported "
        "WITHOUT their recovery password"
    ) in done.err


def test_encrypted_ad_export_reads_back_with_the_identity(
    lab: Lab, samba_dc: Directory, tmp_path: Path
) -> None:
    identity = pyrage.x25519.Identity.generate()
    identity_file = tmp_path / "dr.key"
    identity_file.write_text(f"{identity}\n")
    out = tmp_path / "ad.json.age"
    done = ad_export(lab, out, "--encrypt-to", str(identity.to_public()))
    assert done.code == 0, done.err
    assert done.out.endswith("(age-encrypted json)\n")
    assert "clear text" not in done.err
    data = out.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n")
    assert b"recovery_password" not in data
    for record in live_keys(samba_dc).values():
        assert record["recovery_password"].encode() not in data
        assert record["key_id"].encode() not in data
    key = samba_dc.keys("WS001")[0]
    lookup = ("find", "--key-id", key.key_id[:8], "--source", str(out), "--format", "json")
    found = invoke(*lookup, "--identity", str(identity_file), **ad_checks())
    assert found.code == 0, found.err
    assert found.keys == [{**samba_dc.record("WS001", key), "source": str(out)}]
    # Without the identity: exit 3, not "not found".
    refused = invoke(*lookup, **ad_checks())
    assert refused.code == 3
    assert "could not be decrypted" in refused.err


def test_ad_export_with_a_wrong_bind_password_is_exit_3_and_writes_nothing(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = lab.config(user="helpdesk", set_password=False)
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "Wr0ng!Secret-4242")
    out = tmp_path / "out" / "ad.json"
    out.parent.mkdir()
    done = invoke_with(config, "export", "-s", "lab", "-o", str(out), **ad_checks())
    assert (done.code, done.out) == (3, "")
    assert list(out.parent.iterdir()) == []
    assert HELPDESK.password not in done.err


# -- Entra ID -------------------------------------------------------------------------------------

DEVICES = 13
KEYS_PER_DEVICE = 5  # 65 keys: four $batch requests of up to 20


@pytest.fixture
def tenant(entra: Entra, graph: GraphEmulator) -> dict[str, tuple[GraphKey, str]]:
    """65 keys on 13 devices (and a device without one), listed 9 to a page.

    Key ID (as Graph has it, lower case) → (key, device name).
    """
    entra.daemon("BitlockerKey.Read.All", "Device.Read.All")
    graph.recovery_keys_page_size = 9
    keys: dict[str, tuple[GraphKey, str]] = {}
    for d in range(DEVICES):
        name = f"PC-{d:04d}"
        device = graph.add_device(name)
        for k in range(KEYS_PER_DEVICE):
            key = graph.add_recovery_key(
                device,
                created=day(d * KEYS_PER_DEVICE + k),
                volume_type="fixedDataVolume" if k % 2 else "operatingSystemVolume",
            )
            keys[key.id] = (key, name)
    graph.add_device("PC-EMPTY")
    return keys


def entra_export(entra: Entra, out: Path, *args: str) -> Outcome:
    config = entra.config()
    return invoke_with(config, "export", "-s", SOURCE, "-o", str(out), *args, **entra.checks)


def test_entra_export_under_throttling_holds_each_key_once(
    entra: Entra, graph: GraphEmulator, tenant: dict[str, tuple[GraphKey, str]], tmp_path: Path
) -> None:
    # Throttled: list pages (twice in a row), one whole $batch, and 25 keys inside batches.
    graph.add_fault(KEY_LIST, status=429, times=2, retry_after=0, method="GET", in_batch=False)
    graph.add_fault(BATCH, status=429, times=1, retry_after="0.2", method="POST", in_batch=False)
    graph.add_fault(KEY_GET, status=429, times=25, retry_after=0, in_batch=True)
    out = tmp_path / "entra.json"
    done = entra_export(entra, out)
    assert done.code == 0, done.err
    assert done.out == f"{len(tenant)} keys from {SOURCE} written to {out} (json)\n"
    assert [f.served for f in graph.faults] == [2, 1, 25]  # every fault was met

    records = exported(out)
    ids = Counter(record["key_id"] for record in records)
    assert [key_id for key_id, n in ids.items() if n > 1] == []
    assert set(ids) == {key_id.upper() for key_id in tenant}
    for record in records:
        key, _ = tenant[record["key_id"].lower()]
        assert record["recovery_password"] == key.key
        assert record["device_id"] == key.device_id
        assert record["volume_type"] == key.volume_type
        assert record["created"] == key.created.isoformat()
        assert record["source"] == SOURCE
        assert record["deleted"] is False

    # Graph's audit log: each key's value read once, none twice, none missed.
    reads = Counter(read_ids(graph))
    assert sorted(reads) == sorted(tenant)
    assert set(reads.values()) == {1}
    # The throttled items were asked again, and only they.
    items = only(graph, KEY_GET, via_batch=True)
    assert [r.status for r in items].count(429) == 25
    assert len(items) == len(tenant) + 25
    assert only(graph, KEY_GET, via_batch=False) == []
    listed = only(graph, KEY_LIST)
    assert [r.status for r in listed].count(200) == -(-len(tenant) // 9)  # every page once

    # And the backup answers a lookup by Key ID.
    key, _ = next(iter(tenant.values()))
    found = invoke(
        "find", "--key-id", key.id[:8], "--source", str(out), "--format", "json", **entra.checks
    )
    assert found.code == 0, found.err
    assert [k["recovery_password"] for k in found.keys] == [key.key]


def test_entra_export_keeps_the_device_names(
    entra: Entra, graph: GraphEmulator, tenant: dict[str, tuple[GraphKey, str]], tmp_path: Path
) -> None:
    out = tmp_path / "entra.csv"
    done = entra_export(entra, out, "--format", "csv")
    assert done.code == 0, done.err
    found = invoke(
        "find", "--computer", "PC-0007", "--source", str(out), "--format", "json", **entra.checks
    )
    assert found.code == 0, found.err
    expected = {key.id.upper() for key, name in tenant.values() if name == "PC-0007"}
    assert set(found.key_ids) == expected
    assert {k["computer"] for k in found.keys} == {"PC-0007"}


def test_endless_throttling_fails_the_entra_export_and_writes_nothing(
    entra: Entra, graph: GraphEmulator, tenant: dict[str, tuple[GraphKey, str]], tmp_path: Path
) -> None:
    graph.add_fault(KEY_GET, status=429, times=100_000, retry_after="0.05", in_batch=True)
    out = tmp_path / "out" / "entra.json"
    out.parent.mkdir()
    done = entra_export(
        entra, out, "--encrypt-to", str(pyrage.x25519.Identity.generate().to_public())
    )
    assert (done.code, done.out) == (4, "")
    assert "throttling" in done.err
    assert list(out.parent.iterdir()) == []
    assert graph.key_reads == []


def test_an_app_that_may_only_list_keys_cannot_export_them(
    entra: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    entra.daemon("BitlockerKey.ReadBasic.All", "Device.Read.All")
    device = graph.add_device("PC-0042")
    for n in range(3):
        graph.add_recovery_key(device, created=day(n))
    out = tmp_path / "out" / "entra.json"
    out.parent.mkdir()
    done = entra_export(entra, out)
    assert (done.code, done.out) == (3, "")
    assert "BitlockerKey.Read.All" in done.err
    assert list(out.parent.iterdir()) == []
    assert graph.key_reads == []


def test_entra_keys_stream_with_a_bounded_read_ahead(
    entra: Entra,
    graph: GraphEmulator,
    recwarn: pytest.WarningsRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Memory stays flat only if the reads run a bounded distance ahead of the writer: a
    # reader that stops after one key must leave most of a large tenant unread.
    from bitkey_dir.runtime.config import load_config
    from bitkey_dir.sources.entra.graph import BATCH_LIMIT, BATCHES_AHEAD, CONCURRENT_BATCHES
    from bitkey_dir.sources.registry import open_sources

    entra.daemon("BitlockerKey.Read.All", "Device.Read.All")
    graph.recovery_keys_page_size = 50
    device = graph.add_device("PC-BIG")
    total = 40 * BATCH_LIMIT
    for n in range(total):
        graph.add_recovery_key(device, created=day(n))
    (source,) = open_sources(load_config(entra.config()), [SOURCE])
    stream = source.iter_keys(lambda message: None)  # type: ignore[attr-defined]
    first = next(stream)
    assert first.computer == "PC-BIG"
    stream.close()  # the caller gives up: the stream's tasks are cancelled, not leaked
    source.close()
    batches = only(graph, BATCH)
    assert 1 <= len(batches) <= BATCHES_AHEAD + 1 + CONCURRENT_BATCHES
    assert len(read_ids(graph)) < total // 4
    assert [str(w.message) for w in recwarn if "never" in str(w.message)] == []
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_include_deleted_is_refused_for_a_source_without_deleted_objects(
    entra: Entra, tenant: dict[str, tuple[GraphKey, str]], tmp_path: Path
) -> None:
    out = tmp_path / "entra.json"
    done = entra_export(entra, out, "--include-deleted")
    assert done.code == 2, done.err
    assert "keeps no keys of deleted computers" in done.err
    assert not out.exists()
