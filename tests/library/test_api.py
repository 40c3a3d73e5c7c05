"""bitkey_dir.api: find, export and audit with the command line's trail and reason policy.

Each test runs the same thing twice, once as `bitkey-dir` and once through the library, and
compares what users and auditors rely on: the trail lines, the refusals and their messages
(in the library, parameters where the command names its options), the results and the exit
codes.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import bitkey_dir
from bitkey_dir import api
from bitkey_dir.core.errors import AuthError, ExitCode, InputError, SourceError
from bitkey_dir.core.wording import for_python
from tests.command_line import invoke, invoke_with, take_trail_entries, trail_entries
from tests.conftest import EXAMPLES

KEYS = EXAMPLES / "keys"
KNOWN_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
KNOWN_PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
SECRETS = [KNOWN_PASSWORD]


def comparable(entry: dict[str, Any], *ignored: str) -> dict[str, Any]:
    """A trail line without what differs between two runs: when, and how it was asked."""
    return {k: v for k, v in entry.items() if k not in ("time", "command", *ignored)}


def config_file(tmp_path: Path, *, require_reason: bool) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[defaults]\nsources = ["samples"]\nrequire_reason = {str(require_reason).lower()}\n'
        f'[sources.samples]\ntype = "file"\npath = "{KEYS}"\n',
        encoding="utf-8",
    )
    return path


def error_of(err: str) -> str:
    """The message of the CLI's one error line."""
    first = err.splitlines()[0]
    assert first.startswith("bitkey-dir: error: "), err
    return first.removeprefix("bitkey-dir: error: ")


def in_python(err: str) -> str:
    """The CLI's error message as the library words it: parameters where it names options."""
    return for_python(error_of(err))


# -- find ---------------------------------------------------------------------------------------


def test_find_writes_the_trail_line_the_command_writes(trail_file: Path) -> None:
    cli = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-r", "INC-1", secrets=SECRETS)
    assert cli.code == 0, cli.err
    by_cli = take_trail_entries()

    result = api.find_keys(key_id="063EA4E1", sources=[str(KEYS)], reason="INC-1")
    assert KNOWN_PASSWORD not in trail_file.read_text(encoding="utf-8")
    by_library = take_trail_entries()

    assert [str(key.key_id) for key in result.keys] == [k["key_id"] for k in cli.keys]
    assert result.exit_code == ExitCode.FOUND == cli.code
    assert len(by_library) == len(by_cli) == 1
    assert [comparable(e) for e in by_library] == [comparable(e) for e in by_cli]
    assert by_library[0]["reason"] == "INC-1"
    assert by_library[0]["command"][1] == "bitkey_dir.api.find_keys"


def test_find_then_rotate_writes_the_trail_lines_the_command_writes(trail_file: Path) -> None:
    cli = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-r", "INC-2", "--rotate", secrets=SECRETS)
    assert cli.code == 0, cli.err
    assert "manage-bde -protectors -delete $v -id" in cli.err
    by_cli = take_trail_entries()

    result = api.find_keys(key_id="063EA4E1", sources=[str(KEYS)], reason="INC-2", then_rotate=True)
    by_library = take_trail_entries()

    assert result.exit_code == ExitCode.FOUND == cli.code  # by hand is not a failure
    (rotated,) = result.rotations
    (rotation,) = rotated.rotations
    assert (str(rotation.key_ids[0]), rotation.outcome) == (KNOWN_ID, "by hand")
    assert rotation.steps[-1] == f"manage-bde -protectors -delete $v -id '{{{KNOWN_ID}}}'"
    assert [e.get("action") for e in by_library] == [None, "rotate"]  # the reveal first
    assert [comparable(e) for e in by_library] == [comparable(e) for e in by_cli]
    assert not api.find_keys(key_id="063EA4E1", sources=[str(KEYS)]).rotations


