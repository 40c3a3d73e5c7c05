"""Keep every test away from the user's real config, trail and keyring.

The suite's layout:

``unit/``         the library's logic in-process: parsers, model, filters, coverage, records,
                  the wire decoder, the operations over stand-in sources, the keystore against
                  test keyring backends. No command line, no server, no subprocess.
``cli/``          the command line's contract in-process through ``command_line.invoke``:
                  options, exit codes, messages, JSON; subprocesses only to see what a command
                  imports. Sources are key files or stand-ins, never a server.
``library/``      ``bitkey_dir.api``: the same policy as the command line.
``integration/``  real peers started by fixtures: a Samba AD DC, the HTTPS Graph emulator,
                  a pseudo-terminal, an installed plugin package.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# CI must be reproducible: the same examples every run, and no flaky deadlines on a busy box.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
KEYRING_BACKENDS = ROOT / "tests" / "keyring_backends"


@functools.cache
def example_key_data() -> Path:
    """Every bundled key file, manage-bde output and export in one folder (examples/keys and
    examples/exports, linked): examples/ itself also holds the lab's and a plugin's code."""
    folder = Path(tempfile.mkdtemp(prefix="bitkey-dir-examples-"))
    atexit.register(shutil.rmtree, folder, True)
    for part in ("keys", "exports"):
        (folder / part).symlink_to(EXAMPLES / part, target_is_directory=True)
    return folder


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    monkeypatch.setenv("BITKEY_DIR_TRAIL", str(home / "trail.jsonl"))
    monkeypatch.delenv("BITKEY_DIR_CONFIG", raising=False)
    monkeypatch.delenv("BITKEY_DIR_DEBUG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("BITKEY_DIR_PASSWORD", raising=False)
    monkeypatch.delenv("BITKEY_DIR_CLIENT_SECRET", raising=False)
    # Never the developer's real keyring: no keyring at all, unless a test selects one.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    reload_keyring()


def reload_keyring() -> None:
    """Make keyring read its configuration again, as a new process would."""
    if "keyring" in sys.modules:
        import keyring.core

        keyring.core.init_backend()


class KeyringFile:
    """The file-backed test keyring (tests/keyring_backends), and what it holds."""

    def __init__(self, home: Path) -> None:
        self.file = home / "test-keyring.json"

    def entries(self) -> dict[str, str]:
        """Entry name → secret, for the service bitkey-dir."""
        if not self.file.exists():
            return {}
        data = json.loads(self.file.read_text(encoding="utf-8"))
        prefix = "bitkey-dir\x00"
        return {k.removeprefix(prefix): v for k, v in data.items() if k.startswith(prefix)}

    def store(self, entry: str, secret: str) -> None:
        data = json.loads(self.file.read_text(encoding="utf-8")) if self.file.exists() else {}
        data[f"bitkey-dir\x00{entry}"] = secret
        self.file.write_text(json.dumps(data), encoding="utf-8")


def select_keyring(monkeypatch: pytest.MonkeyPatch, backend: str) -> Path:
    """Choose a backend through keyring's own config file, keyringrc.cfg, as a user would."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    config_root = Path(os.environ["XDG_CONFIG_HOME"]) / "python_keyring"
    config_root.mkdir(parents=True, exist_ok=True)
    rc = config_root / "keyringrc.cfg"
    rc.write_text(
        f"[backend]\ndefault-keyring = bitkey_test_keyrings.{backend}\n"
        f"keyring-path = {KEYRING_BACKENDS}\n",
        encoding="utf-8",
    )
    reload_keyring()
    return rc


@pytest.fixture
def file_keyring(monkeypatch: pytest.MonkeyPatch) -> KeyringFile:
    """The plaintext file keyring; configs must say `[keyring] allow_plaintext = true`."""
    home = Path(os.environ["HOME"])
    monkeypatch.setenv("BITKEY_DIR_TEST_KEYRING_FILE", str(home / "test-keyring.json"))
    select_keyring(monkeypatch, "PlaintextFileKeyring")
    return KeyringFile(home)


@pytest.fixture
def locked_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    select_keyring(monkeypatch, "LockedKeyring")


@pytest.fixture
def trail_file() -> Path:
    return Path(os.environ["BITKEY_DIR_TRAIL"])


@pytest.fixture
def in_examples(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(EXAMPLES)
    return EXAMPLES
