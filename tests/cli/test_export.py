"""`bitkey-dir export`: every key of a source in one file that reads back exactly, appears only
when complete, has mode 0600, and never holds a password in clear text when encrypted.

No directory here: the file source over examples/ and keys built in the test are the sources.
Exports are read back the way a person would after the directory is gone: `bitkey-dir find
--source FILE` (with `--identity`, `identity_file` or the passphrase for encrypted ones).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import stat
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitkey_dir import __version__
from bitkey_dir.core.errors import AuthError, InputError, SourceError
from bitkey_dir.core.model import VOLUME_TYPES, KeyId, RecoveryKey, RecoveryPassword
from bitkey_dir.core.records import KEY_FIELDS, key_json, to_record
from bitkey_dir.runtime.encryption import (
    AGE_BINARY,
    PASSPHRASE_ENV,
    parse_recipient,
    uses_passphrase,
)
from bitkey_dir.sources.files.source import FileSource
from bitkey_dir.store.export_file import Encryption, write_export
from tests.command_line import invoke, invoke_with, run_process, trail_entries
from tests.conftest import EXAMPLES, example_key_data
from tests.import_probe import imported_by
from tests.unit.helpers import KEY_ID, PASSWORD, csv_shown, passwords

pyrage = pytest.importorskip("pyrage")


EVERYTHING = str(example_key_data())  # key files, manage-bde output and both example exports
PASSPHRASE = "correct horse battery staple 42"
WRONG_PASSPHRASE = "Tr0ub4dor&3-not-it"
FORMATS = ("json", "csv")
CLEAR_TEXT_WARNING = "holds recovery passwords in clear text"


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


def example_keys() -> list[RecoveryKey]:
    """Every bundled example key, as the file source reads it (12 keys, one deleted)."""
    warnings: list[str] = []
    keys = list(FileSource(EVERYTHING, (Path(EVERYTHING),)).iter_keys(warnings.append))
    assert warnings == []
    return keys


EXAMPLE_KEYS = example_keys()
EXAMPLE_PASSWORDS = [k.recovery_password.reveal() for k in EXAMPLE_KEYS if k.recovery_password]


def read_back(path: Path, **options: Any) -> list[RecoveryKey]:
    """The keys of an export through the file source, with no warning allowed."""
    warnings: list[str] = []
    keys = list(FileSource("backup", (path,), **options).iter_keys(warnings.append))
    assert warnings == []
    return keys


def expected_record(key: RecoveryKey, export: Path) -> dict[str, Any]:
    """What `find --source EXPORT -f json` must print for ``key``: every field as it was, but
    the source is the export (and a key without a location is located in the export)."""
    record = to_record(key)
    record["source"] = str(export)
    record["location"] = key.location or str(export)
    return record


def comparable(key: RecoveryKey) -> dict[str, Any]:
    """Every field but the source, with dates compared as written (offset included)."""
    return {
        **{f.name: getattr(key, f.name) for f in dataclasses.fields(key) if f.name != "source"},
        "key_id": str(key.key_id),
        "recovery_password": key.recovery_password.reveal() if key.recovery_password else None,
        "created": key.created.isoformat() if key.created else None,
    }


def files_in(folder: Path) -> list[str]:
    """Every entry, dot files (the temporary file) included."""
    return sorted(os.listdir(folder))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("bitkey-dir: error:")]


def assert_clear_of_secrets(data: bytes, secrets: list[str]) -> None:
    assert b"recovery_password" not in data
    for secret in secrets:
        assert secret.encode() not in data
        assert secret.replace("-", "").encode() not in data


def find_each(export: Path, *extra: str) -> None:
    """Every example key, looked up by its full Key ID in the export, comes back whole."""
    for key in EXAMPLE_KEYS:
        lookup = ["-k", str(key.key_id), "-s", str(export), "--include-deleted", "-f", "json"]
        code, out, err = invoke("find", *lookup, *extra)
        assert code == 0, err
        assert json.loads(out)["keys"] == [expected_record(key, export)]


def generated_key(n: int, source: str = "dir") -> RecoveryKey:
    factors = [(n * 7 + i) % 65536 for i in range(8)]
    return RecoveryKey(
        source=source,
        key_id=KeyId.from_uuid(uuid.UUID(int=n + 1, version=4)),
        recovery_password=RecoveryPassword.parse("-".join(f"{11 * k:06d}" for k in factors)),
        computer=f"PC-{n:05d}",
        created=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
        location=f"OU=Workstations,DC=corp,DC=example,DC=com #{n}",
    )


def failing_source(keys: int, error: BaseException) -> Iterator[RecoveryKey]:
    """A directory that answers ``keys`` keys, then fails."""
    for n in range(keys):
        yield generated_key(n)
    raise error


# -- keys for the encrypted exports ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Keypair:
    identity: Path  # the private key file, for --identity and identity_file
    public: str  # the public key, as --encrypt-to takes it


@pytest.fixture
def age_key(tmp_path: Path) -> Keypair:
    return _age_key(tmp_path, "age")


@pytest.fixture
def other_age_key(tmp_path: Path) -> Keypair:
    return _age_key(tmp_path, "other-age")


def _age_key(folder: Path, name: str) -> Keypair:
    identity = pyrage.x25519.Identity.generate()
    path = folder / f"{name}.key"
    # The layout age-keygen writes: comments, then the secret key.
    public = str(identity.to_public())
    path.write_text(f"# created: 2025-10-01T00:00:00Z\n# public key: {public}\n{identity}\n")
    path.chmod(0o600)
    return Keypair(path, public)


@pytest.fixture
def ssh_key(tmp_path: Path) -> Keypair:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    path = tmp_path / "id_ed25519"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return Keypair(path, public.decode() + " helpdesk@bitkey.test")


def export(out: Path, *args: str, source: str = EVERYTHING) -> tuple[int, str, str]:
    return invoke("export", "--source", source, "--output", str(out), *args)


# -- plain exports: round trip, format, mode -------------------------------------------------------


def test_the_examples_exercise_every_field() -> None:
    """The round trips below mean something only if the keys differ in every field."""
    assert len(EXAMPLE_KEYS) >= 10
    assert len({k.key_id for k in EXAMPLE_KEYS}) == len(EXAMPLE_KEYS)
    for name in ("computer", "created", "volume_type", "volume_id", "device_id", "location"):
        values = [getattr(key, name) for key in EXAMPLE_KEYS]
        assert None in values or name == "location", name
        assert any(value is not None for value in values), name
    assert {key.deleted for key in EXAMPLE_KEYS} == {True, False}
    offsets = {key.created.utcoffset() for key in EXAMPLE_KEYS if key.created}
    assert len(offsets) > 2
    assert any("," in (key.location or "") for key in EXAMPLE_KEYS)  # a field CSV must quote


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_reads_back_with_every_field_of_every_key(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"keys.{fmt}"
    code, stdout, stderr = export(out, "--format", fmt)
    assert code == 0, stderr
    assert stdout == f"{len(EXAMPLE_KEYS)} keys from {EVERYTHING} written to {out} ({fmt})\n"
    assert f"warning: {out} {CLEAR_TEXT_WARNING}" in stderr
    for password in EXAMPLE_PASSWORDS:
        assert password not in stdout + stderr
    assert mode(out) == 0o600
    assert files_in(tmp_path) == [out.name]
    # In the file source: the same keys, in the same order, every field equal.
    assert [comparable(k) for k in read_back(out)] == [comparable(k) for k in EXAMPLE_KEYS]
    # And through the CLI, one lookup per key, as after a disaster.
    find_each(out)


def test_a_json_export_is_one_valid_json_document(tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    before = datetime.now(UTC).replace(microsecond=0)
    assert export(out)[0] == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert set(document) == {"export", "keys"}
    header = document["export"]
    assert header["source"] == EVERYTHING
    assert header["bitkey_dir"] == __version__
    exported = datetime.fromisoformat(header["exported"])
    assert exported.utcoffset() is not None
    assert before <= exported <= datetime.now(UTC)
    assert [tuple(record) for record in document["keys"]] == [KEY_FIELDS] * len(EXAMPLE_KEYS)
    assert document["keys"] == [to_record(key) for key in EXAMPLE_KEYS]


def _many_keys(count: int) -> list[RecoveryKey]:
    return [
        RecoveryKey(
            source="estate",
            key_id=KeyId.from_uuid(uuid.UUID(int=n + 1)),
            recovery_password=RecoveryPassword.parse(PASSWORD),
            computer=f"PC-{n:05d}" + "x" * (n % 7),
            created=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
            location="OU=Workstations,DC=corp,DC=example,DC=com",
        )
        for n in range(count)
    ]


def _chunk_ends(keys: list[RecoveryKey]) -> list[int]:
    """After how many keys the file's buffer (io.DEFAULT_BUFFER_SIZE) first fills."""
    ends, size = [], 0
    for count, key in enumerate(keys, start=1):
        size += len(key_json(key))
        if size > io.DEFAULT_BUFFER_SIZE:
            ends.append(count)
            size = 0
    return ends


