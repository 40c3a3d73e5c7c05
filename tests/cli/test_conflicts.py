"""One full Key ID on two computers: `find` reveals nothing, says why in one line, records
the refusal in the trail and exits 5; the library raises the same error; an export keeps
every row and warns. Sources are exports (the file source reads them back), so each
sighting can name its computer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitkey_dir import Client
from bitkey_dir.core.errors import ConflictError, ExitCode
from tests.command_line import invoke_with, trail_entries
from tests.unit.helpers import KEY_ID, OTHER_PASSWORD, PASSWORD

OTHER_ID = "C1ACC990-6424-450A-A36B-F9B3DDCB369D"
SECRETS = [PASSWORD, OTHER_PASSWORD]


def record(computer: str, key_id: str = KEY_ID, password: str = PASSWORD) -> dict[str, object]:
    return {
        "source": "corp-ad",
        "computer": computer,
        "key_id": key_id,
        "recovery_password": password,
        "created": "2025-03-14T09:30:00+00:00",
        "volume_type": None,
        "volume_id": None,
        "device_id": None,
        "location": None,
        "deleted": False,
    }


def export(path: Path, *records: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"keys": list(records)}), encoding="utf-8")
    return path


def config(root: Path, **exports: Path) -> Path:
    text = f"[defaults]\nsources = {json.dumps(list(exports))}\n"
    for name, path in exports.items():
        text += f'[sources.{name}]\ntype = "file"\npath = ["{path}"]\n'
    path = root / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """The laptop's Key ID in `ad` under PC-0042, and a copy planted under LT-EVIL."""
    return config(
        tmp_path,
        ad=export(
            tmp_path / "ad" / "keys.json",
            record("PC-0042"),
            record("LT-EVIL\x1b[31m", password=OTHER_PASSWORD),
            record("PC-0043", OTHER_ID, OTHER_PASSWORD),
        ),
    )


@pytest.mark.parametrize("key_id", [KEY_ID, KEY_ID[:8], KEY_ID.lower()])
@pytest.mark.parametrize("fmt", ["json", "table", "phone", "key"])
def test_a_key_id_on_two_computers_reveals_nothing(planted: Path, key_id: str, fmt: str) -> None:
    outcome = invoke_with(
        planted, "find", "-k", key_id, "-f", fmt, "-r", "INC-1", "--no-index", secrets=SECRETS
    )
    assert outcome.code == ExitCode.CONFLICT == 5
    assert outcome.out == ""
    assert outcome.err.count("\n") == 1, outcome.err  # one line
    assert f"Key ID {KEY_ID} is escrowed for more than one computer" in outcome.err
    assert "PC-0042 (ad)" in outcome.err
    assert "LT-EVIL\\x1b[31m (ad)" in outcome.err  # escaped
    assert "Nothing is revealed" in outcome.err
    (refused,) = trail_entries()
    assert refused["action"] == "refuse"
    assert refused["key_id"] == KEY_ID
    assert refused["computers"] == ["PC-0042 (ad)", "LT-EVIL\x1b[31m (ad)"]
    assert refused["reason"] == "INC-1"
    assert "recovery_password" not in refused
    listed = invoke_with(planted, "trail", secrets=SECRETS)
    assert "refused, one Key ID held twice" in listed.out
    assert "\x1b" not in listed.out


def test_a_copy_in_another_source_is_a_conflict_too(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        tenant1=export(tmp_path / "t1" / "keys.json", record("PC-0042")),
        tenant2=export(tmp_path / "t2" / "keys.json", record("LT-0001")),
    )
    outcome = invoke_with(path, "find", "-k", KEY_ID, "-f", "json", secrets=SECRETS)
    assert outcome.code == 5
    assert "PC-0042 (tenant1), LT-0001 (tenant2)" in outcome.err


def test_the_same_key_of_one_computer_in_two_sources_is_shown(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        ad=export(tmp_path / "ad" / "keys.json", record("PC-0042")),
        backup=export(tmp_path / "backup" / "keys.json", record("pc-0042.corp.example")),
    )
    outcome = invoke_with(path, "find", "-k", KEY_ID[:8], "-f", "json", secrets=SECRETS)
    assert outcome.code == 0, outcome.err
    assert {key["source"] for key in outcome.keys} == {"ad", "backup"}
    assert outcome.document["ambiguous"] is False
    assert [entry["key_id"] for entry in trail_entries()] == [KEY_ID, KEY_ID]


def test_the_other_keys_of_a_computer_are_still_shown(planted: Path) -> None:
    outcome = invoke_with(planted, "find", "-k", OTHER_ID, "-f", "json", secrets=SECRETS)
    assert outcome.code == 0, outcome.err
    assert outcome.key_ids == [OTHER_ID]


def test_the_library_raises_the_same_refusal(planted: Path) -> None:
    with Client(config=planted) as client, pytest.raises(ConflictError) as refused:
        client.find(key_id=KEY_ID[:8], reason="INC-2")
    assert refused.value.exit_code == ExitCode.CONFLICT
    assert "PC-0042 (ad)" in refused.value.message
    assert PASSWORD not in str(refused.value)
    assert trail_entries()[-1]["action"] == "refuse"


def test_an_export_keeps_every_row_and_warns(planted: Path, tmp_path: Path) -> None:
    output = tmp_path / "backup.json"
    outcome = invoke_with(planted, "export", "-s", "ad", "-o", output, secrets=SECRETS)
    assert outcome.code == 0, outcome.err
    assert len(json.loads(output.read_text(encoding="utf-8"))["keys"]) == 3
    assert "1 Key ID(s) are escrowed for more than one computer" in outcome.err
    assert f"Key ID {KEY_ID}: PC-0042, LT-EVIL\\x1b[31m" in outcome.err
