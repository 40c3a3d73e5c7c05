"""`bitkey-dir audit` without a directory: bad input, help, and a stand-in directory source."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bitkey_dir.core.errors import SourceError
from bitkey_dir.render.escrow import AUDIT_FIELDS
from bitkey_dir.sources.base import Audits, Escrow, Warn
from tests.command_line import invoke, invoke_with, run_process
from tests.conftest import EXAMPLES, ROOT
from tests.import_probe import imported_by

KEYS = str(EXAMPLES / "keys")
NOT_AUDITABLE = "only directory sources (ad, entra) can be audited"


def one_error_line(err: str) -> str:
    assert err.startswith("bitkey-dir: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# --- bad input: exit 2, before any directory is asked -----------------------------------------


def test_a_key_file_source_cannot_be_audited() -> None:
    code, out, err = invoke("audit", "--source", KEYS)
    assert code == 2
    assert out == ""
    assert one_error_line(err) == (
        f"bitkey-dir: error: {KEYS}: {NOT_AUDITABLE}; key files know only the computers that "
        "have keys\n"
    )


def test_a_relative_key_file_source_from_the_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = invoke("audit", "-s", "examples/keys", "--format", "json")
    assert code == 2
    assert out == ""
    assert f"examples/keys: {NOT_AUDITABLE}" in one_error_line(err)


def test_configured_file_sources_cannot_be_audited(in_examples: Path) -> None:
    code, out, err = invoke_with("config.toml", "audit")
    assert code == 2
    assert out == ""
    # The first of the [defaults] sources is named, by its name in the config.
    assert one_error_line(err).startswith(f"bitkey-dir: error: usb-keys: {NOT_AUDITABLE}")


def test_no_source_configured() -> None:
    code, out, err = invoke("audit")
    assert code == 2
    assert out == ""
    assert one_error_line(err).startswith("bitkey-dir: error: no source to search: give --source")


def test_an_unknown_source() -> None:
    code, out, err = invoke("audit", "-s", "no-such-source")
    assert code == 2
    assert out == ""
    assert "unknown source" in one_error_line(err)


@pytest.mark.parametrize("days", ["0", "-1", "many"])
def test_stale_days_must_be_a_positive_number(days: str) -> None:
    code, out, err = invoke("audit", "--stale-days", days, "-s", KEYS)
    assert code == 2
    assert out == ""
    assert "--stale-days" in err
    assert NOT_AUDITABLE not in err  # refused while parsing, before any source is opened


@pytest.mark.parametrize("fmt", ["xml", "key", "phone", ""])
def test_an_unknown_format(fmt: str) -> None:
    code, out, err = invoke("audit", "--format", fmt, "-s", KEYS)
    assert code == 2
    assert out == ""
    assert "--format" in err
    assert NOT_AUDITABLE not in err


def test_an_unknown_option() -> None:
    code, out, err = invoke("audit", "--stale", "30")
    assert code == 2
    assert out == ""
    assert "--stale" in err


# --- help -----------------------------------------------------------------------------------


def test_help_lists_audit() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    assert " audit " in out
    assert "Escrow coverage" in out


def test_audit_help_names_its_options() -> None:
    code, out, _ = invoke("audit", "--help")
    assert code == 0
    for option in ("--source", "--stale-days", "--format", "--fail-on-missing", "--all"):
        assert option in out


def test_audit_help_imports_no_directory_client() -> None:
    heavy, mine, stdout = imported_by("audit", "--help")
    assert heavy == []
    # The command's body imports the audit module and the sources; --help runs none of it.
    assert "bitkey_dir.core.coverage" not in mine
    assert not [m for m in mine if m.startswith("bitkey_dir.sources")]
    assert b"--stale-days" in stdout


def test_audit_help_in_a_real_process_imports_no_directory_client() -> None:
    """The same, seen from outside: -X importtime lists every module the process imported."""
    proc = run_process(
        "audit", "--help", command=(sys.executable, "-X", "importtime", "-m", "bitkey_dir")
    )
    assert proc.code == 0
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in proc.err.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "bitkey_dir" in imported  # the listing is there at all
    assert not imported & {"ldap3", "msal", "msgraph", "kiota_abstractions", "azure"}


# --- with a stand-in directory source (no server: open_sources is replaced) ----------------

NOW = datetime.now(UTC)


class FakeDirectory:
    """What `audit` needs of a directory source: a name, iter_escrow and close."""

    def __init__(self, name: str, escrows: list[Escrow], error: SourceError | None = None):
        self.name = name
        self.escrows = escrows
        self.error = error
        self.closed = False

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        warn("one computer object could not be read")
        if self.error:
            raise self.error
        yield from self.escrows

    def close(self) -> None:
        self.closed = True


def corp(name: str = "corp") -> FakeDirectory:
    return FakeDirectory(
        name,
        [
            Escrow(name, "PC-OK", "OU=Office", 2, NOW - timedelta(days=3), "OU=Office"),
            Escrow(name, "=PC-OLD", "OU=Office", 1, NOW - timedelta(days=400), "OU=Office"),
            Escrow(name, "PC-NONE", "OU=Lab", 0, None, "OU=Lab"),
        ],
    )


@pytest.fixture
def directories(monkeypatch: pytest.MonkeyPatch) -> list[FakeDirectory]:
    """Every --source NAME opens a stand-in directory; "broken" fails while reading."""
    opened: list[FakeDirectory] = []

    def open_sources(config: object, specs: list[str]) -> list[FakeDirectory]:
        for spec in specs or ["corp"]:
            if spec == "broken":
                opened.append(FakeDirectory(spec, [], SourceError("ldaps://dc1: timed out")))
            else:
                opened.append(corp(spec))
        return opened

    monkeypatch.setattr("bitkey_dir.sources.registry.open_sources", open_sources)
    return opened


def test_the_stand_in_is_an_auditable_source() -> None:
    assert isinstance(corp(), Audits)


def test_json_is_the_default_when_piped(directories: list[FakeDirectory]) -> None:
    code, out, err = invoke("audit", "-s", "corp", "--stale-days", "90")
    assert code == 0
    document = json.loads(out)
    assert [(c["computer"], c["status"]) for c in document["computers"]] == [
        ("PC-NONE", "missing"),
        ("=PC-OLD", "stale"),
        ("PC-OK", "ok"),
    ]
    assert all(tuple(c) == AUDIT_FIELDS for c in document["computers"])
    assert document["summary"]["stale_days"] == 90
    assert document["summary"]["coverage"] == 66.7
    assert err == "warning: corp: one computer object could not be read\n"
    assert [d.closed for d in directories] == [True]


def test_csv_output(directories: list[FakeDirectory]) -> None:
    code, out, _ = invoke("audit", "-s", "corp", "-f", "CSV")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert [(r["computer"], r["status"]) for r in rows] == [
        ("PC-NONE", "missing"),
        ("'=PC-OLD", "ok"),  # no --stale-days: nothing is stale; the name is guarded
        ("PC-OK", "ok"),
    ]


def test_table_output_problems_only_unless_all(directories: list[FakeDirectory]) -> None:
    code, out, _ = invoke("audit", "-s", "corp", "-f", "table", "--stale-days", "30")
    assert code == 0
    assert "PC-NONE" in out
    assert "=PC-OLD" in out
    assert "PC-OK" not in out
    assert "3 computers: 1 ok, 1 stale, 1 without a key (66.7% escrowed)\n" in out
    code, out, _ = invoke("audit", "-s", "corp", "-f", "table", "--all")
    assert code == 0
    assert "PC-OK" in out


def test_fail_on_missing_is_exit_1(directories: list[FakeDirectory]) -> None:
    code, out, _ = invoke("audit", "-s", "corp", "--fail-on-missing")
    assert code == 1
    assert json.loads(out)["summary"]["missing"] == 1


def test_a_failing_source_is_exit_4_and_the_others_are_still_reported(
    directories: list[FakeDirectory],
) -> None:
    code, out, err = invoke("audit", "-s", "broken", "-s", "corp", "--fail-on-missing")
    assert code == 4  # a failed source outranks --fail-on-missing
    assert "bitkey-dir: error: broken: ldaps://dc1: timed out\n" in err
    assert json.loads(out)["summary"]["computers"] == 3
    assert [d.closed for d in directories] == [True, True]


def test_a_huge_stale_days_is_not_an_internal_error(directories: list[FakeDirectory]) -> None:
    code, _, err = invoke("audit", "-s", "corp", "--stale-days", "1000000")
    assert code in (0, 2)
    assert "internal error" not in err


def test_key_files_among_the_default_sources_are_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bitkey_dir.runtime.config import Settings
    from bitkey_dir.sources.files.source import FileSource

    directory = corp()
    files = FileSource.from_settings(
        "usb-keys", Settings({"type": "file", "path": KEYS}, "test", Path())
    )

    def open_sources(config: object, specs: list[str]) -> list[object]:
        return [files, directory] if not specs else [files]

    monkeypatch.setattr("bitkey_dir.sources.registry.open_sources", open_sources)
    code, out, err = invoke("audit", "-f", "json")  # the config's defaults
    assert code == 0, err
    assert json.loads(out)["summary"]["computers"] == 3
    assert "warning: usb-keys: skipped: key files know only the computers" in err
    assert directory.closed
    # Named on the command line, a key file source is still a mistake.
    code, out, err = invoke("audit", "-s", "usb-keys")
    assert (code, out) == (2, "")
    assert NOT_AUDITABLE in err