def test_a_json_export_is_valid_json_wherever_its_chunks_end(tmp_path: Path) -> None:
    keys = _many_keys(100)
    first = _chunk_ends(keys)[0]
    for count in (first - 1, first, first + 1, len(keys)):
        out = tmp_path / f"{count}.json"
        assert write_export(iter(keys[:count]), out, fmt="json", source="estate").keys == count
        document = json.loads(out.read_text(encoding="utf-8"))
        assert document["keys"] == [to_record(key) for key in keys[:count]]


def test_a_csv_export_has_the_documented_columns(tmp_path: Path) -> None:
    out = tmp_path / "keys.csv"
    assert export(out, "--format", "csv")[0] == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert tuple(rows[0]) == KEY_FIELDS
    assert len(rows) == len(EXAMPLE_KEYS)
    assert {row["deleted"] for row in rows} == {"true", "false"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_source_is_an_empty_export_that_reads_back(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out" / f"keys.{fmt}"
    out.parent.mkdir()
    assert write_export(iter(()), out, fmt=fmt, source="none").keys == 0
    assert read_back(out) == []
    if fmt == "json":
        assert json.loads(out.read_text())["keys"] == []


def test_the_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        out = tmp_path / "keys.json"
        assert write_export(iter(EXAMPLE_KEYS), out, fmt="json", source="s").keys == len(
            EXAMPLE_KEYS
        )
    finally:
        os.umask(old)
    assert mode(out) == 0o600


# -- refusing to overwrite, and folders ------------------------------------------------------------


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    out.write_text("the previous export\n")
    out.chmod(0o644)
    code, stdout, stderr = export(out)
    assert (code, stdout) == (2, "")
    assert error_lines(stderr) == [f"bitkey-dir: error: {out} exists: give --force to replace it"]
    assert out.read_text() == "the previous export\n"
    with pytest.raises(InputError, match="give --force"):
        write_export(iter(EXAMPLE_KEYS), out, fmt="json", source="s")
    assert out.read_text() == "the previous export\n"
    assert files_in(tmp_path) == [out.name]

    code, stdout, stderr = export(out, "--force")
    assert code == 0, stderr
    assert len(read_back(out)) == len(EXAMPLE_KEYS)
    assert mode(out) == 0o600  # a new file, not the old one's mode
    assert files_in(tmp_path) == [out.name]


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_is_not_a_target(tmp_path: Path, force: bool) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    code, stdout, stderr = export(folder, *(["--force"] if force else []))
    assert (code, stdout) == (2, "")
    (line,) = error_lines(stderr)
    assert str(folder) in line
    with pytest.raises(InputError, match="is a folder"):
        write_export(iter(EXAMPLE_KEYS), folder, fmt="json", source="s", force=True)
    assert files_in(folder) == []
    assert files_in(tmp_path) == ["backups"]


def test_a_missing_parent_folder_is_bad_input(tmp_path: Path) -> None:
    code, _, stderr = export(tmp_path / "nowhere" / "keys.json")
    assert code == 2
    assert error_lines(stderr) == [
        f"bitkey-dir: error: cannot write {tmp_path / 'nowhere' / 'keys.json'} "
        "(No such file or directory)"
    ]


# -- a source that fails midway --------------------------------------------------------------------

PROTECTIONS = ("plain", "recipient", "passphrase")


def protection(kind: str) -> Encryption | None:
    if kind == "recipient":
        return Encryption(recipients=(pyrage.x25519.Identity.generate().to_public(),))
    if kind == "passphrase":
        return Encryption(passphrase=PASSPHRASE)
    return None


@pytest.mark.parametrize("kind", PROTECTIONS)
@pytest.mark.parametrize("fmt", FORMATS)
# 0: before the first key; 3: inside the first chunk; 2500: after several 64 KiB writes.
@pytest.mark.parametrize("after", [0, 3, 2500])
def test_a_source_failing_midway_leaves_no_file(
    tmp_path: Path, kind: str, fmt: str, after: int
) -> None:
    out = tmp_path / f"keys.{fmt}"
    failure = SourceError("dc1.corp.example.com stopped answering")
    with pytest.raises(SourceError) as raised:
        write_export(
            failing_source(after, failure), out, fmt=fmt, source="dir", encryption=protection(kind)
        )
    assert raised.value is failure  # the directory's error, not an encryption or I/O error
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("kind", PROTECTIONS)
@pytest.mark.parametrize("error", [AuthError("token expired"), KeyboardInterrupt()])
def test_any_failure_type_propagates_and_keeps_the_previous_export(
    tmp_path: Path, kind: str, error: BaseException
) -> None:
    out = tmp_path / "keys.json"
    out.write_text("the previous export\n")
    with pytest.raises(type(error)) as raised:
        write_export(
            failing_source(50, error),
            out,
            fmt="json",
            source="dir",
            encryption=protection(kind),
            force=True,
        )
    assert raised.value is error
    assert out.read_text() == "the previous export\n"
    assert files_in(tmp_path) == [out.name]


def test_a_failing_source_on_the_command_line_is_exit_4_and_writes_nothing(
    tmp_path: Path,
) -> None:
    # The first path answers, the second is gone (an unmounted share): the export must fail.
    config = tmp_path / "config.toml"
    config.write_text(
        "[sources.share]\n"
        'type = "file"\n'
        f"path = [{json.dumps(str(EXAMPLES / 'keys'))}, {json.dumps(str(tmp_path / 'gone'))}]\n"
    )
    out = tmp_path / "out" / "keys.json"
    out.parent.mkdir()
    code, stdout, stderr = invoke_with(config, "export", "-s", "share", "-o", str(out))
    assert (code, stdout) == (4, "")
    assert len(error_lines(stderr)) == 1
    assert "cannot open" in stderr
    assert files_in(out.parent) == []


def test_an_export_of_an_undecryptable_export_is_exit_3_and_writes_nothing(
    tmp_path: Path, age_key: Keypair
) -> None:
    # An export of a backup must not silently miss the keys of an export it cannot open.
    share = tmp_path / "share"
    share.mkdir()
    assert export(share / "old.json", "--encrypt-to", age_key.public)[0] == 0
    out = tmp_path / "out" / "keys.json"
    out.parent.mkdir()
    code, stdout, stderr = export(out, source=str(share))
    assert (code, stdout) == (3, "")
    assert len(error_lines(stderr)) == 1
    assert "could not be decrypted" in stderr
    assert files_in(out.parent) == []
    # With the identity in the config, the keys are exported again (here to a new recipient).
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.share]\ntype = "file"\npath = "share"\nidentity_file = "{age_key.identity}"\n'
    )
    code, stdout, stderr = invoke_with(config, "export", "-s", "share", "-o", str(out))
    assert code == 0, stderr
    assert [comparable(k) for k in read_back(out)] == [comparable(k) for k in EXAMPLE_KEYS]


