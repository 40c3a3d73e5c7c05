"""The wording table (bitkey_dir/core/wording.py) knows every option the package's messages name.

Messages below the command line are worded for it ("give --force"); the Client rewords them with
the table ("give force=True"). A new message naming an option the table does not know would
reach Python callers as the command's words, so every string literal below the command line
(messages, f-strings, docstrings) is read here, and each option in it must be in the table or
listed as no parameter, with why.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitkey_dir import Client
from bitkey_dir.core.errors import InputError
from bitkey_dir.core.wording import NOT_PARAMETERS, PARAMETERS, for_python, reword
from tests.conftest import ROOT

PACKAGE = ROOT / "bitkey_dir"
# Broader than the table's own pattern on purpose: any --word in a string, wherever it stands.
ANY_OPTION = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")


def strings_of(path: Path) -> Iterator[tuple[int, str]]:
    """Every string literal of a module with its line: plain, the parts of f-strings, and
    docstrings."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def below_the_command_line() -> list[Path]:
    """The package's modules but the command line's, and the table's own (which names them
    all, so would prove nothing)."""
    table = PACKAGE / "core" / "wording.py"
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "cli" not in path.relative_to(PACKAGE).parts and path != table
    ]


def options_named() -> dict[str, list[str]]:
    """Option → where the package's strings name it."""
    found: dict[str, list[str]] = {}
    for path in below_the_command_line():
        for line, text in strings_of(path):
            for option in ANY_OPTION.findall(text):
                found.setdefault(option, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def test_every_option_named_below_the_command_line_is_in_the_table() -> None:
    found = options_named()
    unknown = {o: where for o, where in found.items() if o not in {*PARAMETERS, *NOT_PARAMETERS}}
    assert unknown == {}, "add each to PARAMETERS, or to NOT_PARAMETERS with why"
    # Both lists stay as short as the package needs: an entry nothing names goes.
    assert set(PARAMETERS) | set(NOT_PARAMETERS) <= set(found)


def test_the_scan_sees_options_wherever_a_string_names_them(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Docstring: --alpha."""\n'
        "x = 1\n"
        'raise InputError(f"{x} exists: give --beta-gamma or (--delta) now")\n'
        "# a comment: --not-a-string\n",
        encoding="utf-8",
    )
    named = [ANY_OPTION.findall(text) for _, text in strings_of(module)]
    assert [option for found in named for option in found] == [
        "--alpha",
        "--beta-gamma",
        "--delta",
    ]
    assert options_named()["--force"]  # and the real scan reads the package


def test_each_parameter_of_the_table_is_a_parameter_of_the_client() -> None:
    taken = {"config"} | {
        name
        for _, method in inspect.getmembers(Client, inspect.isfunction)
        for name in inspect.signature(method).parameters
    }
    named = {python.split("=")[0] for python in PARAMETERS.values()}
    assert named - taken == set()


def test_options_with_values_and_switches_are_reworded() -> None:
    assert for_python("give --force to replace it") == "give force=True to replace it"
    assert for_python("add --reason TEXT (a ticket)") == "add reason=TEXT (a ticket)"
    assert for_python("--reason must be one line") == "reason must be one line"
    assert for_python("give --source PATH|NAME, or") == "give sources=PATH|NAME, or"
    assert for_python("searched only with --include-deleted)") == (
        "searched only with include_deleted=True)"
    )
    assert for_python('--since "9d9": expected a span') == 'since "9d9": expected a span'
    assert for_python("(--identity, identity_file)") == "(identities, identity_file)"


@pytest.mark.parametrize(
    "text",
    [
        "pip install --force-reinstall bitkey-dir",  # not an option of ours
        "/srv/--force/keys.json",  # a path
        "PC--force",  # inside a name
        "--forced",  # another word
        "no options here",
    ],
)
def test_what_is_not_one_of_our_options_is_left_as_it_is(text: str) -> None:
    assert for_python(text) == text


def test_an_error_is_reworded_in_place() -> None:
    error = InputError("--stale-days must be at least 1", hint="or use --no-index")
    assert reword(error) is error
    assert (error.message, str(error), error.hint) == (
        "stale_days must be at least 1",
        "stale_days must be at least 1",
        "or use use_index=False",
    )
    assert error.exit_code == InputError.exit_code