def test_a_required_reason_is_refused_with_the_commands_message(
    tmp_path: Path, trail_file: Path
) -> None:
    config = config_file(tmp_path, require_reason=True)
    cli = invoke_with(config, "find", "-k", "063EA4E1", secrets=SECRETS)
    assert (cli.code, cli.out) == (2, "")
    with pytest.raises(InputError) as refused:
        api.find_keys(key_id="063EA4E1", config=config)
    assert refused.value.exit_code == cli.code
    assert refused.value.message == in_python(cli.err)
    assert refused.value.message.endswith("add reason=TEXT (a ticket number, for example)")
    with pytest.raises(InputError, match="requires a reason"):
        api.find_keys(key_id="063EA4E1", config=config, reason="   ")
    assert trail_entries() == []

    result = api.find_keys(key_id="063EA4E1", config=config, reason="CHG-7")
    assert result.exit_code == ExitCode.FOUND
    (entry,) = trail_entries()
    assert (entry["reason"], entry["source"], entry["key_id"]) == ("CHG-7", "samples", KNOWN_ID)


@pytest.mark.parametrize("reason", ["two\nlines", "x" * 501, "tab\there"])
def test_a_reason_that_is_not_one_short_line_is_refused_like_the_command(reason: str) -> None:
    cli = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-r", reason, secrets=SECRETS)
    assert cli.code == 2
    with pytest.raises(InputError) as refused:
        api.find_keys(key_id="063EA4E1", sources=[str(KEYS)], reason=reason)
    assert refused.value.message == in_python(cli.err)
    assert refused.value.message.startswith("reason must be one printable line")


def test_an_unwritable_trail_blocks_the_reveal_when_a_reason_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BITKEY_DIR_TRAIL", str(tmp_path))  # a folder: no file can be appended
    strict = config_file(tmp_path, require_reason=True)
    cli = invoke_with(strict, "find", "-k", "063EA4E1", "-r", "T-1", secrets=SECRETS)
    assert (cli.code, cli.out) == (4, "")
    with pytest.raises(SourceError) as refused:
        api.find_keys(key_id="063EA4E1", config=strict, reason="T-1")
    assert refused.value.message == error_of(cli.err)
    assert refused.value.message.startswith("not revealing keys: ")

    lenient = config_file(tmp_path, require_reason=False)
    result = api.find_keys(key_id="063EA4E1", config=lenient)
    assert result.exit_code == ExitCode.FOUND
    assert result.trail_problem is not None
    assert result.trail_problem.startswith("cannot write the access trail")


def test_a_failing_source_is_reported_in_the_result_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BITKEY_DIR_USER", "helpdesk@corp.example")
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "Not-Used-1")
    down = "ldaps://127.0.0.1:9"  # the discard port: nothing listens on loopback
    result = api.find_keys(key_id="063EA4E1", sources=[str(KEYS), down])
    assert [str(key.key_id) for key in result.keys] == [KNOWN_ID]
    assert [(s.name, s.status) for s in result.sources] == [(str(KEYS), "ok"), (down, "failed")]
    assert result.exit_code == ExitCode.FOUND
    nothing = api.find_keys(key_id="FFFFFFFF", sources=[str(KEYS), down])
    assert nothing.exit_code == ExitCode.SOURCE_FAILED  # not "not found": a source failed


def test_bad_input_raises_before_any_source_is_asked(trail_file: Path) -> None:
    with pytest.raises(InputError, match="not a Key ID"):
        api.find_keys(key_id="063EA4E1)(|(x=*", sources=[str(KEYS)])
    with pytest.raises(InputError, match="exactly one"):
        api.find_keys(key_id="063EA4E1", computer="PC-0042", sources=[str(KEYS)])
    assert trail_entries() == []


# -- export -------------------------------------------------------------------------------------


def test_export_writes_the_trail_line_and_the_file_the_command_writes(
    tmp_path: Path, trail_file: Path
) -> None:
    config = config_file(tmp_path, require_reason=True)
    by_cli_file, by_library_file = tmp_path / "cli.json", tmp_path / "library.json"
    cli = invoke_with(config, "export", "-s", "samples", "-o", by_cli_file, "--reason", "DR")
    assert cli.code == 0, cli.err
    by_cli = take_trail_entries()

    result = api.export_keys(source="samples", output=by_library_file, reason="DR", config=config)
    by_library = take_trail_entries()

    assert result.failure is None
    assert result.exit_code == ExitCode.FOUND
    assert f"{result.keys} keys from samples written to" in cli.out
    assert [comparable(e, "output") for e in by_library] == [
        comparable(e, "output") for e in by_cli
    ]
    assert by_library[0]["output"] == str(by_library_file.resolve())
    assert by_library[0]["action"] == "export"
    assert (
        json.loads(by_library_file.read_text())["keys"]
        == json.loads(by_cli_file.read_text())["keys"]
    )
    assert oct(by_library_file.stat().st_mode & 0o777) == "0o600"