# -- encryption ------------------------------------------------------------------------------------


def assert_encrypted(out: Path) -> None:
    data = out.read_bytes()
    assert data.startswith(AGE_BINARY)
    assert_clear_of_secrets(data, EXAMPLE_PASSWORDS)
    assert mode(out) == 0o600
    assert not [name for name in files_in(out.parent) if name.endswith(".tmp")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_encrypted_to_an_age_recipient(tmp_path: Path, age_key: Keypair, fmt: str) -> None:
    out = tmp_path / "out" / f"keys.{fmt}.age"
    out.parent.mkdir()
    code, stdout, stderr = export(out, "--format", fmt, "--encrypt-to", age_key.public)
    assert code == 0, stderr
    count = len(EXAMPLE_KEYS)
    assert stdout == f"{count} keys from {EVERYTHING} written to {out} (age-encrypted {fmt})\n"
    assert CLEAR_TEXT_WARNING not in stderr
    assert_encrypted(out)
    assert files_in(out.parent) == [out.name]
    assert not uses_passphrase(out.read_bytes())
    find_each(out, "--identity", str(age_key.identity))
    keys = read_back(out, identity_files=(age_key.identity,))
    assert [comparable(k) for k in keys] == [comparable(k) for k in EXAMPLE_KEYS]


@pytest.mark.parametrize("given_as", ["text", "file"])
def test_encrypted_to_an_ssh_ed25519_key(tmp_path: Path, ssh_key: Keypair, given_as: str) -> None:
    recipient = ssh_key.public
    if given_as == "file":
        pub = tmp_path / "id_ed25519.pub"
        pub.write_text(ssh_key.public + "\n")
        recipient = str(pub)
    out = tmp_path / "keys.csv"
    code, _, stderr = export(out, "-f", "csv", "--encrypt-to", recipient)
    assert code == 0, stderr
    assert_encrypted(out)
    find_each(out, "-i", str(ssh_key.identity))


def test_a_recipient_given_as_a_file_path(tmp_path: Path, age_key: Keypair) -> None:
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# the disaster-recovery key, kept in the safe\n\n{age_key.public}\n")
    out = tmp_path / "keys.json"
    code, _, stderr = export(out, "--encrypt-to", str(recipients))
    assert code == 0, stderr
    assert_encrypted(out)
    keys = read_back(out, identity_files=(age_key.identity,))
    assert [comparable(k) for k in keys] == [comparable(k) for k in EXAMPLE_KEYS]


def test_two_recipients_either_identity_decrypts(
    tmp_path: Path, age_key: Keypair, ssh_key: Keypair, other_age_key: Keypair
) -> None:
    out = tmp_path / "keys.json"
    code, _, stderr = export(out, "-r", age_key.public, "--encrypt-to", ssh_key.public)
    assert code == 0, stderr
    assert_encrypted(out)
    for identity in (age_key.identity, ssh_key.identity):
        code, found, err = invoke("find", "-k", KEY_ID[:8], "-s", str(out), "-i", str(identity))
        assert code == 0, err
        assert [k["recovery_password"] for k in json.loads(found)["keys"]] == [PASSWORD]
    # A third key is no use.
    code, _, err = invoke(
        "find", "-k", KEY_ID[:8], "-s", str(out), "-i", str(other_age_key.identity)
    )
    assert code == 3, err


@pytest.mark.parametrize("fmt", FORMATS)
def test_encrypted_with_a_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    out = tmp_path / f"keys.{fmt}"
    code, stdout, stderr = export(out, "-f", fmt, "--passphrase")
    assert code == 0, stderr
    assert "age-encrypted" in stdout
    assert CLEAR_TEXT_WARNING not in stderr
    assert PASSPHRASE not in stdout + stderr
    assert_encrypted(out)
    assert PASSPHRASE.encode() not in out.read_bytes()
    assert uses_passphrase(out.read_bytes())
    # Every key, every field (one scrypt derivation: about a second each, so only one here)...
    keys = read_back(out)
    assert [comparable(k) for k in keys] == [comparable(k) for k in EXAMPLE_KEYS]
    # ...and the CLI, with the passphrase from the environment.
    key = next(k for k in EXAMPLE_KEYS if k.created and k.deleted)
    code, found, err = invoke("find", "-k", str(key.key_id), "-s", str(out), "--include-deleted")
    assert code == 0, err
    assert json.loads(found)["keys"] == [expected_record(key, out)]
    assert PASSPHRASE not in found + err


def test_identity_file_in_a_file_source_config(tmp_path: Path, age_key: Keypair) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    out = backups / "keys-2025-11.json.age"
    assert export(out, "--encrypt-to", age_key.public)[0] == 0
    config = tmp_path / "config.toml"
    # Relative paths, from the config file's folder.
    config.write_text(
        '[defaults]\nsources = ["backups"]\n\n'
        '[sources.backups]\ntype = "file"\npath = "backups"\n'
        f'identity_file = "{age_key.identity.name}"\n'
    )
    code, stdout, stderr = invoke_with(config, "find", "-c", "PC-0107", "-f", "json")
    assert code == 0, stderr
    found = json.loads(stdout)["keys"]
    assert {k["key_id"] for k in found} == {
        str(k.key_id) for k in EXAMPLE_KEYS if k.computer == "PC-0107"
    }
    assert stderr == ""


WRONG_KEYS = ["wrong identity", "wrong passphrase", "nothing given"]


@pytest.mark.parametrize("encrypted_with", ["recipient", "passphrase"])
@pytest.mark.parametrize("reader", WRONG_KEYS)
def test_an_export_that_cannot_be_decrypted_is_exit_3_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    age_key: Keypair,
    other_age_key: Keypair,
    encrypted_with: str,
    reader: str,
) -> None:
    out = tmp_path / "keys.json"
    if encrypted_with == "recipient":
        assert export(out, "--encrypt-to", age_key.public)[0] == 0
    else:
        monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
        assert export(out, "--passphrase")[0] == 0
        monkeypatch.delenv(PASSPHRASE_ENV)
    extra: list[str] = []
    if reader == "wrong identity":
        extra = ["--identity", str(other_age_key.identity)]
    elif reader == "wrong passphrase":
        monkeypatch.setenv(PASSPHRASE_ENV, WRONG_PASSPHRASE)
    code, stdout, stderr = invoke("find", "-k", KEY_ID[:8], "-s", str(out), "-f", "key", *extra)
    assert (code, stdout) == (3, "")
    (line,) = error_lines(stderr)
    assert line.count(str(out)) == 1  # the file is named once
    assert "could not be decrypted" in line
    # The hint fits what was tried: never a passphrase for a file only a key opens, and
    # never "set the variable" when it is set.
    expected = {
        ("recipient", "wrong identity"): "none of the identities given",
        ("recipient", "wrong passphrase"): "give --identity FILE",
        ("recipient", "nothing given"): "give --identity FILE",
        ("passphrase", "wrong identity"): f"set {PASSPHRASE_ENV}",
        ("passphrase", "wrong passphrase"): f"the passphrase in {PASSPHRASE_ENV} does not open",
        ("passphrase", "nothing given"): f"set {PASSPHRASE_ENV}",
    }[(encrypted_with, reader)]
    assert expected in line
    assert "Traceback" not in stderr
    assert all(len(text) < 600 for text in stderr.splitlines())
    for secret in (PASSPHRASE, WRONG_PASSPHRASE, *EXAMPLE_PASSWORDS):
        assert secret not in stderr
    assert "AGE-SECRET-KEY" not in stderr


