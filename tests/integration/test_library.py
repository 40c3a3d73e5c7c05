"""bitkey_dir.api against the Samba DC and the Graph emulator: the same answers, the same trail
lines and the same exit codes as the command line, and never a prompt."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir import api
from bitkey_dir.core.errors import ExitCode
from bitkey_dir.core.records import to_record
from bitkey_dir.render.escrow import render_json
from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import Outcome, invoke_with, take_trail_entries
from tests.integration.fixtures import ADMIN, SOURCE, Directory, Entra, Lab, ad_checks

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]


def comparable(entries: list[dict[str, Any]], *ignored: str) -> list[dict[str, Any]]:
    drop = ("time", "command", *ignored)
    return [{k: v for k, v in entry.items() if k not in drop} for entry in entries]


def test_ad_find_matches_the_command_line_key_for_key_and_line_for_line(
    lab: Lab, trail_file: Path
) -> None:
    config = lab.config()
    cli: Outcome = invoke_with(
        config, "find", "-c", "WS0*", "-r", "INC-9", "-f", "json", **ad_checks()
    )
    assert cli.code == 0, cli.err
    by_cli = take_trail_entries()

    result = api.find_keys(computer="WS0*", config=config, reason="INC-9")
    assert [to_record(key) for key in result.keys] == cli.keys
    assert result.exit_code == cli.code
    assert sorted(result.warnings) == sorted(cli.document["warnings"])
    by_library = take_trail_entries()
    assert comparable(by_library) == comparable(by_cli)
    assert by_library
    assert {e["principal"] for e in by_library} == {lab.accounts["helpdesk"][0]}


def test_ad_export_without_every_password_is_exit_3_from_both(
    lab: Lab, trail_file: Path, tmp_path: Path
) -> None:
    # The helpdesk may read passwords below OU=Workstations only: the rest export without.
    config = lab.config()
    cli = invoke_with(
        config, "export", "-s", "lab", "-o", str(tmp_path / "cli.json"), **ad_checks()
    )
    assert cli.code == ExitCode.AUTH, cli.err
    by_cli = take_trail_entries()

    result = api.export_keys(source="lab", output=tmp_path / "library.json", config=config)
    assert result.failure is None
    assert result.exit_code == ExitCode.AUTH == cli.code
    assert f"{result.unreadable} of {result.keys} keys were exported WITHOUT" in cli.err
    assert comparable(take_trail_entries(), "output") == comparable(by_cli, "output")


def test_ad_audit_is_the_command_lines_report(lab: Lab) -> None:
    config = lab.config(user="plain")
    cli = invoke_with(config, "audit", "-s", "lab", "-f", "json", **ad_checks())
    assert cli.code == 0, cli.err
    result = api.audit_escrow(sources=["lab"], config=config)
    assert result.exit_code == ExitCode.FOUND
    ours = json.loads(render_json(result.coverage))
    assert ours["computers"] == cli.document["computers"]
    # Only "now" may differ between the two runs, and it decides nothing without stale_days.
    assert ours["summary"] == cli.document["summary"]


def test_ad_without_a_credential_the_library_refuses_instead_of_asking(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    config = lab.config(set_password=False)
    result = api.find_keys(key_id="063EA4E1", config=config)
    (status,) = result.sources
    assert (status.status, status.exit_code) == ("denied", ExitCode.AUTH)
    assert "set BITKEY_DIR_PASSWORD" in (status.error or "")
    assert result.exit_code == ExitCode.AUTH
    assert capsys.readouterr() == ("", "")


def test_ad_failure_of_one_source_leaves_the_others_answer(
    lab: Lab, samba_dc: Directory, tmp_path: Path
) -> None:
    config = lab.config(user=ADMIN)
    text = config.read_text(encoding="utf-8").replace(
        'sources = ["lab"]', 'sources = ["lab", "down"]'
    )
    # Kerberos: BITKEY_DIR_PASSWORD, the admin's, is for lab alone (one password, one account).
    text += '\n[sources.down]\ntype = "ad"\nservers = ["ldaps://127.0.0.1:9"]\nauth = "kerberos"\n'
    config.write_text(text, encoding="utf-8")
    key = samba_dc.keys("WS001")[0]
    result = api.find_keys(key_id=key.key_id, config=config)
    assert [str(k.key_id) for k in result.keys] == [key.key_id]
    assert [(s.name, s.status) for s in result.sources] == [("lab", "ok"), ("down", "failed")]
    assert result.exit_code == ExitCode.FOUND


def test_entra_find_matches_the_command_line(
    entra: Entra, graph: GraphEmulator, trail_file: Path
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    config = entra.config()
    cli = invoke_with(config, "find", "-k", key.id[:8], "-f", "json", **entra.checks)
    assert cli.code == 0, cli.err
    by_cli = take_trail_entries()

    result = api.find_keys(key_id=key.id[:8], config=config)
    assert [to_record(k) for k in result.keys] == cli.keys
    assert comparable(take_trail_entries()) == comparable(by_cli)


@pytest.mark.usefixtures("file_keyring")
def test_entra_device_code_is_never_started_by_the_library(
    entra: Entra, graph: GraphEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    entra.public()
    config = entra.config(auth="device-code")
    result = api.find_keys(key_id="063EA4E1", config=config)
    (status,) = result.sources
    assert status.status == "denied"
    assert f"bitkey-dir login {SOURCE}" in (status.error or "")
    assert graph.device_codes == {}  # nobody was shown a code nobody would see
    assert capsys.readouterr() == ("", "")


def test_results_are_plain_data() -> None:
    # Typed results, not dicts: a caller can rely on the fields.
    fields = {f.name for f in dataclasses.fields(api.LookupResult)}
    assert {"query", "keys", "warnings", "sources", "trail_problem"} <= fields
    assert {f.name for f in dataclasses.fields(api.ExportResult)} >= {"keys", "unreadable"}
