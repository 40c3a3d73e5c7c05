"""Source plugins: found through a real installed entry point, imported only when named."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.command_line import invoke_with, run_process, trail_entries
from tests.conftest import ROOT
from tests.integration.fixtures import unavailable

pytestmark = pytest.mark.integration
PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"

PLUGIN = '''
"""A third-party source that knows one key, to prove the plugin contract end to end."""
from bitkey_dir.core.model import KeyId, RecoveryKey, RecoveryPassword

IMPORTED = True


class StaticSource:
    def __init__(self, name, computer):
        self.name = name
        self.computer = computer

    @classmethod
    def from_settings(cls, name, settings):
        source = cls(name, settings.required_string("computer"))
        settings.reject_unknown()
        return source

    def _key(self):
        return RecoveryKey(
            self.name,
            KeyId.parse("11112222-3333-4444-5555-666677778888"),
            RecoveryPassword.parse("531058-303050-716078-383614-460922-106975-083446-139161"),
            computer=self.computer,
        )

    def find(self, query, warn):
        warn("static source consulted")
        return [k for k in [self._key()] if query.matches(k)]

    def iter_keys(self, warn):
        yield self._key()

    def describe(self):
        return f"one key for {self.computer}"

    def close(self):
        pass
'''


def install(site: Path, distribution: str, entry_points: str) -> None:
    """Leave what pip leaves for an installed distribution: its dist-info metadata."""
    info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """Installed plugins: one under the versioned group, one written before it (the old
    group), one registered under both, and one whose old entry names a type the versioned
    group also names."""
    site = tmp_path / "site"
    site.mkdir()
    for module in ("static_plugin", "legacy_plugin", "bridge_plugin", "shadow_plugin"):
        (site / f"{module}.py").write_text(PLUGIN)
    (site / "broken_plugin.py").write_text("raise ImportError('needs a missing library')\n")
    install(
        site,
        "static-plugin",
        """
        [bitkey_dir.sources.v1]
        static = static_plugin:StaticSource
        broken = broken_plugin:Nothing
        """,
    )
    install(site, "legacy-plugin", "[bitkey_dir.sources]\nold = legacy_plugin:StaticSource\n")
    install(
        site,
        "bridge-plugin",
        """
        [bitkey_dir.sources.v1]
        bridged = bridge_plugin:StaticSource
        [bitkey_dir.sources]
        bridged = bridge_plugin:StaticSource
        """,
    )
    install(site, "shadow-plugin", "[bitkey_dir.sources]\nstatic = shadow_plugin:StaticSource\n")
    return site


def environment(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": f"{ROOT}:{site}", "PATH": "/usr/bin:/bin", "HOME": str(site.parent)}


def with_plugins(site: Path) -> dict[str, Any]:
    """run_process's settings for bitkey-dir with the plugins installed in ``site``."""
    return {"command": NAMING_LOADED_PLUGINS, "env": environment(site), "secrets": [PASSWORD]}


def config_in(site: Path, text: str) -> Path:
    path = site.parent / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


# bitkey-dir, then the plugin modules it imported, on stderr: LOADED=a_plugin,b_plugin
NAMING_LOADED_PLUGINS = (
    sys.executable,
    "-c",
    "import sys\n"
    "from bitkey_dir.cli import main\n"
    "sys.argv[0] = 'bitkey-dir'\n"
    "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
    "sys.stderr.write('LOADED=' + ','.join(sorted(m for m in sys.modules "
    "if m.endswith('_plugin'))) + '\\n')\n"
    "sys.exit(code)\n",
)


LOAD = """
import json, sys, warnings
from bitkey_dir.sources.registry import load_source_type

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    factory = load_source_type(sys.argv[1], "probe")
print(json.dumps({
    "factory": f"{factory.__module__}:{factory.__qualname__}",
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
}))
"""