def test_a_plain_key_file_beside_an_undecryptable_export_is_still_found(
    tmp_path: Path, age_key: Keypair
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    assert export(share / "keys.json", "--encrypt-to", age_key.public)[0] == 0
    (share / "key.txt").write_text(f"{KEY_ID}\n{PASSWORD}\n")
    code, stdout, stderr = invoke("find", "-k", KEY_ID[:8], "-s", str(share), "-f", "key")
    assert (code, stdout) == (0, PASSWORD + "\n")
    assert "keys.json: skipped" in stderr


# The identity, pasted where its public key belongs: a credential that must not be echoed.
SECRET_KEY_BY_MISTAKE = "AGE-SECRET-KEY-1" + "Q" * 58


@pytest.mark.parametrize(
    "recipient",
    [
        "garbage",
        "age1garbage",
        "ssh-ed25519 AAAAnot-a-key",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        pytest.param(SECRET_KEY_BY_MISTAKE, id="a secret key instead of the public key"),
        "",
    ],
)
def test_a_recipient_that_is_not_a_public_key_is_exit_2(tmp_path: Path, recipient: str) -> None:
    out = tmp_path / "keys.json"
    code, stdout, stderr = export(out, "--encrypt-to", recipient)
    assert (code, stdout) == (2, "")
    assert len(error_lines(stderr)) == 1
    assert "--encrypt-to" in stderr
    assert "AGE-SECRET-KEY" not in stderr
    assert files_in(tmp_path) == []


def test_a_recipient_file_with_two_keys_or_none_is_exit_2(
    tmp_path: Path, age_key: Keypair, other_age_key: Keypair
) -> None:
    for name, text in [
        ("two.txt", f"{age_key.public}\n{other_age_key.public}\n"),
        ("none.txt", "# nothing here\n"),
    ]:
        (tmp_path / name).write_text(text)
        out = tmp_path / "keys.json"
        code, _, stderr = export(out, "--encrypt-to", str(tmp_path / name))
        assert code == 2
        assert "exactly one public key" in stderr
        assert not out.exists()


def test_encrypt_to_and_passphrase_together_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age_key: Keypair
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    out = tmp_path / "keys.json"
    code, stdout, stderr = export(out, "--encrypt-to", age_key.public, "--passphrase")
    assert (code, stdout) == (2, "")
    assert error_lines(stderr) == ["bitkey-dir: error: give --encrypt-to or --passphrase, not both"]
    assert not out.exists()


def test_passphrase_without_environment_or_terminal_is_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    code, stdout, stderr = export(out, "--passphrase")
    assert (code, stdout) == (2, "")
    (line,) = error_lines(stderr)
    assert PASSPHRASE_ENV in line
    assert files_in(tmp_path) == []


def test_bad_input_costs_no_typing_and_a_typo_no_directory_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operation's order, for the command and the library: every check, then the
    # passphrase, then the source.
    from bitkey_dir.ops import export as exporting
    from bitkey_dir.ops.run import Run
    from bitkey_dir.runtime import encryption
    from bitkey_dir.runtime.config import parse_config

    asked: list[str] = []

    def typed() -> str:
        asked.append("asked")
        return PASSPHRASE

    strict = Run(parse_config({"defaults": {"require_reason": True}}, tmp_path / "c.toml"))
    existing = tmp_path / "keys.json"
    existing.write_text("kept", encoding="utf-8")
    new = tmp_path / "new.json"
    for output, reason, recipients in (
        (existing, "INC-1", []),  # exists, no --force
        (new, None, []),  # the config requires a reason
        (new, f"read {PASSWORD}", []),  # a password is no reason
        (new, "INC-1", ["age1x"]),  # a recipient and a passphrase
    ):
        with pytest.raises(InputError):
            exporting.prepare(
                strict, output, recipients=recipients, passphrase=typed, reason=reason
            )
    assert asked == []
    sealed = exporting.prepare(strict, new, passphrase=typed, reason="INC-1")
    assert asked == ["asked"]
    assert sealed is not None
    assert PASSPHRASE not in repr(sealed)

    # The command: a typo in the second typing ends it before any source is opened.
    opened: list[str] = []
    monkeypatch.setattr(Run, "open_one", lambda run, spec: opened.append(spec))

    def typo(*, confirm: bool) -> str:
        raise InputError("the two passphrases differ; nothing written")

    monkeypatch.setattr(encryption, "passphrase_from_env_or_prompt", typo)
    code, stdout, stderr = export(new, "--passphrase")
    assert (code, stdout) == (2, "")
    assert error_lines(stderr) == ["bitkey-dir: error: the two passphrases differ; nothing written"]
    assert opened == []
    assert not new.exists()


def test_an_empty_passphrase_in_the_environment_is_not_a_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "")
    code, _, stderr = export(tmp_path / "keys.json", "--passphrase")
    assert code == 2
    assert PASSPHRASE_ENV in stderr
    assert files_in(tmp_path) == []


