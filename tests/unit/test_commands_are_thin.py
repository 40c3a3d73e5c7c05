"""Commands only parse and render: the work is an operation's, the text a renderer's.

Every function registered as a command in ``bitkey_dir/cli/`` is found by parsing the
modules (not importing them): decorated with ``@some_app.command(...)`` or
``@some_app.callback()``, or registered as ``some_app.command(NAME)(module.function)``.
Its body, after the docstring, may be at most ``LONGEST_BODY`` lines; the Typer options
declared in its signature do not count. A command that grows past that is doing an
operation's work (checks, orchestration, exit rules) or a renderer's (tables, documents).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

CLI = ROOT / "bitkey_dir" / "cli"
LONGEST_BODY = 40  # lines
REGISTERS = ("command", "callback")


@dataclass(frozen=True)
class Command:
    module: str  # the module's stem: find, index, ...
    function: ast.FunctionDef

    @property
    def name(self) -> str:
        return f"{self.module}.{self.function.name}"

    @property
    def body_lines(self) -> int:
        """Lines from the first statement after the docstring to the end of the last one."""
        body = self.function.body
        first = body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            body = body[1:]
        if not body:
            return 0
        last = body[-1].end_lineno or body[-1].lineno
        return last - body[0].lineno + 1


def _registers(call: ast.expr) -> bool:
    """``x.command(...)`` or ``x.callback(...)``: what registers a function with Typer."""
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in REGISTERS
    )


def registered(modules: dict[str, ast.Module]) -> list[Command]:
    """The command functions of ``modules`` (stem → parsed module), decorated or registered
    by a call such as ``app.command("find")(find.find)`` in any of them."""
    by_call: set[tuple[str, str]] = set()
    for tree in modules.values():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _registers(node.func)
                and len(node.args) == 1
                and isinstance(node.args[0], ast.Attribute)
                and isinstance(node.args[0].value, ast.Name)
            ):
                by_call.add((node.args[0].value.id, node.args[0].attr))
    found = []
    for stem, tree in modules.items():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and (
                any(_registers(decorator) for decorator in node.decorator_list)
                or (stem, node.name) in by_call
            ):
                found.append(Command(stem, node))
    return found


def parsed(folder: Path) -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.py"))
    }


COMMANDS = registered(parsed(CLI))


def test_every_command_is_found() -> None:
    names = {command.name for command in COMMANDS}
    for expected in (
        "find.find",
        "export.export",
        "rotate.rotate",
        "auth.status",
        "auth.login",
        "configure.sources",
        "configure.path",
        "index.refresh",
        "index.status",
        "index.clear",
        "reads.reads",
        "doctor.doctor",
        "audit.audit",
        "app.root",
    ):
        assert expected in names
    # Helpers are not commands: they are judged as the code they are.
    assert "auth.read_for_login" not in names
    assert "common.run_for" not in names


def test_every_command_only_parses_and_renders() -> None:
    too_long = {
        command.name: command.body_lines
        for command in COMMANDS
        if command.body_lines > LONGEST_BODY
    }
    assert too_long == {}, f"move checks into ops/ and text into render/: {too_long}"


def test_the_check_can_see_a_long_command() -> None:
    long_body = "\n".join(f"    x{n} = {n}" for n in range(LONGEST_BODY + 1))
    app = ast.parse(
        "import typer\n"
        "from bitkey_dir.cli import thing\n"
        "app = typer.Typer()\n"
        "@app.command('short')\n"
        "def short(\n    a: int = 1,\n    b: int = 2,\n) -> None:\n"
        '    """A docstring\n    of two lines."""\n    x = 1\n'
        'app.command("thing")(thing.thing)\n'
    )
    thing = ast.parse(
        f'def thing() -> None:\n    """Doc."""\n{long_body}\n\n\ndef helper() -> None:\n'
        f"{long_body}\n"
    )
    commands = {c.name: c.body_lines for c in registered({"app": app, "thing": thing})}
    assert commands == {"app.short": 1, "thing.thing": LONGEST_BODY + 1}
    assert [name for name, lines in commands.items() if lines > LONGEST_BODY] == ["thing.thing"]
