"""`doctor` on key files: paths, key files found, files skipped and why (in-process).

Unreadable files need a user without root's capabilities: see
tests/integration/test_unreadable_files.py (test_doctor_names_an_unreadable_file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.command_line import invoke
from tests.unit.helpers import (
    KEY_ID,
    OTHER_KEY_ID,
    OTHER_PASSWORD,
    PASSWORD,
    utf16_le_bom,
    windows_key_file,
)


def doctor(*paths: Path, config: Path | None = None) -> tuple[int, dict[str, object]]:
    options = ["--config", str(config)] if config else []
    outcome = invoke(*options, "doctor", *map(str, paths), "-f", "json")
    for password in (PASSWORD, OTHER_PASSWORD):
        assert password not in outcome.out + outcome.err
    return outcome.code, json.loads(outcome.out)


def checks(document: dict[str, object], index: int = 0) -> list[dict[str, object]]:
    sources = document["sources"]
    assert isinstance(sources, list)
    found: list[dict[str, object]] = sources[index]["checks"]
    return found


def test_key_files_are_counted_and_skipped_files_named_with_why(tmp_path: Path) -> None:
    (tmp_path / "PC-1").mkdir()
    (tmp_path / "PC-1" / f"BitLocker Recovery Key {KEY_ID}.TXT").write_bytes(
        utf16_le_bom(windows_key_file(KEY_ID, PASSWORD))
    )
    (tmp_path / "PC-2.txt").write_text(f"{OTHER_KEY_ID}\n{OTHER_PASSWORD}\n", encoding="utf-8")
    (tmp_path / "readme.txt").write_text("ask the helpdesk\n", encoding="utf-8")
    (tmp_path / "startup.BEK").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe")
    code, document = doctor(tmp_path)
    assert code == 0
    found = {(c["area"], c["subject"]): c for c in checks(document)}
    root = str(tmp_path)
    assert found["path", root]["status"] == "ok"
    assert found["files", root]["detail"] == "2 key files (2 keys), 4 skipped"
    skipped = {
        Path(str(subject)).name: c["detail"]
        for (area, subject), c in found.items()
        if area == "skipped"
    }
    assert skipped == {
        "readme.txt": "not a key file: holds no recovery key",
        "startup.BEK": "not a key file (binary data)",
        "gone": "a link to something that does not exist",
        "pipe": "not a regular file",
    }


def test_a_file_over_the_size_limit_says_which_setting_reads_it(tmp_path: Path) -> None:
    big = tmp_path / "keys" / "big.txt"
    big.parent.mkdir()
    big.write_text(f"{KEY_ID}\n{PASSWORD}\n" + "x" * 200, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.keys]\ntype = "file"\npath = "{big.parent}"\nmax_file_size = 100\n',
        encoding="utf-8",
    )
    code, document = doctor(config=config)
    assert code == 0
    (skip,) = [c for c in checks(document) if c["area"] == "skipped"]
    assert skip["detail"] == f"larger than max_file_size ({big.stat().st_size} bytes > 100 bytes)"
    assert (
        skip["fix"]
        == f"max_file_size = {big.stat().st_size} in the source's config, if it holds keys"
    )
    files = [c for c in checks(document) if c["area"] == "files"]
    assert files[0]["status"] == "warn"


def test_a_missing_path_is_unreachable(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.keys]\ntype = "file"\npath = ["{tmp_path}", "{tmp_path / "gone"}"]\n',
        encoding="utf-8",
    )
    code, document = doctor(config=config)
    assert code == 4
    statuses = {c["subject"]: c["status"] for c in checks(document) if c["area"] == "path"}
    assert statuses == {str(tmp_path): "ok", str(tmp_path / "gone"): "unreachable"}


def test_each_configured_path_counts_its_own_files(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, key_id, password in (
        (first, KEY_ID, PASSWORD),
        (second, OTHER_KEY_ID, OTHER_PASSWORD),
    ):
        folder.mkdir()
        (folder / f"BitLocker Recovery Key {key_id}.TXT").write_bytes(
            utf16_le_bom(windows_key_file(key_id, password))
        )
    missing = tmp_path / "gone"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.keys]\ntype = "file"\npath = ["{first}", "{second}", "{missing}"]\n',
        encoding="utf-8",
    )
    code, document = doctor(config=config)
    assert code == 4  # the missing path
    found = {(c["area"], c["subject"]): c for c in checks(document)}
    assert found["files", str(first)]["detail"] == "1 key file (1 key), 0 skipped"
    assert found["files", str(second)]["detail"] == "1 key file (1 key), 0 skipped"
    # The missing path is reported once, as itself, not again under the others.
    assert [subject for area, subject in found if str(missing) in str(subject)] == [str(missing)]