def test_the_passphrase_is_never_in_a_repr() -> None:
    protection = Encryption(passphrase=PASSPHRASE)
    for shown in (repr(protection), str(protection), f"{protection!r}", repr([protection])):
        assert PASSPHRASE not in shown
        assert "passphrase=set" in shown
    recipients = Encryption(recipients=(parse_recipient(str(_public())),))
    assert repr(recipients) == "Encryption(recipients=1, passphrase=none)"


def _public() -> Any:
    return pyrage.x25519.Identity.generate().to_public()


# -- the command line ------------------------------------------------------------------------------


def test_help_lists_export() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    assert re.search(r"^\W*export\b", out, re.MULTILINE), out
    code, out, _ = invoke("export", "--help")
    assert code == 0
    for option in ("--source", "--output", "--format", "--encrypt-to", "--passphrase", "--force"):
        assert option in out


def test_export_needs_an_output() -> None:
    code, out, err = invoke("export", "--source", EVERYTHING)
    assert (code, out) == (2, "")
    assert "--output" in err


def test_export_help_imports_no_directory_client_and_no_pyrage() -> None:
    heavy, mine, stdout = imported_by("export", "--help")
    assert heavy == []
    assert "bitkey_dir.store.export_file" not in mine
    assert "bitkey_dir.runtime.encryption" not in mine
    assert not [m for m in mine if m.startswith("bitkey_dir.sources")]
    assert b"--encrypt-to" in stdout


