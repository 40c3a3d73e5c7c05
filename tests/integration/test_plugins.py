"""Source plugins: found through a real installed entry point, imported only when named."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

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


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """An installed distribution, as pip would leave it: a module plus dist-info metadata."""
    site = tmp_path / "site"
    (site / "static_plugin.py").parent.mkdir(parents=True)
    (site / "static_plugin.py").write_text(PLUGIN)
    (site / "broken_plugin.py").write_text("raise ImportError('needs a missing library')\n")
    info = site / "static_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: static-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[bitkey_dir.sources]\n"
        "static = static_plugin:StaticSource\n"
        "broken = broken_plugin:Nothing\n"
    )
    return site


def run(site: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    config_file = site.parent / "config.toml"
    config_file.write_text(textwrap.dedent(config))
    probe = (
        "import sys\n"
        "from bitkey_dir.cli import main\n"
        f"sys.argv = ['bitkey-dir', '--config', {str(config_file)!r}, *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
        "sys.stderr.write('LOADED=' + ','.join(sorted(m for m in sys.modules "
        "if m.endswith('_plugin'))) + '\\n')\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{ROOT}:{site}", "PATH": "/usr/bin:/bin", "HOME": str(site.parent)},
        timeout=60,
        check=False,
    )


def test_a_plugin_source_answers_find(plugin_path: Path) -> None:
    proc = run(
        plugin_path,
        """
        [sources.vault]
        type = "static"
        computer = "PC-9"
        """,
        "find",
        "-k",
        "11112222",
        "-s",
        "vault",
    )
    assert proc.returncode == 0, proc.stderr
    (key,) = json.loads(proc.stdout)["keys"]
    assert (key["source"], key["computer"]) == ("vault", "PC-9")
    assert "warning: vault: static source consulted" in proc.stderr
    assert "LOADED=static_plugin\n" in proc.stderr


def test_plugins_are_not_imported_unless_named(plugin_path: Path) -> None:
    proc = run(
        plugin_path,
        """
        [sources.vault]
        type = "static"
        computer = "PC-9"
        [sources.broken]
        type = "broken"
        """,
        "find",
        "-k",
        "063EA4E1",
        "-s",
        str(ROOT / "examples" / "keys"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED=\n" in proc.stderr


def test_a_broken_plugin_is_a_config_error_not_a_traceback(plugin_path: Path) -> None:
    proc = run(plugin_path, '[sources.b]\ntype = "broken"\n', "find", "-k", "063EA4E1", "-s", "b")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "the plugin for 'broken' (broken_plugin:Nothing) failed to load: ImportError" in (
        proc.stderr
    )


def test_plugin_settings_are_validated(plugin_path: Path) -> None:
    proc = run(plugin_path, '[sources.v]\ntype = "static"\n', "sources")
    assert proc.returncode == 2
    assert "sources.v: missing key 'computer'" in proc.stderr


# -- examples/plugin, installed with pip by scripts/test -----------------------------------------


def example_plugin() -> str:
    from importlib.metadata import entry_points

    from tests.integration.conftest import unavailable

    found = entry_points(group="bitkey_dir.sources", name="sqlite")
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

    from tests.command_line import invoke

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
    found = invoke(
        "--config",
        config,
        "find",
        "-k",
        "063EA4E1",
        "-s",
        "inventory",
        "-f",
        "json",
        secrets=[PASSWORD],
    )
    assert found.code == 0, found.err
    (key,) = found.keys
    assert (key["source"], key["computer"], key["recovery_password"]) == (
        "inventory",
        "PC-0042",
        PASSWORD,
    )
    (entry,) = [json.loads(line) for line in trail_file.read_text().splitlines()]
    assert (entry["source"], entry["key_id"]) == ("inventory", key["key_id"])
