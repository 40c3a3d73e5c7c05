"""`find --key-package` and `export --key-packages` on the command line, over files only.

Exit codes: 2 for what the user can fix by retyping (a file that exists, --computer, a Key ID
naming several keys, sources with different packages), 3 for a key found without a package,
and then nothing at all is revealed.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bitkey_dir.core.model import KeyId, KeyPackage, RecoveryKey, RecoveryPassword
from bitkey_dir.core.records import PACKAGE_FIELDS, csv_line, key_csv_row, key_json
from tests.command_line import Outcome, invoke, invoke_with, trail_entries
from tests.conftest import EXAMPLES

KEYS = str(EXAMPLES / "keys")
EXPORTS = str(EXAMPLES / "exports")
KNOWN_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
KNOWN_PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
PACKAGE = bytes(range(7, 255)) * 2


SECRETS = [KNOWN_PASSWORD]


def one_error(outcome: Outcome) -> str:
    errors = [line for line in outcome.err.splitlines() if line.startswith("bitkey-dir: error:")]
    assert len(errors) == 1, outcome.err
    return errors[0]


def export_key(package: bytes | None) -> RecoveryKey:
    return RecoveryKey(
        source="corp-ad",
        key_id=KeyId.parse(KNOWN_ID),
        recovery_password=RecoveryPassword.parse(KNOWN_PASSWORD),
        computer="PC-0042",
        key_package=KeyPackage(package) if package else None,
    )


def export_with(path: Path, package: bytes | None, *, csv: bool = False) -> Path:
    key = export_key(package)
    if csv:
        path.write_text(csv_line(PACKAGE_FIELDS) + key_csv_row(key, key_package=True))
    else:
        path.write_text('{"keys": [' + key_json(key, key_package=True) + "]}")
    return path


@pytest.mark.parametrize(
    "extra",
    [
        ["-c", "PC-0042"],
        ["-k", KNOWN_ID, "--key-package", "-"],
        ["-k", KNOWN_ID, "--key-package", "{missing}/keypackage.bin"],
        ["-k", KNOWN_ID, "--key-package", "{existing}"],
    ],
)
def test_bad_combinations_are_one_line_and_exit_2(
    extra: list[str], tmp_path: Path, trail_file: Path
) -> None:
    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"kept")
    args = [a.format(missing=tmp_path / "no-such-folder", existing=existing) for a in extra]
    if "--key-package" not in args:
        args += ["--key-package", str(tmp_path / "keypackage.bin")]
    found = invoke("find", "-s", KEYS, *args, secrets=SECRETS)
    assert (found.code, found.out) == (2, ""), found.err
    assert "--key-package" in one_error(found)
    assert existing.read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.bin"]
    assert not trail_file.exists() or trail_file.read_text() == ""


def test_a_prefix_naming_several_keys_is_exit_2(tmp_path: Path) -> None:
    found = invoke(
        "find",
        "-k",
        "A1B2C3D4",
        "-s",
        EXPORTS,
        "--key-package",
        str(tmp_path / "k.bin"),
        secrets=SECRETS,
    )
    assert (found.code, found.out) == (2, "")
    assert "give the full Key ID" in one_error(found)


def test_a_key_file_holds_no_package_exit_3_reveals_nothing(
    tmp_path: Path, trail_file: Path
) -> None:
    out = tmp_path / "keypackage.bin"
    found = invoke(
        "find",
        "-k",
        "063EA4E1",
        "-s",
        KEYS,
        "--key-package",
        str(out),
        "-f",
        "key",
        secrets=SECRETS,
    )
    assert (found.code, found.out) == (3, "")
    assert "without a key package" in one_error(found)
    assert not out.exists()
    assert not trail_file.exists() or trail_file.read_text() == ""


@pytest.mark.parametrize("as_csv", [False, True])
def test_the_package_of_an_export_is_written_and_the_password_shown(
    tmp_path: Path, trail_file: Path, as_csv: bool
) -> None:
    export = export_with(tmp_path / ("keys.csv" if as_csv else "keys.json"), PACKAGE, csv=as_csv)
    out = tmp_path / "keypackage.bin"
    found = invoke(
        "find",
        "-k",
        "063EA4E1",
        "-s",
        str(export),
        "--key-package",
        str(out),
        "-f",
        "key",
        secrets=SECRETS,
    )
    assert found.code == 0, found.err
    assert found.out == KNOWN_PASSWORD + "\n"
    assert out.read_bytes() == PACKAGE
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    (entry,) = trail_entries()
    assert entry["key_package"] == str(out)
    assert PACKAGE.hex() not in found.err + trail_file.read_text()
    listed = invoke("trail", secrets=SECRETS)
    assert f"key package to {out}" in listed.out


def test_different_packages_for_one_key_are_exit_2(tmp_path: Path) -> None:
    first = export_with(tmp_path / "a.json", PACKAGE)
    second = export_with(tmp_path / "b.json", PACKAGE[::-1])
    out = tmp_path / "keypackage.bin"
    found = invoke(
        "find",
        "-k",
        KNOWN_ID,
        "-s",
        str(first),
        "-s",
        str(second),
        "--key-package",
        str(out),
        secrets=SECRETS,
    )
    assert (found.code, found.out) == (2, "")
    assert "different key packages" in one_error(found)
    assert not out.exists()


def test_export_of_files_without_packages_says_how_many_lack_one(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[sources.share]\ntype = "file"\npath = "{KEYS}"\n')
    out = tmp_path / "keys.json"
    done = invoke_with(
        config, "export", "-s", "share", "-o", str(out), "--key-packages", secrets=SECRETS
    )
    assert done.code == 0, done.err
    records = json.loads(out.read_text())["keys"]
    assert records
    assert all(tuple(r) == PACKAGE_FIELDS and r["key_package"] is None for r in records)
    assert done.err.count("without a key package") == 1


def test_a_relative_file_is_named_in_full_in_the_trail(
    tmp_path: Path, trail_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = export_with(tmp_path / "keys.json", PACKAGE)
    monkeypatch.chdir(tmp_path)
    found = invoke(
        "find",
        "-k",
        KNOWN_ID,
        "-s",
        str(export),
        "--key-package",
        "kp.bin",
        "-f",
        "key",
        secrets=SECRETS,
    )
    assert found.code == 0, found.err
    (entry,) = trail_entries()
    assert entry["key_package"] == str((tmp_path / "kp.bin").resolve())


def test_a_package_written_without_a_readable_password_is_exit_0(
    tmp_path: Path, trail_file: Path
) -> None:
    # An export made by an account that could read key packages but not passwords.
    export = tmp_path / "keys.json"
    record = json.loads(key_json(export_key(PACKAGE), key_package=True))
    record["recovery_password"] = None
    export.write_text(json.dumps({"keys": [record]}))
    out = tmp_path / "keypackage.bin"
    found = invoke("find", "-k", KNOWN_ID, "-s", str(export), "--key-package", str(out))
    # Something was revealed (the package, as sensitive as the password): not "nothing".
    assert found.code == 0, found.err
    assert out.read_bytes() == PACKAGE
    (entry,) = trail_entries()
    assert entry["key_package"] == str(out)
