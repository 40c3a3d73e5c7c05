"""The import rules docs/ARCHITECTURE.md states, checked on the code as it is.

Every module of the package is parsed (not imported), and every import in it, at the top or
inside a function, is resolved to the module it names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "bitkey_dir"
SOURCES = ("ad", "entra", "files")
# Shared by everything: they know nothing of the layers that use them.
SHARED = (
    "atomic",
    "config",
    "coverage",
    "credentials",
    "display",
    "encryption",
    "env",
    "errors",
    "export_file",
    "interaction",
    "key_index",
    "keystore",
    "model",
    "package_file",
    "records",
    "rotation",
    "small_files",
    "trail",
)


@dataclass(frozen=True)
class Module:
    name: str  # bitkey_dir.sources.ad.source
    path: Path
    tree: ast.Module

    def imports(self) -> Iterator[tuple[int, str]]:
        """(line, imported module) for every import; ``from x import y`` counts x and x.y."""
        package = self.name if self.path.name == "__init__.py" else self.name.rsplit(".", 1)[0]
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield node.lineno, alias.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                yield node.lineno, base
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"

    def within(self, *prefixes: str) -> bool:
        return any(self.name == p or self.name.startswith(p + ".") for p in prefixes)


def modules() -> list[Module]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append(Module(".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"))))
    return found


MODULES = modules()


def violations(check: object) -> list[str]:
    assert callable(check)
    return [
        f"{module.name}:{line} imports {target}"
        for module in MODULES
        for line, target in module.imports()
        if check(module, target)
    ]


def under(target: str, *prefixes: str) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def test_the_rules_see_every_layer() -> None:
    names = {module.name for module in MODULES}
    for expected in (
        "bitkey_dir.cli.app",
        "bitkey_dir.ops.lookup",
        "bitkey_dir.sources.ad.wire",
        "bitkey_dir.sources.entra.graph",
        "bitkey_dir.sources.files.parsers",
        "bitkey_dir.render.keys",
        "bitkey_dir.api",
    ):
        assert expected in names


def test_only_the_command_line_imports_typer_or_click() -> None:
    assert (
        violations(
            lambda m, t: not m.within("bitkey_dir.cli") and under(t, "typer", "click", "rich")
        )
        == []
    )


def test_no_source_imports_another_source() -> None:
    def crosses(module: Module, target: str) -> bool:
        for source in SOURCES:
            mine = f"bitkey_dir.sources.{source}"
            if module.within(mine):
                others = [f"bitkey_dir.sources.{o}" for o in SOURCES if o != source]
                return under(target, *others)
        return False

    assert violations(crosses) == []


def test_sources_know_nothing_of_the_layers_above_them() -> None:
    above = ("bitkey_dir.ops", "bitkey_dir.cli", "bitkey_dir.api", "bitkey_dir.render")
    assert violations(lambda m, t: m.within("bitkey_dir.sources") and under(t, *above)) == []


def test_operations_know_nothing_of_the_command_line_or_rendering() -> None:
    above = ("bitkey_dir.cli", "bitkey_dir.api", "bitkey_dir.render")
    assert violations(lambda m, t: m.within("bitkey_dir.ops") and under(t, *above)) == []


def test_only_the_registry_names_the_built_in_sources() -> None:
    # Operations reach sources through the registry and the protocols in sources/base.py.
    backends = tuple(f"bitkey_dir.sources.{s}" for s in SOURCES)
    assert (
        violations(
            lambda m, t: (
                m.within("bitkey_dir.ops", "bitkey_dir.api", "bitkey_dir.cli")
                and under(t, *backends)
            )
        )
        == []
    )


def test_shared_modules_use_only_each_other_and_the_source_contract() -> None:
    shared = tuple(f"bitkey_dir.{name}" for name in SHARED)
    allowed = (*shared, "bitkey_dir.sources.base")

    def reaches_up(module: Module, target: str) -> bool:
        return (
            module.within(*shared)
            and under(target, "bitkey_dir")
            and target not in ("bitkey_dir", "bitkey_dir.__version__")
            and not under(target, *allowed)
        )

    assert violations(reaches_up) == []


def test_the_library_does_not_go_through_the_command_line() -> None:
    assert violations(lambda m, t: m.within("bitkey_dir.api") and under(t, "bitkey_dir.cli")) == []


WRITES_TO_A_TERMINAL = {
    ("sys", "stdout"),
    ("sys", "stderr"),
    ("sys", "stdin"),
    ("getpass", "getpass"),
}


def terminal_use(module: Module) -> list[str]:
    found = []
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in WRITES_TO_A_TERMINAL
        ):
            found.append(f"{module.name}:{node.lineno} uses {node.value.id}.{node.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("print", "input", "breakpoint")
        ):
            found.append(f"{module.name}:{node.lineno} calls {node.func.id}()")
    return found


def test_nothing_below_the_command_line_reads_or_writes_the_terminal() -> None:
    # Notices, prompts and progress go through bitkey_dir.interaction instead.
    found = [use for m in MODULES if not m.within("bitkey_dir.cli") for use in terminal_use(m)]
    assert found == []


def test_the_terminal_checks_can_see_a_violation() -> None:
    bad = Module("bitkey_dir.x", PACKAGE / "x.py", ast.parse("import sys\nsys.stderr.write('x')"))
    assert terminal_use(bad) == ["bitkey_dir.x:2 uses sys.stderr"]
    relative = Module(
        "bitkey_dir.sources.ad.source",
        PACKAGE / "sources" / "ad" / "source.py",
        ast.parse("from ..entra import graph"),
    )
    assert (1, "bitkey_dir.sources.entra.graph") in list(relative.imports())


@pytest.mark.parametrize("module", [m for m in MODULES if m.within("bitkey_dir.cli")], ids=str)
def test_command_modules_import_the_library_inside_their_functions(module: Module) -> None:
    # `bitkey-dir --help` must stay cheap: at the top, a command module imports only the
    # CLI's own modules, errors, env and Typer (tests/cli check the modules --help loads).
    light = ("bitkey_dir.cli", "bitkey_dir.errors", "bitkey_dir.env", "bitkey_dir.__version__")
    top = [
        target
        for node in module.tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for line, target in Module(module.name, module.path, ast.Module([node], [])).imports()
        if under(target, "bitkey_dir") and target != "bitkey_dir" and not under(target, *light)
    ]
    assert top == []


def test_only_output_reveals_a_password() -> None:
    # testing.py reveals the expected keys' passwords to look for them where they must not be.
    allowed = (
        "bitkey_dir.records",
        "bitkey_dir.render",
        "bitkey_dir.testing",
        "bitkey_dir.package_file",
    )
    callers = {
        module.name
        for module in MODULES
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "reveal"
    }
    assert callers
    assert {name for name in callers if not under(name, *allowed)} == set()
