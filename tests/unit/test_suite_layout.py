"""The suite's own layout: what test modules share lives in helper modules, not in other tests.

A test module that imports another one runs that module's tests' imports and fixtures in its
own namespace, and ties the two together so that neither can move or be split alone. Shared
code goes to tests/command_line.py (running the command line), tests/integration/fixtures.py
(what fixtures return) and the other helper modules.
"""

from __future__ import annotations

import ast

from tests.conftest import ROOT

TESTS = ROOT / "tests"


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, dotted module) for every import in ``source``, a module of ``package``,
    function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from tests.integration import test_ad` names the test module as an alias.
            found += [(node.lineno, module)]
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def is_test_module(dotted: str) -> bool:
    return dotted.startswith("tests.") and dotted.rsplit(".", 1)[-1].startswith("test_")


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in imported_modules(
            path.read_text(encoding="utf-8"), ".".join(path.relative_to(ROOT).parent.parts)
        )
        if is_test_module(module)
    ]
    assert offenders == []


def test_the_check_sees_every_form_of_import() -> None:
    source = (
        "import tests.integration.test_ad\n"
        "from tests.integration.test_entra import Entra\n"
        "from tests.integration import test_rotate\n"
        "from .test_lab import require\n"
        "def later():\n    from tests.cli.test_audit import run\n"
        "from tests.integration.fixtures import Lab\n"
    )
    imported = imported_modules(source, "tests.integration")
    assert {module for _, module in imported if is_test_module(module)} == {
        "tests.integration.test_ad",
        "tests.integration.test_entra",
        "tests.integration.test_rotate",
        "tests.integration.test_lab",
        "tests.cli.test_audit",
    }