def test_export_refuses_without_a_required_reason_like_the_command(
    tmp_path: Path, trail_file: Path
) -> None:
    config = config_file(tmp_path, require_reason=True)
    out = tmp_path / "keys.json"
    cli = invoke_with(config, "export", "-s", "samples", "-o", out)
    assert cli.code == 2
    with pytest.raises(InputError) as refused:
        api.export_keys(source="samples", output=out, config=config)
    assert refused.value.message == in_python(cli.err)
    assert not out.exists()
    assert trail_entries() == []


def test_an_encrypted_export_from_the_library_reads_back(tmp_path: Path) -> None:
    pytest.importorskip("pyrage")
    out = tmp_path / "keys.age"
    result = api.export_keys(source=str(KEYS), output=out, passphrase="correct horse battery")
    assert (result.failure, result.encrypted) == (None, True)
    assert KNOWN_PASSWORD.encode() not in out.read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BITKEY_DIR_EXPORT_PASSPHRASE", "correct horse battery")
        found = api.find_keys(key_id="063EA4E1", sources=[str(out)])
    assert [str(key.key_id) for key in found.keys] == [KNOWN_ID]


def test_an_export_that_cannot_be_decrypted_is_a_failure_not_an_empty_file(
    tmp_path: Path,
) -> None:
    pytest.importorskip("pyrage")
    sealed = tmp_path / "in" / "keys.age"
    sealed.parent.mkdir()
    api.export_keys(source=str(KEYS), output=sealed, passphrase="right one")
    out = tmp_path / "again.json"
    result = api.export_keys(source=str(sealed.parent), output=out)
    assert isinstance(result.failure, AuthError)
    assert result.exit_code == ExitCode.AUTH
    assert not out.exists()


# -- audit --------------------------------------------------------------------------------------


def test_audit_refuses_key_files_with_the_commands_message() -> None:
    cli = invoke("audit", "-s", KEYS)
    assert cli.code == 2
    with pytest.raises(InputError) as refused:
        api.audit_escrow(sources=[str(KEYS)])
    assert refused.value.message == error_of(cli.err)


# -- the library never talks to a terminal --------------------------------------------------------


