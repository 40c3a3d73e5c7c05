"""`bitkey-dir audit` against the Samba DC and the Graph emulator: exactly the computers
without a key are flagged, with least privilege, and no password is ever read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import Outcome, invoke_with
from tests.integration.fixtures import (
    GRAPH,
    KEY_GET,
    SOURCE,
    Directory,
    Entra,
    Lab,
    ad_checks,
)
from tests.integration.seed import LAB, LAPTOPS, SERVERS, SPEC, WORKSTATIONS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]


def audit(config: Path, *args: str, source: str = "lab") -> Outcome:
    return invoke_with(config, "audit", "--source", source, *args, **ad_checks())


def expected_ad(directory: Directory) -> dict[str, tuple[int, str | None]]:
    """Computer name → (keys, OU) for every live computer the seed made, and the DC itself."""
    base = directory.base_dn
    expected: dict[str, tuple[int, str | None]] = {}
    for spec in SPEC.computers:
        if spec.delete:
            continue
        expected[spec.rename_to or spec.name] = (len(spec.keys), f"{spec.ou},{base}")
    expected[directory.dc.hostname.upper()] = (0, f"OU=Domain Controllers,{base}")
    return expected


@pytest.mark.parametrize("user", ["plain", "helpdesk"])
def test_ad_audit_counts_every_computer_as_a_plain_user(
    lab: Lab, samba_dc: Directory, user: str
) -> None:
    found = audit(lab.config(user=user), "--format", "json")
    assert found.code == 0, found.err
    computers = found.document["computers"]
    got = {c["computer"].upper(): (c["keys"], c["location"]) for c in computers}
    assert got == {name.upper(): value for name, value in expected_ad(samba_dc).items()}
    assert {c["computer"] for c in computers if c["status"] == "missing"} == {
        "NOKEY01",
        samba_dc.dc.hostname.upper(),
    }
    assert all(
        set(c) == {"source", "computer", "location", "keys", "newest", "status"} for c in computers
    )
    ws001 = next(c for c in computers if c["computer"] == "WS001")
    newest = max(key.created for key in samba_dc.keys("WS001"))
    assert dt.datetime.fromisoformat(ws001["newest"]) == newest
    # Missing first: the report leads with what needs doing.
    assert [c["status"] for c in computers[:2]] == ["missing", "missing"]
    summary = found.document["summary"]
    assert (summary["computers"], summary["missing"], summary["ok"]) == (len(got), 2, len(got) - 2)
    groups = {g["group"]: g for g in summary["groups"]}
    base = samba_dc.base_dn
    assert groups[f"{WORKSTATIONS},{base}"]["missing"] == 1
    assert groups[f"{LAPTOPS},{base}"]["coverage"] == 100.0
    assert groups[f"OU=Domain Controllers,{base}"]["coverage"] == 0.0
    assert {f"{SERVERS},{base}", f"{LAB},{base}"} <= set(groups)


def test_ad_stale_days_and_fail_on_missing(lab: Lab, samba_dc: Directory) -> None:
    config = lab.config(user="plain")
    # Every seeded key is from 2023 or 2024: all are stale by a 1-day measure...
    stale = audit(config, "--format", "json", "--stale-days", "1")
    statuses = {c["computer"]: c["status"] for c in stale.document["computers"]}
    assert statuses["WS001"] == "stale"
    assert statuses["NOKEY01"] == "missing"
    assert stale.document["summary"]["stale_days"] == 1
    # ...and none by a 100-year one.
    fresh = audit(config, "--format", "json", "--stale-days", "36500")
    assert "stale" not in {c["status"] for c in fresh.document["computers"]}
    monitoring = audit(config, "--format", "json", "--fail-on-missing")
    assert monitoring.code == 1


def test_ad_audit_table_and_csv(lab: Lab, samba_dc: Directory) -> None:
    config = lab.config(user="plain")
    table = audit(config, "--format", "table")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["STATUS", "COMPUTER", "KEYS", "NEWEST", "LOCATION"]
    assert lines[1].split()[:3] == ["missing", samba_dc.dc.hostname.upper(), "0"]
    assert "WS001" not in table.out  # only problems, unless --all
    assert "computers: " in table.out
    assert "without a key" in table.out
    assert "WS001" in audit(config, "--format", "table", "--all").out
    csv = audit(config, "--format", "csv")
    assert csv.out.splitlines()[0] == "source,computer,location,keys,newest,status"
    assert len(csv.out.splitlines()) == 1 + len(expected_ad(samba_dc))


def test_a_file_source_cannot_be_audited(lab: Lab) -> None:
    config = lab.config()
    found = invoke_with(config, "audit", "--source", str(Path("examples/keys")), **ad_checks())
    assert found.code == 2
    assert "only directory sources" in found.err


def test_an_unreachable_dc_is_exit_4(lab: Lab) -> None:
    config = lab.config(servers=["ldaps://127.0.0.1:1"], timeout=2)
    found = audit(config, "--format", "json")
    assert found.code == 4
    assert "connection refused" in found.err


# -- Entra ID -------------------------------------------------------------------------------------


def test_entra_audit_needs_only_read_basic_and_reads_no_key(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon("BitlockerKey.ReadBasic.All", "Device.Read.All")
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    two = graph.add_device("PC-TWO")
    first = graph.add_recovery_key(two, created=old)
    second = graph.add_recovery_key(two)
    graph.add_recovery_key(graph.add_device("PC-OLD"), created=old)
    graph.add_device("PC-NONE")
    graph.add_device("MAC-01", operating_system="MacMDM")  # not a Windows device
    config = entra.config()
    found = invoke_with(
        config, "audit", "--source", SOURCE, "-f", "json", "--stale-days", "365", **entra.checks
    )
    assert found.code == 0, found.err
    got = {c["computer"]: (c["keys"], c["status"]) for c in found.document["computers"]}
    assert got == {"PC-TWO": (2, "ok"), "PC-OLD": (1, "stale"), "PC-NONE": (0, "missing")}
    newest = next(c for c in found.document["computers"] if c["computer"] == "PC-TWO")["newest"]
    assert dt.datetime.fromisoformat(newest) == max(first.created, second.created)
    assert graph.key_reads == []
    assert graph.count(KEY_GET) == 0
    assert graph.count(GRAPH) == 2  # devices listed once, keys listed once


def test_an_ad_audit_that_sees_no_recovery_object_says_it_may_be_wrong(
    lab: Lab, samba_dc: Directory
) -> None:
    # Below OU=Domain Controllers there is a computer and no key: what an account without
    # the right to list recovery objects would see everywhere.
    config = lab.config(user="plain", base_dn=f"OU=Domain Controllers,{samba_dc.base_dn}")
    found = audit(config, "--format", "json")
    assert found.code == 0, found.err
    assert found.document["summary"]["missing"] == 1
    assert "not one recovery object visible to" in found.err
    assert "coverage is then not to be trusted" in found.err
    # Where it sees keys, it says nothing of the kind.
    assert "not one recovery object" not in audit(lab.config(user="plain"), "-f", "json").err


def test_an_entra_audit_that_sees_no_key_says_it_may_be_wrong(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon("BitlockerKey.ReadBasic.All", "Device.Read.All")
    graph.add_device("PC-1")
    graph.add_device("PC-2")
    found = invoke_with(entra.config(), "audit", "--source", SOURCE, "-f", "json", **entra.checks)
    assert found.code == 0, found.err
    assert found.document["summary"]["coverage"] == 0.0
    assert "not one recovery key visible to" in found.err
