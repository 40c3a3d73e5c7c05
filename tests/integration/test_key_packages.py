"""Key packages (msFVE-KeyPackage) against the Samba DC and the Graph emulator.

`find --key-package FILE` writes the bytes the lab seeded, once, mode 0600, recorded in the
trail by path; `export --key-packages` carries them in base64 and reads back through the file
source. Every search the AD source makes is recorded, to show that the confidential attribute
is asked for only then. The package itself must never reach stdout, stderr or the trail.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir.core.records import KEY_FIELDS, PACKAGE_FIELDS
from bitkey_dir.sources.ad import reader as ad_reader
from examples.lab.graph_emulator import GraphEmulator
from examples.lab.samba_dc import RecoveryKey
from tests.command_line import Outcome, invoke, invoke_with, trail_entries
from tests.integration.fixtures import (
    ADMIN,
    SOURCE,
    Directory,
    Entra,
    Lab,
    ad_checks,
    day,
)
from tests.integration.seed import COLLIDING_PREFIX, SPEC, TEMPORARY_COMPUTER

pytestmark = pytest.mark.integration

KEY_PACKAGE = "msfve-keypackage"


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The attributes of every search the AD source makes (lower case)."""
    seen: list[tuple[str, ...]] = []
    real = ad_reader.paged_search

    def spy(connection: Any, base: str, search_filter: str, attributes: Any, **kw: Any) -> Any:
        seen.append(tuple(str(a).lower() for a in attributes))
        return real(connection, base, search_filter, attributes, **kw)

    monkeypatch.setattr(ad_reader, "paged_search", spy)
    return seen


def asked_for_packages(asked: list[tuple[str, ...]]) -> int:
    return sum(1 for attributes in asked if KEY_PACKAGE in attributes)


def seeded(computer: str) -> list[RecoveryKey]:
    """A computer's keys (original name) that carry a key package."""
    for spec in SPEC.computers:
        if spec.name == computer:
            return [key for key in spec.keys if key.key_package is not None]
    raise KeyError(computer)


def every_package() -> list[bytes]:
    return [
        key.key_package
        for computer in SPEC.computers
        for key in computer.keys
        if key.key_package is not None
    ]


def assert_never_shown(*texts: str) -> None:
    """No key package, in base64 or hex, in any of ``texts``."""
    joined = "\n".join(texts)
    for package in every_package():
        assert base64.b64encode(package).decode() not in joined
        assert package.hex() not in joined.lower()
        assert base64.b64encode(package[:30]).decode() not in joined


def find(lab: Lab, *args: str, user: str = ADMIN) -> Outcome:
    return lab.find(*args, user=user)


# -- find --key-package ---------------------------------------------------------------------------


def test_the_written_file_holds_the_seeded_bytes_and_the_trail_says_where(
    lab: Lab, samba_dc: Directory, trail_file: Path, tmp_path: Path, asked: list[tuple[str, ...]]
) -> None:
    key = seeded("WS001")[0]
    out = tmp_path / "keypackage.bin"
    found = find(lab, "--key-id", key.key_id, "--key-package", str(out))
    assert found.code == 0, found.err
    # The password shows as it always does.
    computer = next(c for c in SPEC.computers if key in c.keys)
    assert found.keys == [samba_dc.record(computer.name, key)]
    assert out.read_bytes() == key.key_package
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"key package written to {out}" in found.err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    (entry,) = trail_entries()
    assert (entry["key_id"], entry["key_package"]) == (key.key_id, str(out))
    assert_never_shown(found.out, found.err, trail_file.read_text())
    assert asked_for_packages(asked) >= 1


def test_an_unambiguous_prefix_is_enough(lab: Lab, tmp_path: Path) -> None:
    key = seeded("LT001")[0]
    out = tmp_path / "lt001.bin"
    found = find(lab, "--key-id", key.key_id[:8], "--key-package", str(out))
    assert found.code == 0, found.err
    assert out.read_bytes() == key.key_package


