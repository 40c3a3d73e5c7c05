"""A base_dn the DC does not have is a failing source, never "no key", "0 computers" or
"healthy": the Samba DC answers a search under it with noSuchObject, which must not read as
an empty directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitkey_dir import Client
from bitkey_dir.core.errors import ExitCode
from tests.command_line import Outcome, invoke_with
from tests.integration.fixtures import ADMIN, Directory, Lab, ad_checks

pytestmark = pytest.mark.integration

MISTYPED = "DC=bitkey,DC=tset"
NO_SUCH_OU = "OU=Wrkstations,OU=Corp,DC=bitkey,DC=test"


def run(config: Path, *args: str) -> Outcome:
    return invoke_with(config, *args, **ad_checks())


def assert_names_the_base(outcome: Outcome, base: str, naming: str) -> None:
    assert outcome.code == 4, (outcome.code, outcome.out, outcome.err)
    assert f'base_dn "{base}" does not exist' in outcome.err, outcome.err
    assert f"the domain's naming context is {naming}" in outcome.err, outcome.err
    assert "No recovery key found" not in outcome.err or "not every source answered" in outcome.err


@pytest.mark.parametrize("base", [MISTYPED, NO_SUCH_OU])
def test_find_by_key_id_and_by_computer_fail_naming_the_base(
    lab: Lab, samba_dc: Directory, base: str
) -> None:
    config = lab.config(user=ADMIN, base_dn=base)
    key = samba_dc.keys("WS001")[0]
    for query in (("--key-id", key.key_id), ("--key-id", key.key_id[:8]), ("-c", "WS001")):
        found = run(config, "find", *query, "-s", "lab", "-f", "json")
        assert_names_the_base(found, base, samba_dc.base_dn)
        assert found.document["sources"][0]["status"] == "failed"


def test_export_audit_and_index_refresh_fail_instead_of_reporting_nothing(
    lab: Lab, samba_dc: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BITKEY_DIR_INDEX", str(tmp_path / "index.sqlite3"))
    config = lab.config(user=ADMIN, base_dn=MISTYPED)
    out = tmp_path / "keys.json"
    exported = run(config, "export", "-s", "lab", "-o", str(out))
    assert_names_the_base(exported, MISTYPED, samba_dc.base_dn)
    assert not out.exists()
    audited = run(config, "audit", "-s", "lab", "--fail-on-missing", "-f", "json")
    assert_names_the_base(audited, MISTYPED, samba_dc.base_dn)
    indexed = run(config, "index", "refresh", "-f", "json")
    assert_names_the_base(indexed, MISTYPED, samba_dc.base_dn)


def test_audit_disclosed_fails_instead_of_calling_the_key_gone(
    lab: Lab, samba_dc: Directory
) -> None:
    key = samba_dc.keys("WS001")[0]
    good = lab.config(user=ADMIN)
    assert run(good, "find", "-k", key.key_id, "-s", "lab", "-f", "key").code == 0
    config = lab.config(user=ADMIN, base_dn=MISTYPED)
    checked = run(config, "audit", "--disclosed", "-f", "json")
    assert_names_the_base(checked, MISTYPED, samba_dc.base_dn)
    assert "gone" not in [d["status"] for d in json.loads(checked.out)["disclosed"]]


def test_doctor_reports_the_missing_base_as_a_failure(lab: Lab, samba_dc: Directory) -> None:
    config = lab.config(user=ADMIN, base_dn=NO_SUCH_OU)
    table = run(config, "doctor")
    assert table.code == 4, table.out + table.err
    assert "healthy" not in table.out.splitlines()[-1]
    assert f'base_dn "{NO_SUCH_OU}" does not exist' in table.out
    checked = run(config, "doctor", "-f", "json")
    assert checked.document["healthy"] is False
    (failing,) = [
        c for c in checked.document["sources"][0]["checks"] if c["status"] == "unreachable"
    ]
    assert (failing["area"], failing["subject"]) == ("base_dn", NO_SUCH_OU)


def test_a_base_with_control_characters_is_shown_escaped(lab: Lab, samba_dc: Directory) -> None:
    base = "OU=Lab\x1b[2J\u202e,DC=bitkey,DC=test"
    config = lab.config(user=ADMIN, base_dn=base)
    found = run(config, "find", "-c", "WS001", "-s", "lab")
    assert found.code == 4, found.err
    assert "\x1b" not in found.err
    assert "\u202e" not in found.err
    assert "OU=Lab\\x1b[2J\\u202e,DC=bitkey,DC=test" in found.err


def test_the_library_gives_the_same_failure(lab: Lab, samba_dc: Directory) -> None:
    config = lab.config(user=ADMIN, base_dn=MISTYPED)
    key = samba_dc.keys("WS001")[0]
    with Client(config=config) as client:
        result = client.find(key_id=key.key_id, sources=["lab"])
        assert result.exit_code == ExitCode.SOURCE_FAILED
        (status,) = result.sources
        assert status.status == "failed"
        assert f'base_dn "{MISTYPED}"' in str(status.error)
        assert client.audit(sources=["lab"]).exit_code == ExitCode.SOURCE_FAILED
