"""The command-line contract runbooks depend on: formats, exit codes, stdout vs stderr."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bitkey_dir import __version__
from bitkey_dir.core.records import KEY_FIELDS
from tests.command_line import invoke, invoke_with, run_process, trail_entries
from tests.conftest import EXAMPLES
from tests.import_probe import imported_by

KEYS = str(EXAMPLES / "keys")
KNOWN_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
KNOWN_PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
# Two keys in examples/exports share these first 8 digits.
COLLIDING_PREFIX = "A1B2C3D4"
SECRETS = [KNOWN_PASSWORD]


def test_version() -> None:
    code, out, _ = invoke("--version", secrets=SECRETS)
    assert (code, out) == (0, f"bitkey-dir {__version__}\n")
    proc = run_process("--version")
    assert (proc.code, proc.out) == (0, f"bitkey-dir {__version__}\n")


def test_help_imports_no_directory_client() -> None:
    heavy, mine, stdout = imported_by("--help")
    assert heavy == []
    # Only the CLI shell is loaded for --help: no sources, no lookup, no parsers.
    assert not [m for m in mine if m.startswith("bitkey_dir.ops")]
    assert not [m for m in mine if m.startswith("bitkey_dir.sources")]
    assert b"find" in stdout


def test_find_table_by_key_id() -> None:
    code, out, err = invoke(
        "find", "--key-id", "063ea4e1", "--source", KEYS, "--format", "table", secrets=SECRETS
    )
    assert code == 0
    assert f"Key ID     {KNOWN_ID}" in out
    assert f"Password   {KNOWN_PASSWORD}" in out
    assert "1 recovery key found for Key ID 063EA4E1." in out
    assert KNOWN_PASSWORD not in err


def test_find_json_is_the_default_when_piped() -> None:
    code, out, _ = invoke("find", "-k", KNOWN_ID.lower(), "-s", KEYS, secrets=SECRETS)
    assert code == 0
    document = json.loads(out)
    assert set(document) == {
        "keys",
        "ambiguous",
        "complete",
        "index_age_seconds",
        "warnings",
        "index",
        "sources",
    }
    (key,) = document["keys"]
    assert tuple(key) == KEY_FIELDS
    assert key["key_id"] == KNOWN_ID
    assert key["recovery_password"] == KNOWN_PASSWORD
    assert key["created"] is None
    assert key["deleted"] is False
    assert document["sources"] == [{"name": KEYS, "status": "ok", "error": None}]


def test_find_key_and_phone_formats() -> None:
    code, out, _ = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-f", "key", secrets=SECRETS)
    assert (code, out) == (0, KNOWN_PASSWORD + "\n")
    code, out, _ = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-f", "PHONE", secrets=SECRETS)
    assert code == 0
    assert "  1: 531058   2: 303050   3: 716078   4: 383614\n" in out
    assert "  5: 460922   6: 106975   7: 083446   8: 139161\n" in out


def test_find_csv() -> None:
    code, out, _ = invoke(
        "find", "-c", "PC-0107", "-s", str(EXAMPLES / "exports"), "-f", "csv", secrets=SECRETS
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == KEY_FIELDS
    assert [row["computer"] for row in rows] == ["PC-0107", "PC-0107"]
    # Newest first.
    assert rows[0]["created"] > rows[1]["created"]


def test_ambiguous_prefix_shows_every_key_and_says_so() -> None:
    code, out, err = invoke(
        "find", "-k", COLLIDING_PREFIX, "-s", str(EXAMPLES), "-f", "table", secrets=SECRETS
    )
    assert code == 0
    assert out.count("Key ID     A1B2C3D4-") == 2
    assert "matches 2 different keys: confirm more digits" in out
    code, out, err = invoke(
        "find", "-k", COLLIDING_PREFIX, "-s", str(EXAMPLES), "-f", "key", secrets=SECRETS
    )
    assert len(out.splitlines()) == 2
    assert "confirm more digits" in err
    code, out, _ = invoke(
        "find", "-k", COLLIDING_PREFIX + "-F6E5", "-s", str(EXAMPLES), "-f", "key", secrets=SECRETS
    )
    assert len(out.splitlines()) == 1


def test_computer_wildcard_and_parentheses(in_examples: Path) -> None:
    code, out, _ = invoke_with("config.toml", "find", "-c", "srv-*", "-f", "json", secrets=SECRETS)
    assert code == 0
    computers = {key["computer"] for key in json.loads(out)["keys"]}
    assert computers == {"SRV-DB02", "SRV-FILE01"}
    code, out, _ = invoke_with(
        "config.toml", "find", "-c", "pc(lab)-2", "-f", "json", secrets=SECRETS
    )
    assert code == 0
    assert [k["computer"] for k in json.loads(out)["keys"]] == ["PC(LAB)-2"]


def test_deleted_computers_only_on_request() -> None:
    exports = str(EXAMPLES / "exports")
    code, out, _ = invoke("find", "-c", "PC-0042", "-s", exports, "-f", "json", secrets=SECRETS)
    assert code == 1
    assert json.loads(out)["keys"] == []
    code, out, _ = invoke(
        "find", "-c", "PC-0042", "-s", exports, "-f", "json", "--include-deleted", secrets=SECRETS
    )
    assert code == 0
    assert [k["deleted"] for k in json.loads(out)["keys"]] == [True]


def test_not_found_is_exit_1_with_a_summary_on_stderr() -> None:
    code, out, err = invoke("find", "-k", "00000000", "-s", KEYS, "-f", "key", secrets=SECRETS)
    assert (code, out) == (1, "")
    assert "No recovery key found for Key ID 00000000." in err


@pytest.mark.parametrize(
    "args",
    [
        ["find", "-s", KEYS],
        ["find", "-k", "063EA4E1", "-c", "PC-1", "-s", KEYS],
        ["find", "-k", "063EA4E", "-s", KEYS],
        ["find", "-k", "*)(cn=*", "-s", KEYS],
        ["find", "-k", "063EA4E1' or '1'='1", "-s", KEYS],
        ["find", "-k", "x" * 1_000_000, "-s", KEYS],
        ["find", "-k", "063EA4E1\x00", "-s", KEYS],
        ["find", "-c", "", "-s", KEYS],
        ["find", "-c", "PC\n01", "-s", KEYS],
        ["find", "-c", "P" * 300, "-s", KEYS],
        ["find", "-k", "063EA4E1", "-s", "no-such-source"],
        ["find", "-k", "063EA4E1"],
        ["find", "-k", "063EA4E1", "-s", KEYS, "-f", "xml"],
        ["find", "-k", "063EA4E1", "-s", KEYS, "--reason", "two\nlines"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    code, out, err = invoke(*args, secrets=SECRETS)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("bitkey-dir: error:")]
    assert len(errors) == 1 or "Usage:" in err
    assert all(len(line) < 600 for line in err.splitlines())


def test_bad_input_in_a_real_process_has_no_traceback() -> None:
    proc = run_process("find", "--key-id", b"\xff\xfe063EA4E1", "--source", KEYS)
    assert proc.code == 2
    assert proc.err.startswith("bitkey-dir: error: not a Key ID")


def test_a_failing_source_makes_not_found_untrustworthy(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.gone]\ntype = "file"\npath = "{tmp_path / "unmounted"}"\n'
        f'[sources.samples]\ntype = "file"\npath = "{KEYS}"\n'
    )
    code, out, err = invoke_with(config, "find", "-k", "00000000", "-s", "gone", secrets=SECRETS)
    assert code == 4
    assert json.loads(out)["sources"][0]["status"] == "failed"
    assert "gone: cannot open" in err
    # Found in one source while another failed: found, and the failure is still reported.
    code, out, err = invoke_with(
        config, "find", "-k", "063EA4E1", "-s", "gone", "-s", "samples", secrets=SECRETS
    )
    assert code == 0
    statuses = {s["name"]: s["status"] for s in json.loads(out)["sources"]}
    assert statuses == {"gone": "failed", "samples": "ok"}
    assert "gone: cannot open" in err


def test_warnings_go_to_stderr_and_json(tmp_path: Path) -> None:
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "key.txt").write_text(f"{KNOWN_ID}\n{KNOWN_PASSWORD}\n")
    code, out, err = invoke("find", "-k", "063EA4E1", "-s", str(tmp_path), secrets=SECRETS)
    assert code == 0
    document = json.loads(out)
    assert len(document["warnings"]) == 1
    assert "junk.bin: skipped, binary data" in document["warnings"][0]
    assert "warning: " in err
    assert "junk.bin" in err
    assert KNOWN_PASSWORD not in err


def test_json_output_reads_back_as_a_source(tmp_path: Path, in_examples: Path) -> None:
    every = ("-c", "*-*", "--include-deleted", "-f", "json")
    code, out, _ = invoke_with("config.toml", "find", *every, secrets=SECRETS)
    assert code == 0
    saved = tmp_path / "backup.json"
    saved.write_text(out)
    original = json.loads(out)["keys"]
    code, again, _ = invoke("find", *every, "-s", str(saved), secrets=SECRETS)
    assert code == 0
    reread = json.loads(again)["keys"]
    assert len(reread) == len(original) > 5
    for before, after in zip(original, reread, strict=True):
        assert {k: v for k, v in before.items() if k != "source"} == {
            k: v for k, v in after.items() if k != "source"
        }


def test_require_reason_and_the_access_trail(tmp_path: Path, trail_file: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[defaults]\nsources = ["samples"]\nrequire_reason = true\n'
        f'[sources.samples]\ntype = "file"\npath = "{KEYS}"\n'
    )
    code, out, err = invoke_with(config, "find", "-k", "063EA4E1", secrets=SECRETS)
    assert code == 2
    assert "requires a reason" in err
    assert not trail_file.exists()
    code, out, err = invoke_with(
        config, "find", "-k", "063EA4E1", "-r", "INC0012345", secrets=SECRETS
    )
    assert code == 0
    (entry,) = trail_entries()
    assert entry["key_id"] == KNOWN_ID
    assert entry["reason"] == "INC0012345"
    assert entry["source"] == "samples"
    assert set(entry) == {
        "time",
        "os_user",
        "principal",
        "source",
        "key_id",
        "computer",
        "reason",
        "command",
    }
    assert oct(trail_file.stat().st_mode & 0o777) == "0o600"
    assert "531058" not in trail_file.read_text()
    code, out, _ = invoke("trail", "--json", secrets=SECRETS)
    assert json.loads(out)["reason"] == "INC0012345"


def test_an_unwritable_trail_blocks_reveal_only_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("BITKEY_DIR_TRAIL", str(blocker / "trail.jsonl"))
    code, out, err = invoke("find", "-k", "063EA4E1", "-s", KEYS, "-f", "key", secrets=SECRETS)
    assert (code, out) == (0, KNOWN_PASSWORD + "\n")
    assert "warning: cannot write the access trail" in err
    config = tmp_path / "config.toml"
    config.write_text("[defaults]\nrequire_reason = true\n")
    code, out, err = invoke_with(
        config, "find", "-k", "063EA4E1", "-s", KEYS, "-f", "key", "-r", "T-1", secrets=SECRETS
    )
    assert (code, out) == (4, "")
    assert "not revealing keys" in err


@pytest.mark.parametrize(
    ("typed", "code", "says"),
    [
        (KNOWN_PASSWORD, 0, "valid"),
        (KNOWN_PASSWORD.replace("-", " "), 0, "valid"),
        (KNOWN_PASSWORD.replace("-", ""), 0, "valid"),
        (KNOWN_PASSWORD.replace("716078", "716079"), 1, "group 3 is wrong"),
        (KNOWN_PASSWORD[:-1], 1, "got 47 digits"),
        ("531058-303050-71607B", 1, "characters other than digits"),
    ],
)
def test_verify(typed: str, code: int, says: str) -> None:
    got, out, err = invoke("verify", stdin=typed + "\n", secrets=SECRETS)
    assert got == code
    assert says in out
    assert typed not in out + err


def test_verify_without_input_is_exit_2() -> None:
    code, _, err = invoke("verify", stdin="", secrets=SECRETS)
    assert code == 2
    assert "no recovery password given" in err


def test_verify_takes_no_password_from_argv() -> None:
    code, _, err = invoke("verify", KNOWN_PASSWORD, secrets=SECRETS)
    assert code == 2
    assert KNOWN_PASSWORD not in err


def test_no_output_of_any_failing_command_leaks_a_password(tmp_path: Path) -> None:
    damaged = KNOWN_PASSWORD.replace("716078", "716079")
    (tmp_path / "damaged.txt").write_text(
        f"BitLocker Drive Encryption recovery key\nIdentifier:\n\t{KNOWN_ID}\n"
        f"Recovery Key:\n\t{damaged}\n"
    )
    code, out, err = invoke(
        "find", "-k", "063EA4E1", "-s", str(tmp_path), "-f", "table", secrets=SECRETS
    )
    assert code == 1
    assert "damaged recovery password" in err
    assert "group 3 is wrong" in err
    for group in damaged.split("-"):
        assert group not in out + err


def test_help_shows_brackets_and_offers_shell_completion() -> None:
    code, out, _ = invoke("find", "--help", secrets=SECRETS)
    assert code == 0
    assert "[defaults]" in " ".join(out.split())  # a TOML table, not eaten as markup
    code, out, _ = invoke("--help", secrets=SECRETS)
    assert "--install-completion" in out
    assert "--show-completion" in out