def test_the_library_prints_nothing_and_asks_nobody(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("pyrage")
    folder = tmp_path / "sealed"
    folder.mkdir()
    api.export_keys(source=str(KEYS), output=folder / "keys.age", passphrase="p-4711")
    # On a terminal the command line would ask for the passphrase; the library may not.
    result = api.find_keys(key_id="063EA4E1", sources=[str(folder)])
    assert result.exit_code == ExitCode.AUTH
    (status,) = result.sources
    assert status.status == "denied"
    assert "could not be decrypted" in (status.error or "")
    assert capsys.readouterr() == ("", "")


# Each function and the Client method it is one call of.
METHODS = {
    "audit_escrow": "audit",
    "clear_index": "clear_index",
    "diagnose": "diagnose",
    "disclosed_keys": "disclosed",
    "export_keys": "export",
    "find_keys": "find",
    "index_status": "index_status",
    "key_reads": "reads",
    "refresh_index": "refresh_index",
    "rotate_keys": "rotate",
}


@pytest.mark.parametrize(("function", "method"), sorted(METHODS.items()))
def test_each_function_takes_what_its_client_method_takes(function: str, method: str) -> None:
    # The functions hand their own arguments on (locals()): the names and defaults must match.
    def keywords(call: Callable[..., object], *left_out: str) -> dict[str, object]:
        parameters = inspect.signature(call).parameters.values()
        return {p.name: p.default for p in parameters if p.name not in ("self", *left_out)}

    assert keywords(getattr(api, function), "config", "interaction") == keywords(
        getattr(api.Client, method)
    )
    assert {name for name in api.__all__ if name.islower()} == set(METHODS)


def test_the_package_offers_the_library_lazily() -> None:
    assert bitkey_dir.find_keys is api.find_keys
    assert bitkey_dir.export_keys is api.export_keys
    assert bitkey_dir.audit_escrow is api.audit_escrow
    with pytest.raises(AttributeError):
        bitkey_dir.nothing  # noqa: B018


def test_no_environment_leaks_between_tests() -> None:
    assert "BITKEY_DIR_CONFIG" not in os.environ


def test_the_key_id_index_through_the_library_as_through_the_command(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[defaults]\nsources = ["share"]\n[sources.share]\ntype = "file"\npath = ["{KEYS}"]\n',
        encoding="utf-8",
    )
    refreshed = api.refresh_index(config=config)
    assert refreshed.exit_code == ExitCode.FOUND
    assert [(done.source, done.keys) for done in refreshed.refreshed] == [("share", 7)]
    status = api.index_status(config=config)
    assert status.exists
    assert [(row.source, row.state.keys if row.state else None) for row in status.rows] == [
        ("share", 7)
    ]
    found = api.find_keys(key_id=KNOWN_ID[:8], config=config)
    command = invoke_with(config, "find", "-k", KNOWN_ID[:8], "-f", "json", secrets=SECRETS)
    assert found.index.used == ["share"]
    assert command.document["index"] == {"used": ["share"], "stale": [], "unconfirmed": ["share"]}
    assert (
        (found.ambiguous, found.complete) == (command.document["ambiguous"], False) == (None, False)
    )
    assert [str(key.key_id) for key in found.keys] == command.key_ids == [KNOWN_ID]
    assert api.find_keys(key_id=KNOWN_ID[:8], config=config, use_index=False).index.used == []
    assert api.clear_index(config=config) == ["share"]


def test_diagnose_gives_what_doctor_prints(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no key here\n", encoding="utf-8")
    result = api.diagnose(sources=[str(KEYS), str(tmp_path)])
    command = invoke("doctor", KEYS, tmp_path, "--format", "json")
    assert json.loads(command.out) == result.to_record()
    assert (int(result.exit_code), command.code) == (0, 0)
    mine = result.diagnoses[1].checks
    assert [(c.area, c.status) for c in mine] == [
        ("path", "ok"),
        ("files", "warn"),
        ("skipped", "warn"),
    ]
    assert KNOWN_PASSWORD not in json.dumps(result.to_record())


# -- key packages ---------------------------------------------------------------------------


def test_key_packages_through_the_library_as_through_the_command(
    tmp_path: Path, trail_file: Path
) -> None:
    from bitkey_dir.core.model import KeyId, KeyPackage, RecoveryKey, RecoveryPassword
    from bitkey_dir.core.records import key_json

    package = bytes(range(1, 200))
    key = RecoveryKey(
        source="corp-ad",
        key_id=KeyId.parse(KNOWN_ID),
        recovery_password=RecoveryPassword.parse(KNOWN_PASSWORD),
        key_package=KeyPackage(package),
    )
    backup = tmp_path / "backup.json"
    backup.write_text('{"keys": [' + key_json(key, key_package=True) + "]}")

    written = tmp_path / "keypackage.bin"
    result = api.find_keys(key_id="063EA4E1", sources=[str(backup)], key_package=written)
    assert (result.exit_code, result.key_package) == (ExitCode.FOUND, written)
    assert written.read_bytes() == package
    assert take_trail_entries()[0]["key_package"] == str(written)
    with pytest.raises(InputError, match="exists"):
        api.find_keys(key_id="063EA4E1", sources=[str(backup)], key_package=written)

    # A key file holds no package: 3, and the password is not handed over either.
    missing = api.find_keys(key_id="063EA4E1", sources=[str(KEYS)], key_package=tmp_path / "k")
    assert missing.exit_code == ExitCode.AUTH
    assert missing.package_problem is not None
    assert [k.recovery_password for k in missing.keys] == [None] * len(missing.keys)
    assert take_trail_entries() == []

    config = tmp_path / "config.toml"
    config.write_text(f'[sources.backup]\ntype = "file"\npath = "{backup}"\n', encoding="utf-8")
    again = tmp_path / "again.json"
    exported = api.export_keys(source="backup", output=again, key_packages=True, config=config)
    assert (exported.exit_code, exported.packages) == (ExitCode.FOUND, 1)
    (record,) = json.loads(again.read_text())["keys"]
    assert record["key_package"] == KeyPackage(package).to_base64()