def load(site: Path, type_name: str) -> dict[str, object]:
    """What the registry loads for ``type_name``, and every warning it gives on the way."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, type_name],
        capture_output=True,
        text=True,
        env=environment(site),
        timeout=60,
        check=True,
    )
    loaded: dict[str, object] = json.loads(proc.stdout)
    return loaded


@pytest.mark.parametrize(
    ("type_name", "module"),
    [("static", "static_plugin"), ("old", "legacy_plugin")],
    ids=["versioned group", "old group"],
)
def test_a_plugin_source_answers_find(plugin_path: Path, type_name: str, module: str) -> None:
    config = config_in(
        plugin_path,
        f"""
        [sources.vault]
        type = "{type_name}"
        computer = "PC-9"
        """,
    )
    proc = run_process(
        "--config",
        config,
        "find",
        "-k",
        "11112222",
        "-s",
        "vault",
        **with_plugins(plugin_path),
    )
    assert proc.code == 0, proc.err
    (key,) = json.loads(proc.out)["keys"]
    assert (key["source"], key["computer"]) == ("vault", "PC-9")
    assert "warning: vault: static source consulted" in proc.err
    assert f"LOADED={module}\n" in proc.err
    assert "Deprecat" not in proc.err  # for the plugin's author, not for its users


def test_the_versioned_group_needs_no_warning(plugin_path: Path) -> None:
    assert load(plugin_path, "static") == {
        "factory": "static_plugin:StaticSource",
        "warnings": [],
    }


def test_the_old_group_works_and_tells_the_plugins_author(plugin_path: Path) -> None:
    loaded = load(plugin_path, "old")
    assert loaded["factory"] == "legacy_plugin:StaticSource"
    assert loaded["warnings"] == [
        [
            "DeprecationWarning",
            "the source type 'old' (legacy-plugin) is registered under the entry-point group "
            "bitkey_dir.sources; register it under bitkey_dir.sources.v1, the group of the "
            "contract it is tested against",
        ]
    ]


def test_a_type_in_both_groups_is_the_versioned_groups(plugin_path: Path) -> None:
    # One plugin in both groups (to load in older releases too): no warning.
    assert load(plugin_path, "bridged") == {
        "factory": "bridge_plugin:StaticSource",
        "warnings": [],
    }
    # Two plugins naming one type: the old group's is neither used nor imported.
    config = config_in(plugin_path, '[sources.v]\ntype = "static"\ncomputer = "PC-9"\n')
    proc = run_process("--config", config, "sources", **with_plugins(plugin_path))
    assert proc.code == 0, proc.err
    assert "LOADED=static_plugin\n" in proc.err


def test_plugins_are_not_imported_unless_named(plugin_path: Path) -> None:
    config = config_in(
        plugin_path,
        """
        [sources.vault]
        type = "static"
        computer = "PC-9"
        [sources.broken]
        type = "broken"
        """,
    )
    proc = run_process(
        "--config",
        config,
        "find",
        "-k",
        "063EA4E1",
        "-s",
        str(ROOT / "examples" / "keys"),
        **with_plugins(plugin_path),
    )
    assert proc.code == 0, proc.err
    assert "LOADED=\n" in proc.err


def test_a_broken_plugin_is_a_config_error_not_a_traceback(plugin_path: Path) -> None:
    config = config_in(plugin_path, '[sources.b]\ntype = "broken"\n')
    proc = run_process(
        "--config", config, "find", "-k", "063EA4E1", "-s", "b", **with_plugins(plugin_path)
    )
    assert proc.code == 2
    assert "Traceback" not in proc.err
    assert "the plugin for 'broken' (broken_plugin:Nothing) failed to load: ImportError" in (
        proc.err
    )


def test_an_unknown_type_names_the_group_to_register_under(plugin_path: Path) -> None:
    config = config_in(plugin_path, '[sources.v]\ntype = "nosuch"\n')
    proc = run_process("--config", config, "sources", **with_plugins(plugin_path))
    assert proc.code == 2
    assert "plugins register under the entry-point group bitkey_dir.sources.v1)" in proc.err


def test_plugin_settings_are_validated(plugin_path: Path) -> None:
    config = config_in(plugin_path, '[sources.v]\ntype = "static"\n')
    proc = run_process("--config", config, "sources", **with_plugins(plugin_path))
    assert proc.code == 2
    assert "sources.v: missing key 'computer'" in proc.err


# -- examples/plugin, installed with pip by scripts/test -----------------------------------------


def example_plugin() -> str:
    from importlib.metadata import entry_points

    found = entry_points(group="bitkey_dir.sources.v1", name="sqlite")
    if not found:
        unavailable("examples/plugin is not installed: .venv/bin/pip install ./examples/plugin")
    (entry,) = found
    assert entry.dist is not None
    return f"{entry.dist.name} {entry.value}"


def test_the_example_plugin_is_installed_as_a_distribution() -> None:
    assert example_plugin() == "bitkey-dir-sqlite bitkey_dir_sqlite:SqliteSource"


def test_the_command_line_finds_a_key_through_the_example_plugin(
    tmp_path: Path, trail_file: Path
) -> None:
    import sqlite3

    example_plugin()
    database = tmp_path / "inventory.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TABLE recovery_keys (computer, key_id, recovery_password, created, deleted)"
        )
        connection.execute(
            "INSERT INTO recovery_keys VALUES (?, ?, ?, ?, 0)",
            ("PC-0042", "063EA4E1-220C-4293-BA01-4754620A96E7", PASSWORD, "2025-01-01T00:00:00Z"),
        )
    connection.close()
    config = tmp_path / "config.toml"
    config.write_text(f'[sources.inventory]\ntype = "sqlite"\npath = "{database}"\n')
    found = invoke_with(
        config, "find", "-k", "063EA4E1", "-s", "inventory", "-f", "json", secrets=[PASSWORD]
    )
    assert found.code == 0, found.err
    (key,) = found.keys
    assert (key["source"], key["computer"], key["recovery_password"]) == (
        "inventory",
        "PC-0042",
        PASSWORD,
    )
    (entry,) = trail_entries()
    assert (entry["source"], entry["key_id"]) == ("inventory", key["key_id"])
