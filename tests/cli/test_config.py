"""Configuration: where it is found, and one precise line for every mistake in it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bitkey_dir.core.errors import ConfigError
from bitkey_dir.runtime.config import load_config
from tests.command_line import Outcome, invoke, invoke_with, run_process
from tests.conftest import EXAMPLES


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke("config", "path")
    expected = Path(os.environ["XDG_CONFIG_HOME"]) / "bitkey-dir" / "config.toml"
    if sys.platform == "linux":
        assert result.out == f"{expected}\n"
    assert "does not exist yet" in result.err
    monkeypatch.setenv("BITKEY_DIR_CONFIG", str(tmp_path / "from-env.toml"))
    assert invoke("config", "path").out == f"{tmp_path / 'from-env.toml'}\n"
    explicit = write(tmp_path, "")
    result = invoke_with(explicit, "config", "path")
    assert result.out == f"{explicit}\n"


def test_missing_default_config_is_empty_but_a_named_one_is_an_error(tmp_path: Path) -> None:
    config = load_config()
    assert (config.exists, config.sources, config.default_sources) == (False, {}, ())
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES.parent)
    result = invoke_with("examples/config.toml", "sources", "--json")
    assert result.code == 0, result.err
    listed = json.loads(result.out)["sources"]
    assert [(s["name"], s["type"], s["default"]) for s in listed] == [
        ("usb-keys", "file", True),
        ("backups", "file", True),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sources.a\n", "not valid TOML"),
        (b"\xff\xfe[defaults]", "not UTF-8"),
        ("colour = 1\n", "unknown top-level key 'colour'"),
        ("defaults = 3\n", "defaults: expected a table"),
        ("[defaults]\nsources = 'a'\n", "defaults.sources: expected a list of source names"),
        ("[defaults]\nsources = ['a']\n", "defaults.sources: no [sources.a] table"),
        ("[defaults]\nrequire_reason = 'yes'\n", "defaults.require_reason: expected true"),
        ("[defaults]\nsourcse = []\n", "defaults.sourcse: unknown key"),
        ("sources = 1\n", "sources: expected tables"),
        ("[sources.a]\npath = '.'\n", "sources.a: missing key 'type'"),
        ("[sources.'a b']\ntype = 'file'\n", "source names use letters"),
        ("[sources.a]\ntype = 'nosuch'\n", "sources.a.type: unknown source type 'nosuch'"),
        ("[sources.a]\ntype = 'file'\n", "sources.a.path: expected a file or folder"),
        ("[sources.a]\ntype = 'file'\npath = 3\n", "sources.a.path: expected a list"),
        ("[sources.a]\ntype = 'file'\npath = '.'\npaht = '.'\n", "unknown key 'paht'"),
        (
            "[sources.a]\ntype = 'file'\npath = '.'\ncomputer_from = 'dir'\n",
            'sources.a.computer_from: expected one of "none", "folder", "filename", got "dir"',
        ),
        (
            "[sources.a]\ntype = 'file'\npath = '.'\nmax_file_size = true\n",
            "sources.a.max_file_size: expected a whole number >= 1, got true",
        ),
        (
            "[sources.a]\ntype = 'file'\npath = '.'\nmax_file_size = 0\n",
            "sources.a.max_file_size: expected a whole number >= 1, got 0",
        ),
    ],
)
def test_config_errors_are_one_line_naming_file_and_key(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    path = write(tmp_path, text)
    result = invoke_with(path, "sources")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith(f"bitkey-dir: error: {path}")
    assert message in line


def test_config_that_is_a_folder(tmp_path: Path) -> None:
    result = invoke_with(tmp_path, "find", "-k", "063EA4E1")
    assert result.code == 2
    assert "is a folder" in result.err


def test_relative_paths_are_taken_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, f"[sources.s]\ntype = 'file'\npath = '{os.path.relpath(EXAMPLES, tmp_path)}'\n"
    )
    monkeypatch.chdir("/")
    result = invoke_with(path, "find", "-k", "063EA4E1", "-s", "s")
    assert result.code == 0, result.err


def test_no_source_at_all_says_how_to_configure_one() -> None:
    result = invoke("find", "-k", "063EA4E1")
    assert result.code == 2
    assert "no source to search: give --source PATH|NAME" in result.err


# -- which sources a command asks when none is named -----------------------------------------

KNOWN_PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"


def test_the_only_source_configured_is_every_commands_default(tmp_path: Path) -> None:
    path = write(tmp_path, f"[sources.share]\ntype = 'file'\npath = '{EXAMPLES / 'keys'}'\n")
    found = invoke_with(path, "find", "-k", "063EA4E1", "-f", "key", secrets=[KNOWN_PASSWORD])
    assert (found.code, found.out) == (0, KNOWN_PASSWORD + "\n"), found.err
    (listed,) = json.loads(invoke_with(path, "sources", "--json").out)["sources"]
    assert (listed["name"], listed["default"]) == ("share", True)
    doctor = invoke_with(path, "doctor", "-f", "json")
    assert [d["source"] for d in doctor.document["sources"]] == ["share"]
    audit = invoke_with(
        path, "audit"
    )  # key files keep no computer accounts: named, not "no source"
    assert audit.code == 2
    assert "share" in audit.err
    assert "no source to search" not in audit.err


@pytest.mark.parametrize(
    "command",
    [("find", "-k", "063EA4E1"), ("audit",), ("reads",), ("rotate", "-k", "063EA4E1")],
)
def test_several_sources_and_no_default_every_command_says_the_same(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    keys = EXAMPLES / "keys"
    table = f"type = 'file'\npath = '{keys}'\n"
    path = write(tmp_path, f"[sources.a]\n{table}[sources.b]\n{table}")
    outcome = invoke_with(path, *command)
    assert (outcome.code, outcome.out) == (2, "")
    (line,) = outcome.err.splitlines()
    assert line == (
        "bitkey-dir: error: no source to search: give --source PATH|NAME, or list default "
        f"sources in {path} ([defaults] sources = [...]); it configures 2 sources ('a', 'b') "
        "and names none as the default"
    )


# -- a config that is not a file ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["--config", "environment"])
def test_dev_null_is_an_empty_config(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: str) -> Outcome:
        if how == "environment":
            monkeypatch.setenv("BITKEY_DIR_CONFIG", os.devnull)
            return invoke(*args, secrets=[KNOWN_PASSWORD])
        return invoke_with(os.devnull, *args, secrets=[KNOWN_PASSWORD])

    listed = run("sources", "--json")
    assert listed.code == 0, listed.err
    assert json.loads(listed.out)["sources"] == []
    nothing = run("find", "-k", "063EA4E1")
    assert nothing.code == 2
    assert "no source to search: give --source PATH|NAME" in nothing.err
    found = run("find", "-k", "063EA4E1", "-s", str(EXAMPLES / "keys"), "-f", "key")
    assert (found.code, found.out) == (0, KNOWN_PASSWORD + "\n"), found.err


def test_a_config_from_a_pipe_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What `--config <(…)` hands over: /dev/fd/N, the read end of a pipe. Relative paths in
    # it are taken from the current folder, since a pipe has none of its own.
    monkeypatch.chdir(EXAMPLES)
    read, write_end = os.pipe()
    os.write(write_end, b"[sources.share]\ntype = 'file'\npath = 'keys'\n")
    os.close(write_end)
    try:
        found = invoke_with(f"/dev/fd/{read}", "find", "-k", "063EA4E1", "-f", "key")
    finally:
        os.close(read)
    assert (found.code, found.out) == (0, KNOWN_PASSWORD + "\n"), found.err


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash")
def test_process_substitution_in_a_shell(tmp_path: Path) -> None:
    config = f"[sources.share]\\ntype = 'file'\\npath = '{EXAMPLES / 'keys'}'\\n"
    script = f'exec "$0" -m bitkey_dir --config <(printf "{config}") find -k 063EA4E1 -f key'
    found = run_process(
        "-c", script, sys.executable, command=["/bin/bash"], secrets=[KNOWN_PASSWORD]
    )
    assert (found.code, found.out) == (0, KNOWN_PASSWORD + "\n"), found.err


# -- config errors never repeat a secret -------------------------------------------------------

AD_TABLE = "[sources.dc]\ntype = 'ad'\nuser = 'helpdesk@corp.example'\n"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "[sources.dc]\ntype = 'ad'\nservers = ['ldaps://user:Secret@host']\n",
            'sources.dc.servers: "ldaps://…@host": expected a URL with only a scheme',
        ),
        (
            "[sources.dc]\ntype = 'ad'\nservers = ['ldaps://Secret@host:636']\n",
            'sources.dc.servers: "ldaps://…@host:636": expected',
        ),
        (
            AD_TABLE + "servers = ['ldaps://dc1']\ndomain = 'Secret-Pa55!word'\n",
            "sources.dc.domain: expected a DNS name of letters, digits and '-', such as "
            "corp.example.com, got a value not shown here (it may be a secret)",
        ),
        (
            "[sources.dc]\ntype = 'ad'\nservers = ['ldaps://dc1']\nuser = 20251231\n",
            "sources.dc.user: expected a string, got a value not shown here",
        ),
        (
            "[sources.cloud]\ntype = 'entra'\ntenant_id = 'contoso.onmicrosoft.com'\n"
            "client_id = 'Secret8Q~s.Pa55word-0123456789'\n",
            "sources.cloud.client_id: expected a GUID or, for tenant_id, a domain name, got a "
            "value not shown here (it may be a secret)",
        ),
        (
            "[sources.s]\ntype = 'file'\npath = '.'\ncomputer_from = '" + "Secret" * 20 + "'\n",
            'computer_from: expected one of "none", "folder", "filename", got "'
            + ("Secret" * 7)[:40]
            + '…"',
        ),
    ],
)
def test_a_config_error_repeats_no_secret(tmp_path: Path, text: str, shown: str) -> None:
    path = write(tmp_path, text)
    done = invoke_with(path, "sources", never_shown=["user:Secret", "Pa55", "Secret" * 8])
    assert done.code == 2
    (line,) = done.err.splitlines()
    assert shown in line
    if "computer_from" not in text:
        assert "Secret" not in line
        assert "20251231" not in line


def test_a_source_url_with_a_password_is_not_repeated() -> None:
    done = invoke(
        "find",
        "-k",
        "063EA4E1",
        "-s",
        "ldaps://admin:Secret@dc1.corp.example",
        never_shown=["Secret", "admin"],
    )
    assert done.code == 2
    assert "--source ldaps://…@dc1.corp.example: expected a URL with only a scheme" in done.err