def test_a_plain_export_in_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    proc = run_process("export", "-s", EVERYTHING, "-o", out, secrets=EXAMPLE_PASSWORDS)
    assert proc.code == 0, proc.err
    assert proc.out == f"{len(EXAMPLE_KEYS)} keys from {EVERYTHING} written to {out} (json)\n"
    assert proc.err == f"warning: {out} {CLEAR_TEXT_WARNING}: keep it somewhere safe\n"
    assert mode(out) == 0o600


# -- CSV corners that lose keys --------------------------------------------------------------------


def test_a_lone_carriage_return_in_a_name_survives_a_csv_export(tmp_path: Path) -> None:
    key = dataclasses.replace(generated_key(1), computer="PC\r0042")
    out = tmp_path / "keys.csv"
    write_export([key], out, fmt="csv", source="dir")
    assert [comparable(k) for k in read_back(out)] == [comparable(key)]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_control_characters_in_a_name_do_not_make_an_export_unreadable(
    tmp_path: Path, fmt: str
) -> None:
    """JSON keeps them escaped; CSV cannot, so there they become U+FFFD: lossy for the name,
    but the file stays text and no key is lost."""
    keys = [generated_key(n) for n in range(3)]
    keys[1] = dataclasses.replace(keys[1], computer="PC\x00-\x01\x02\x03")
    out = tmp_path / f"keys.{fmt}"
    write_export(keys, out, fmt=fmt, source="dir")
    if fmt == "csv":
        keys[1] = dataclasses.replace(keys[1], computer="PC\ufffd-\ufffd\ufffd\ufffd")
    assert [comparable(k) for k in read_back(out)] == [comparable(k) for k in keys]


