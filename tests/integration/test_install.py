"""A newcomer's first hour: `pip install .` in a new virtual environment, no extras, then a
lookup in Active Directory (the Samba DC) and in Entra ID (the Graph emulator) works, and
`--help` still loads no directory client."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from examples.lab.graph_emulator import GraphEmulator
from tests.command_line import run_process
from tests.conftest import ROOT
from tests.integration.fixtures import SECRET, Directory, Entra, Lab, ad_checks, unavailable

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bitkey-dir's command in a new venv, installed as a user would: `pip install .`."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    done = subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"pip install . failed (no package index?): {done.stderr[-500:]}")
    return home / "bin" / "bitkey-dir"


def as_installed(command: Path) -> dict[str, Any]:
    """run_process's settings for the installed command, which must not import the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {"command": [command], "env": env, "timeout": 120}


def test_an_ad_lookup_works_after_a_plain_install(
    installed: Path, lab: Lab, samba_dc: Directory
) -> None:
    config = lab.config()
    key = samba_dc.keys("WS001")[0]
    done = run_process(
        "--config",
        config,
        "find",
        "-k",
        key.key_id[:8],
        "-f",
        "key",
        **as_installed(installed),
        **ad_checks(),
    )
    assert done.code == 0, done.err
    assert done.out == key.password + "\n"


def test_an_entra_lookup_works_after_a_plain_install(
    installed: Path, entra: Entra, graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    monkeypatch.setenv("BITKEY_DIR_CLIENT_SECRET", SECRET)
    done = run_process(
        "--config",
        entra.config(),
        "find",
        "-k",
        key.id,
        "-f",
        "key",
        **as_installed(installed),
        **entra.checks,
    )
    assert done.code == 0, done.err
    assert done.out == key.key + "\n"


def test_help_after_a_plain_install_loads_no_directory_client(installed: Path) -> None:
    python = installed.with_name("python")
    probe = (
        "import sys\nsys.argv = ['bitkey-dir', '--help']\nfrom bitkey_dir.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'ldap3', 'msal', 'msgraph', 'pyrage', 'keyring', 'rich'}), file=sys.stderr)"
    )
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stderr.strip() == "[]", done.stderr
    assert sys.executable != str(python)
