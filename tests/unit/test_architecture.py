"""The import rules docs/ARCHITECTURE.md states, checked on the code as it is.

Every module of the package is parsed (not imported), and every import in it, at the top or
inside a function, is resolved to the module it names. The rules are prefix rules: a module
belongs to the layer its path starts with, and each layer lists the prefixes it may import,
so a new module is checked by the rules of the folder it is put in.
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
# The modules that may sit loose at the top of the package: the entry points of the library.
ROOT_MODULES = {
    "bitkey_dir",
    "bitkey_dir.__main__",
    "bitkey_dir.api",
    "bitkey_dir.client",
    "bitkey_dir.testing",
}
ROOT_MODULES_MAX = 6
LONGEST_MODULE = 500  # lines

# Layer (a prefix) → the prefixes its modules may import. The first matching layer counts,
# so more specific prefixes come first. Every import of bitkey_dir is checked against it.
CORE = "bitkey_dir.core"
RUNTIME = "bitkey_dir.runtime"
STORE = "bitkey_dir.store"
CONTRACT = "bitkey_dir.sources.base"
REGISTRY = "bitkey_dir.sources.registry"
PORTAL = "bitkey_dir.portal"
# The one module that may import the portal (and with it the web stack): the serve command.
SERVE_COMMAND = "bitkey_dir.cli.serve"
LAYERS: dict[str, tuple[str, ...]] = {
    CORE: (CORE,),
    RUNTIME: (CORE, RUNTIME),
    STORE: (CORE, RUNTIME, STORE, CONTRACT),
    CONTRACT: (CORE, RUNTIME, CONTRACT),
    # The one module that names the built-in sources (importing each only when asked for).
    REGISTRY: (CORE, RUNTIME, CONTRACT, REGISTRY, *(f"bitkey_dir.sources.{s}" for s in SOURCES)),
    # A source: core, runtime, the contract, and its own package. Never store (no source
    # writes the trail, the index or an export), never another source or a layer above.
    **{
        f"bitkey_dir.sources.{s}": (CORE, RUNTIME, CONTRACT, f"bitkey_dir.sources.{s}")
        for s in SOURCES
    },
    "bitkey_dir.ops": (CORE, RUNTIME, STORE, CONTRACT, REGISTRY, "bitkey_dir.ops"),
    "bitkey_dir.render": (CORE, "bitkey_dir.ops", CONTRACT, "bitkey_dir.render"),
    # The library: the Client, and the one-call functions made of it.
    "bitkey_dir.client": (CORE, RUNTIME, CONTRACT, "bitkey_dir.ops", "bitkey_dir.client"),
    "bitkey_dir.api": (
        CORE,
        RUNTIME,
        CONTRACT,
        "bitkey_dir.ops",
        "bitkey_dir.client",
        "bitkey_dir.api",
    ),
    "bitkey_dir.testing": (CORE, RUNTIME, CONTRACT, REGISTRY, "bitkey_dir.testing"),
    # The helpdesk portal: a front end like the command line, over the library's Client.
    PORTAL: (CORE, RUNTIME, "bitkey_dir.ops", "bitkey_dir.render", "bitkey_dir.client", PORTAL),
    "bitkey_dir.cli": (
        CORE,
        RUNTIME,
        CONTRACT,
        "bitkey_dir.ops",
        "bitkey_dir.render",
        "bitkey_dir.cli",
        PORTAL,
    ),
    "bitkey_dir.__main__": ("bitkey_dir.cli",),
    # The package offers the library's names, imported when first used.
    "bitkey_dir": (
        "bitkey_dir.api",
        "bitkey_dir.client",
        "bitkey_dir.core.errors",
        "bitkey_dir.core.model",
    ),
}
# Modules over LONGEST_MODULE lines, and import cycles, that are being taken apart: these
# lists only shrink (a test fails when an entry no longer needs to be here).
TOO_LONG_FOR_NOW: set[str] = set()
CYCLES_FOR_NOW: set[frozenset[str]] = set()


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
NAMES = {module.name for module in MODULES}
# ``from bitkey_dir.sources import registry`` names the package, then the module: the rules
# judge the module. (Package __init__ files hold docstrings only; the top one is lazy.)
PACKAGES = {module.name for module in MODULES if module.path.name == "__init__.py"}


def under(target: str, *prefixes: str) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def layer_of(name: str) -> str:
    for layer in LAYERS:  # the most specific prefixes come first
        if under(name, layer):
            return layer
    raise AssertionError(f"{name} is in no layer: add it to LAYERS or move it")


def package_imports(module: Module) -> Iterator[tuple[int, str]]:
    """Imports of modules of this package, ``from bitkey_dir import __version__`` aside."""
    for line, target in module.imports():
        if under(target, "bitkey_dir") and target not in (*PACKAGES, "bitkey_dir.__version__"):
            yield line, target


def violations(check: object) -> list[str]:
    assert callable(check)
    return [
        f"{module.name}:{line} imports {target}"
        for module in MODULES
        for line, target in module.imports()
        if check(module, target)
    ]


def test_the_rules_see_every_layer() -> None:
    for expected in (
        "bitkey_dir.cli.app",
        "bitkey_dir.ops.lookup",
        "bitkey_dir.core.model",
        "bitkey_dir.runtime.config",
        "bitkey_dir.store.trail",
        "bitkey_dir.sources.ad.wire",
        "bitkey_dir.sources.entra.graph",
        "bitkey_dir.sources.files.parsers",
        "bitkey_dir.render.keys",
        "bitkey_dir.api",
        "bitkey_dir.client",
        "bitkey_dir.portal.app",
        SERVE_COMMAND,
    ):
        assert expected in NAMES
    assert {layer_of(name) for name in NAMES} == set(LAYERS)


def test_the_top_of_the_package_holds_only_its_entry_points() -> None:
    loose = {m.name for m in MODULES if m.path.parent == PACKAGE}
    assert loose <= ROOT_MODULES, f"put {sorted(loose - ROOT_MODULES)} in a layer's folder"
    assert len(loose) <= ROOT_MODULES_MAX


def test_each_layer_imports_only_what_it_may() -> None:
    found = [
        f"{module.name}:{line} imports {target}"
        for module in MODULES
        for line, target in package_imports(module)
        if not under(target, *LAYERS[layer_of(module.name)])
    ]
    assert found == []


def test_every_import_of_the_package_names_a_module_that_exists() -> None:
    # Old names (bitkey_dir.model, ...) still import for plugins, never from inside.
    def exists(target: str) -> bool:
        return target in NAMES or target.rsplit(".", 1)[0] in NAMES

    found = [
        f"{module.name}:{line} imports {target}"
        for module in MODULES
        for line, target in package_imports(module)
        if not exists(target)
    ]
    assert found == []


def test_no_source_writes_the_trail_the_index_or_an_export() -> None:
    # Said on its own, though the layer rule implies it: it is the rule that matters most.
    assert violations(lambda m, t: m.within("bitkey_dir.sources") and under(t, STORE)) == []


def test_what_is_kept_is_written_by_the_operations_only() -> None:
    users = {
        m.name
        for m in MODULES
        if not m.within(STORE) and any(under(t, STORE) for _, t in package_imports(m))
    }
    assert {name for name in users if not under(name, "bitkey_dir.ops")} == set()


def test_only_the_command_line_imports_typer_or_click() -> None:
    assert (
        violations(
            lambda m, t: not m.within("bitkey_dir.cli") and under(t, "typer", "click", "rich")
        )
        == []
    )


def test_only_the_serve_command_imports_the_portal() -> None:
    # The portal needs the web stack (the `portal` extra): nothing else may load it.
    assert violations(lambda m, t: not m.within(PORTAL, SERVE_COMMAND) and under(t, PORTAL)) == []
    bad = Module("bitkey_dir.cli.find", PACKAGE / "cli" / "find.py", ast.parse("import x"))
    assert not bad.within(PORTAL, SERVE_COMMAND)


def test_only_the_portal_imports_the_web_stack() -> None:
    web = ("starlette", "uvicorn", "jinja2", "multipart", "selenium")
    assert violations(lambda m, t: not m.within(PORTAL) and under(t, *web)) == []


def test_no_source_imports_another_source() -> None:
    def crosses(module: Module, target: str) -> bool:
        for source in SOURCES:
            mine = f"bitkey_dir.sources.{source}"
            if module.within(mine):
                others = [f"bitkey_dir.sources.{o}" for o in SOURCES if o != source]
                return under(target, *others)
        return False

    assert violations(crosses) == []


def test_only_the_registry_names_the_built_in_sources() -> None:
    # Operations reach sources through the registry and the protocols in sources/base.py.
    backends = tuple(f"bitkey_dir.sources.{s}" for s in SOURCES)
    assert (
        violations(
            lambda m, t: (
                not m.within(*backends, REGISTRY)
                and not m.within("bitkey_dir.sources")
                and under(t, *backends)
            )
        )
        == []
    )


def test_no_module_is_longer_than_the_limit() -> None:
    lengths = {m.name: len(m.path.read_text(encoding="utf-8").splitlines()) for m in MODULES}
    too_long = {name for name, lines in lengths.items() if lines > LONGEST_MODULE}
    assert too_long <= TOO_LONG_FOR_NOW, f"split {sorted(too_long - TOO_LONG_FOR_NOW)}"
    assert too_long >= TOO_LONG_FOR_NOW, f"{sorted(TOO_LONG_FOR_NOW - too_long)} now fit"


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports, deferred imports included. The package's
    own ``__init__`` is left out as a target: every import of a submodule runs it anyway."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = set()
        for _, target in package_imports(module):
            if target in NAMES and target != module.name:
                targets.add(target)
        graph[module.name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert found <= CYCLES_FOR_NOW, sorted(sorted(c) for c in found - CYCLES_FOR_NOW)
    assert found >= CYCLES_FOR_NOW, f"{sorted(sorted(c) for c in CYCLES_FOR_NOW - found)} are gone"


def test_the_cycle_check_can_see_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == {frozenset({"a", "b", "c"})}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def closes(module: Module) -> list[str]:
    return [
        f"{module.name}:{node.lineno}"
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "close"
    ]


def test_operations_release_sources_rather_than_close_them() -> None:
    # A Client lends its sources to operations: closing one would end its connection while
    # the pool still holds it. ops/pool.py's release() closes a source only when it is the
    # operation's own.
    found = [
        place
        for module in MODULES
        if module.within("bitkey_dir.ops") and module.name != "bitkey_dir.ops.pool"
        for place in closes(module)
    ]
    assert found == []
    bad = Module("bitkey_dir.ops.x", PACKAGE / "ops" / "x.py", ast.parse("source.close()"))
    assert closes(bad) == ["bitkey_dir.ops.x:1"]


def test_the_library_does_not_go_through_the_command_line() -> None:
    library = ("bitkey_dir.api", "bitkey_dir.client")
    assert violations(lambda m, t: m.within(*library) and under(t, "bitkey_dir.cli")) == []


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
    # Notices, prompts and progress go through bitkey_dir.runtime.interaction instead.
    found = [use for m in MODULES if not m.within("bitkey_dir.cli") for use in terminal_use(m)]
    assert found == []


def test_the_rules_can_see_a_violation() -> None:
    bad = Module("bitkey_dir.x", PACKAGE / "x.py", ast.parse("import sys\nsys.stderr.write('x')"))
    assert terminal_use(bad) == ["bitkey_dir.x:2 uses sys.stderr"]
    relative = Module(
        "bitkey_dir.sources.ad.source",
        PACKAGE / "sources" / "ad" / "source.py",
        ast.parse("from ..entra import graph\nfrom bitkey_dir.store import trail"),
    )
    imported = list(relative.imports())
    assert (1, "bitkey_dir.sources.entra.graph") in imported
    allowed = LAYERS[layer_of(relative.name)]
    assert [t for _, t in package_imports(relative) if not under(t, *allowed)] == [
        "bitkey_dir.sources.entra.graph",
        "bitkey_dir.store.trail",
    ]


@pytest.mark.parametrize(
    "module", [m for m in MODULES if m.within("bitkey_dir.cli")], ids=lambda m: m.name
)
def test_command_modules_import_the_library_inside_their_functions(module: Module) -> None:
    # `bitkey-dir --help` must stay cheap: at the top, a command module imports only the
    # CLI's own modules, errors, env and Typer (tests/cli check the modules --help loads).
    light = (
        "bitkey_dir.cli",
        "bitkey_dir.core.errors",
        "bitkey_dir.core.env",
        "bitkey_dir.__version__",
    )
    top = [
        target
        for node in module.tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for line, target in Module(module.name, module.path, ast.Module([node], [])).imports()
        if under(target, "bitkey_dir")
        and target not in ("bitkey_dir", "bitkey_dir.core")
        and not under(target, *light)
    ]
    assert top == []


def test_only_output_reveals_a_password() -> None:
    # testing/ reveals the expected keys' passwords to look for them where they must not be.
    allowed = (
        "bitkey_dir.core.records",
        "bitkey_dir.render",
        "bitkey_dir.testing",
        "bitkey_dir.store.package_file",
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


# What exists on one platform only (Python's docs, "Availability"), so that a call of it
# anywhere but the platform module would break the tool on the others.
PLATFORM_MODULES = ("bitkey_dir.runtime.platform", "bitkey_dir.runtime.windows")
ONE_PLATFORM_MODULES = ("fcntl", "resource", "pwd", "grp", "termios", "tty", "pty", "msvcrt")
ONE_PLATFORM_MODULES += ("winreg", "win32api", "win32security", "win32file", "win32con")
ONE_PLATFORM_NAMES = {
    "os": {
        "getuid", "geteuid", "getgid", "getegid", "getgroups", "chown", "fchown", "lchown",
        "fchmod", "lchmod", "pread", "pwrite", "O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC",
        "O_BINARY", "O_NOINHERIT", "getpwuid", "setsid", "killpg", "fork", "startfile",
    },
    "signal": {"SIGHUP", "SIGBREAK", "SIGKILL", "SIGALRM", "alarm", "setitimer"},
    "select": {"poll", "POLLIN", "POLLOUT", "epoll", "kqueue"},
    "socket": {"AF_UNIX"},
}  # fmt: skip


def one_platform_calls(module: Module) -> list[str]:
    found = [
        f"{module.name}:{line} imports {target}"
        for line, target in module.imports()
        if under(target, *ONE_PLATFORM_MODULES)
    ]
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in ONE_PLATFORM_NAMES.get(node.value.id, ())
        ):
            found.append(f"{module.name}:{node.lineno} uses {node.value.id}.{node.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in ONE_PLATFORM_NAMES.get(node.args[0].id, ())
        ):
            found.append(f"{module.name}:{node.lineno} uses {node.args[0].id}.{node.args[1].value}")
    return sorted(found)


def test_only_the_platform_module_calls_what_one_platform_has() -> None:
    found = [
        use for m in MODULES if not m.within(*PLATFORM_MODULES) for use in one_platform_calls(m)
    ]
    assert found == []
    bad = Module(
        "bitkey_dir.store.x",
        PACKAGE / "store" / "x.py",
        ast.parse("import fcntl, os\nos.getuid()\ngetattr(os, 'O_NOFOLLOW', 0)"),
    )
    assert one_platform_calls(bad) == [
        "bitkey_dir.store.x:1 imports fcntl",
        "bitkey_dir.store.x:2 uses os.getuid",
        "bitkey_dir.store.x:3 uses os.O_NOFOLLOW",
    ]