# -- property: random keys read back identical -----------------------------------------------------

# Names with what breaks naive writers: quotes, commas, semicolons, line breaks (a bare CR
# too), tabs, non-ASCII letters and digits, emoji, a BOM, Unicode line separators. Not the
# C0 controls that keyfiles.decode() counts as binary: see the test above.
NAME_CHARS = st.one_of(
    st.sampled_from([*"\"',;\r\n\t =*$()[]{}\\", "\r\n", "\ufeff", "\u2028", "\x85"]),
    st.characters(blacklist_categories=("Cs", "Cc")),
)
NAMES = st.lists(NAME_CHARS, min_size=1, max_size=20).map("".join)
# Fixed offsets to the minute, as directories write them, and UTC.
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
CREATED = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=OFFSETS
)
OPTIONAL_GUID = st.none() | st.uuids().map(lambda u: str(u).upper())


@st.composite
def recovery_keys(draw: st.DrawFn) -> RecoveryKey:
    return RecoveryKey(
        source=draw(NAMES),
        key_id=KeyId.from_uuid(draw(st.uuids())),
        recovery_password=draw(st.none() | passwords.map(RecoveryPassword.parse)),
        computer=draw(st.none() | NAMES),
        created=draw(CREATED),
        volume_type=draw(st.none() | st.sampled_from(VOLUME_TYPES)),
        volume_id=draw(OPTIONAL_GUID),
        device_id=draw(st.none() | st.uuids().map(str)),
        location=draw(st.none() | NAMES),
        deleted=draw(st.booleans()),
    )


