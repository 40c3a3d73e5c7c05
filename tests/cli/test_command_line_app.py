"""The app a command line runs: only the command it names is built, and nothing else changes."""

from __future__ import annotations

import pytest

from bitkey_dir.cli.app import app, for_command_line
from tests.command_line import run_process


def _names(argv: list[str]) -> list[str | None]:
    chosen = for_command_line(argv)
    return [info.name for info in (*chosen.registered_commands, *chosen.registered_groups)]


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["export", "-s", "ad", "-o", "keys.json"], "export"),
        (["--config", "find", "find", "--key-id", "063EA4E1"], "find"),  # a file named "find"
        (["--config=x.toml", "-v", "audit"], "audit"),
        (["--verbose", "rights", "show"], "rights"),  # a group: its sub-commands come along
        (["config", "path"], "config"),
    ],
)
def test_a_named_command_is_the_only_one_built(argv: list[str], name: str) -> None:
    assert _names(argv) == [name]
    assert len(_names([])) > 10  # the app itself keeps every command


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["-h", "export"],
        ["--version"],
        ["--show-completion", "bash"],
        ["--", "export"],
        ["exprt"],  # unknown: Typer suggests the closest name among all of them
        ["--config"],
    ],
)
def test_anything_else_runs_the_whole_app(argv: list[str]) -> None:
    assert for_command_line(argv) is app


def test_shell_completion_lists_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_BITKEY_DIR_COMPLETE", "complete_bash")
    assert for_command_line(["export"]) is app


def test_in_a_real_process_help_usage_and_suggestions_are_unchanged() -> None:
    code, out, _ = run_process("export", "--help")
    assert code == 0
    assert out.startswith("Usage: bitkey-dir export [OPTIONS]")
    code, _, err = run_process("exprt")
    assert code == 2
    assert "Did you mean 'export'?" in err
    code, out, _ = run_process("--help")
    assert code == 0
    assert " export " in out
    assert " rights " in out