def test_a_prefix_naming_two_keys_is_refused_and_reveals_nothing(
    lab: Lab, trail_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "keypackage.bin"
    found = find(lab, "--key-id", COLLIDING_PREFIX, "--key-package", str(out))
    assert (found.code, found.out) == (2, "")
    (line,) = found.err.splitlines()
    assert line.startswith("bitkey-dir: error: --key-package:")
    assert "matches 2 keys" in line
    assert not out.exists()
    assert trail_entries() == []


def test_an_existing_file_is_never_replaced_and_the_directory_is_not_asked(
    lab: Lab, trail_file: Path, tmp_path: Path, asked: list[tuple[str, ...]]
) -> None:
    out = tmp_path / "keypackage.bin"
    out.write_bytes(b"kept")
    found = find(lab, "--key-id", seeded("WS001")[0].key_id, "--key-package", str(out))
    assert (found.code, found.out) == (2, "")
    assert "exists" in found.err
    assert out.read_bytes() == b"kept"
    assert asked == []
    assert trail_entries() == []


def test_without_rights_on_the_package_it_is_3_nothing_is_shown_and_the_read_is_in_the_trail(
    lab: Lab, trail_file: Path, tmp_path: Path
) -> None:
    # The helpdesk may read passwords below OU=Workstations, not key packages.
    key = seeded("WS001")[0]
    out = tmp_path / "keypackage.bin"
    found = find(lab, "--key-id", key.key_id, "--key-package", str(out), user="helpdesk")
    assert (found.code, found.out) == (3, "")
    assert "msFVE-KeyPackage" in found.err
    assert "without --key-package" in found.err
    assert not out.exists()
    # The DC handed the password over (its own audit may log that): the trail says so,
    # and that it was not shown.
    (entry,) = trail_entries()
    assert (entry["key_id"], entry["shown"], entry["source"]) == (key.key_id, False, "lab")
    assert "key_package" not in entry
    assert key.password not in trail_file.read_text()
    listed = invoke("trail")
    assert "(read, not shown)" in listed.out


def test_a_key_escrowed_without_a_package_is_3(lab: Lab, tmp_path: Path) -> None:
    (odd,) = next(c for c in SPEC.computers if c.name == "ODD01").keys
    assert odd.key_package is None
    out = tmp_path / "keypackage.bin"
    found = find(lab, "--key-id", odd.key_id, "--key-package", str(out))
    assert (found.code, found.out) == (3, "")
    assert "without a key package" in found.err
    assert not out.exists()


def test_ordinary_lookups_and_exports_never_ask_for_the_package(
    lab: Lab, tmp_path: Path, asked: list[tuple[str, ...]]
) -> None:
    key = seeded("WS001")[0]
    assert find(lab, "--key-id", key.key_id).code == 0
    assert find(lab, "--key-id", key.key_id[:8], "--include-deleted").code == 0
    assert find(lab, "--computer", "LT00*", "--include-deleted").code == 0
    out = tmp_path / "plain.json"
    config = lab.config(user=ADMIN)
    done = invoke_with(
        config, "export", "-s", "lab", "-o", str(out), "--include-deleted", **ad_checks()
    )
    assert done.code == 0, done.err
    assert asked
    assert asked_for_packages(asked) == 0
    assert all(tuple(record) == KEY_FIELDS for record in json.loads(out.read_text())["keys"])


# -- export --key-packages ------------------------------------------------------------------------


def export(lab: Lab, out: Path, *args: str) -> Outcome:
    config = lab.config(user=ADMIN)
    return invoke_with(
        config, "export", "-s", "lab", "-o", str(out), "--key-packages", *args, **ad_checks()
    )


def expected_packages(*, include_deleted: bool = False) -> dict[str, str | None]:
    return {
        key.key_id: base64.b64encode(key.key_package).decode() if key.key_package else None
        for computer in SPEC.computers
        if include_deleted or not computer.delete
        for key in computer.keys
    }


def check_export(records: Iterable[dict[str, Any]], *, include_deleted: bool = False) -> None:
    # Computers other tests made and deleted stay in Deleted Objects with their keys.
    got = {
        record["key_id"]: record["key_package"] or None
        for record in records
        if not record["computer"].startswith(TEMPORARY_COMPUTER)
    }
    assert got == expected_packages(include_deleted=include_deleted)


def test_json_export_holds_the_packages_and_reads_back(
    lab: Lab, trail_file: Path, tmp_path: Path, asked: list[tuple[str, ...]]
) -> None:
    out = tmp_path / "keys.json"
    done = export(lab, out, "--include-deleted")
    assert done.code == 0, done.err
    assert "with their key package" in done.out
    # ODD01's key has none: said once, with the count.
    assert done.err.count("without a key package") == 1
    assert "1 of " in done.err
    records = json.loads(out.read_text())["keys"]
    assert all(tuple(record) == PACKAGE_FIELDS for record in records)
    check_export(records, include_deleted=True)
    assert asked_for_packages(asked) >= 1
    (entry,) = trail_entries()
    assert (entry["action"], entry["key_packages"]) == ("export", True)
    assert_never_shown(done.out, done.err, trail_file.read_text())

    # The export is a source: find writes the same bytes from it.
    key = seeded("SRV001")[0]
    package = tmp_path / "from-export.bin"
    found = invoke(
        "find",
        "--source",
        str(out),
        "--key-id",
        key.key_id,
        "--key-package",
        str(package),
        "--format",
        "json",
        **ad_checks(),
    )
    assert found.code == 0, found.err
    assert package.read_bytes() == key.key_package


def test_csv_export_holds_the_packages_and_reads_back(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "keys.csv"
    done = export(lab, out, "--format", "csv")
    assert done.code == 0, done.err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == PACKAGE_FIELDS
    # A base64 cell that starts with "+" is guarded against spreadsheets; the file source
    # takes the guard off again.
    for row in rows:
        row["key_package"] = row["key_package"].removeprefix("'")
    check_export(rows)
    key = seeded("LAB001")[0]
    package = tmp_path / "from-csv.bin"
    found = invoke(
        "find",
        "--source",
        str(out),
        "--key-id",
        key.key_id,
        "--key-package",
        str(package),
        "--format",
        "json",
        **ad_checks(),
    )
    assert found.code == 0, found.err
    assert package.read_bytes() == key.key_package


# -- Entra ID ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_kiota_registries")
def test_entra_stores_no_packages_and_says_so_once(
    entra: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    entra.daemon()
    device = graph.add_device("PC-0001")
    for n in range(3):
        graph.add_recovery_key(device, created=day(n))
    out = tmp_path / "entra.json"
    config = entra.config()
    done = invoke_with(
        config, "export", "-s", SOURCE, "-o", str(out), "--key-packages", **entra.checks
    )
    assert done.code == 0, done.err
    assert done.err.count("stores no key packages") == 1
    records = json.loads(out.read_text())["keys"]
    assert len(records) == 3
    assert [record["key_package"] for record in records] == [None, None, None]

    key = records[0]["key_id"]
    package = tmp_path / "entra.bin"
    reads = len(graph.key_reads)
    found = invoke_with(config, "find", "-k", key, "--key-package", str(package), **entra.checks)
    assert (found.code, found.out) == (3, "")
    assert "Microsoft Entra ID stores no key packages" in found.err
    assert "nothing was read" in found.err
    assert not package.exists()
    # Refused before asking: Entra read (and audited) no key value, so there is no read
    # without a trail line.
    assert len(graph.key_reads) == reads
    assert [entry.get("action") for entry in trail_entries()] == ["export"]


@pytest.mark.usefixtures("fresh_kiota_registries")
def test_with_entra_and_an_export_the_package_comes_from_the_export_and_entra_is_not_asked(
    entra: Entra, graph: GraphEmulator, tmp_path: Path
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    export = tmp_path / "keys.json"
    record = {
        "source": "lab",
        "computer": "PC-0042",
        "key_id": key.id.upper(),
        "recovery_password": key.key,
        "key_package": base64.b64encode(b"package of PC-0042").decode(),
    }
    export.write_text(json.dumps({"keys": [record]}))
    out = tmp_path / "keypackage.bin"
    config = entra.config()
    found = invoke_with(
        config,
        "find",
        "-s",
        SOURCE,
        "-s",
        str(export),
        "-k",
        key.id,
        "--key-package",
        str(out),
        "-f",
        "key",
        **entra.checks,
    )
    assert found.code == 0, found.err
    assert found.out == key.key + "\n"
    assert out.read_bytes() == b"package of PC-0042"
    assert f"{SOURCE}: not asked: Microsoft Entra ID stores no key packages" in found.err
    assert graph.key_reads == []  # Entra read nothing, so its audit log has nothing
    (entry,) = trail_entries()
    assert (entry["source"], entry["key_package"]) == (str(export), str(out))