KEY_LISTS = st.lists(recovery_keys(), max_size=12, unique_by=lambda k: k.key_id)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(keys=KEY_LISTS, fmt=st.sampled_from(FORMATS))
def test_random_keys_read_back_identical(keys: list[RecoveryKey], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"keys.{fmt}"
        assert write_export(keys, out, fmt=fmt, source="random").keys == len(keys)
        got = read_back(out)
        assert files_in(Path(folder)) == [out.name]
    expected = [
        comparable(dataclasses.replace(key, location=key.location or str(out))) for key in keys
    ]
    if fmt == "csv":  # a spreadsheet must not act on C1 or bidi controls: they read back escaped
        for record in expected:
            for name in ("computer", "volume_type", "volume_id", "device_id", "location"):
                if isinstance(record[name], str):
                    record[name] = csv_shown(record[name])
    assert [comparable(key) for key in got] == expected
    assert {key.source for key in got} <= {"backup"}


@pytest.mark.parametrize("inside", ["keys.json", "sub/keys.json"])
def test_an_export_into_the_folder_its_file_source_reads_is_refused(
    tmp_path: Path, inside: str
) -> None:
    """Else --force would read the previous export (doubling every key) and the half-written
    temporary file beside it."""
    folder = tmp_path / "keys"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.json").write_bytes((EXAMPLES / "exports" / "keys-2025-10.json").read_bytes())
    code, out, err = export(folder / inside, source=str(folder))
    assert code == 2
    assert out == ""
    assert err == (
        f"bitkey-dir: error: {folder / inside} is inside {folder}, which {folder} reads: "
        "write the export somewhere else\n"
    )
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["one.json"]


def test_an_identity_file_that_holds_no_private_key_is_bad_input(tmp_path: Path) -> None:
    """A public key given as --identity is a mistake to fix (exit 2), not a refusal (exit 3)."""
    identity = pyrage.x25519.Identity.generate()
    out = tmp_path / "keys.age"
    assert export(out, "--encrypt-to", str(identity.to_public()))[0] == 0
    public = tmp_path / "key.pub"
    public.write_text(f"{identity.to_public()}\n", encoding="utf-8")
    code, _, err = invoke("find", "--key-id", "063EA4E1", "--source", str(out), "-i", str(public))
    assert code == 2
    assert f"{public}: no AGE-SECRET-KEY-1… line and no SSH private key" in err
    assert str(identity) not in err


@given(recovery_keys(), st.text(), st.text())
def test_the_written_out_json_line_is_json_dumps_of_the_record(
    key: RecoveryKey, computer: str, location: str
) -> None:
    # Any text at all in the free-form fields: quotes, backslashes, controls, lone surrogates.
    for candidate in (key, dataclasses.replace(key, computer=computer, location=location)):
        assert key_json(candidate) == json.dumps(to_record(candidate), ensure_ascii=False)


def test_an_export_that_would_hold_no_key_writes_nothing_and_keeps_the_last_one(
    tmp_path: Path,
) -> None:
    # An account that lost its rights sees no key: a nightly --force must not replace the last
    # good backup with an empty one, nor report success.
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "keys.json"
    out.write_text("the last good backup\n")
    code, stdout, stderr = export(out, "--force", source=str(empty))
    assert (code, stdout) == (1, "")
    assert "gave no key: nothing written" in stderr
    assert out.read_text() == "the last good backup\n"
    assert files_in(tmp_path) == ["empty", "keys.json"]


def test_minus_r_is_the_reason_and_an_old_script_giving_it_a_key_still_encrypts(
    tmp_path: Path, age_key: Keypair, trail_file: Path
) -> None:
    out = tmp_path / "keys.json"
    code, _, stderr = export(out, "-r", "DR-2024-1")
    assert code == 0, stderr
    entry = trail_entries()[-1]
    assert entry["reason"] == "DR-2024-1"
    # -r KEY meant --encrypt-to before: never an unencrypted file because the meaning moved.
    sealed = tmp_path / "sealed.json"
    code, _, stderr = export(sealed, "-r", age_key.public)
    assert code == 0, stderr
    assert "taken as --encrypt-to" in stderr
    assert sealed.read_bytes().startswith(b"age-encryption.org/v1")


def test_export_to_standard_output_is_the_export_itself(
    tmp_path: Path, age_key: Keypair, trail_file: Path
) -> None:
    code, stdout, stderr = export(Path("-"))
    assert code == 0, stderr
    assert {key["key_id"] for key in json.loads(stdout)["keys"]} == {
        str(key.key_id) for key in EXAMPLE_KEYS
    }
    assert "written to standard output" in stderr
    assert not (Path.cwd() / "-").exists()
    assert trail_entries()[-1]["output"] == "standard output"


# The reports, rights and rotation models are for other commands; an export loading them pays
# for some twenty dataclasses on every run.
EXPORT_NEEDS_NONE_OF = (
    "bitkey_dir.core.reports",
    "bitkey_dir.core.rights",
    "bitkey_dir.core.rotation",
)


def test_a_file_export_imports_no_reports_rights_or_rotation(tmp_path: Path) -> None:
    _, mine, _ = imported_by("export", "-s", EVERYTHING, "-o", str(tmp_path / "keys.json"))
    assert "bitkey_dir.store.export_file" in mine
    assert [m for m in EXPORT_NEEDS_NONE_OF if m in mine] == []


def test_an_ad_export_imports_no_reports_rights_or_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[sources.dc]\ntype = "ad"\nservers = ["ldaps://127.0.0.1:1"]\n'
        'base_dn = "DC=corp,DC=example"\nuser = "helpdesk@corp.example"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "not-a-real-one")
    out = tmp_path / "keys.json"
    _, mine, _ = imported_by("--config", str(config), "export", "--source", "dc", "-o", str(out))
    assert "bitkey_dir.sources.ad.source" in mine
    assert [m for m in EXPORT_NEEDS_NONE_OF if m in mine] == []


def test_the_source_contract_still_exports_the_report_and_rights_models() -> None:
    from bitkey_dir.core import reports, rights
    from bitkey_dir.sources import base

    assert base.Check is reports.Check
    assert base.CHECK_STATUSES is reports.CHECK_STATUSES
    assert base.RightsChange is rights.RightsChange
    with pytest.raises(AttributeError, match="no attribute 'Nonesuch'"):
        base.Nonesuch  # noqa: B018 - the lookup is what is tested
