"""An environment whose keyring is the tests' file-backed backend, chosen through keyringrc.cfg.

No keyring daemon runs where the benchmarks do; this one measures bitkey-dir's own cost of
reading a stored credential (importing keyring, selecting the backend, one lookup). A Secret
Service or Keychain adds its own per-call cost on top.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def file_keyring_env(base_env: dict[str, str], home: Path) -> dict[str, str]:
    keyring_config = home / ".config" / "python_keyring"
    keyring_config.mkdir(parents=True, exist_ok=True)
    (keyring_config / "keyringrc.cfg").write_text(
        "[backend]\ndefault-keyring = bitkey_test_keyrings.PlaintextFileKeyring\n"
        f"keyring-path = {ROOT / 'tests' / 'keyring_backends'}\n"
    )
    env = {
        **base_env,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "BITKEY_DIR_TEST_KEYRING_FILE": str(home / "keyring.json"),
    }
    for name in ("PYTHON_KEYRING_BACKEND", "BITKEY_DIR_PASSWORD", "BITKEY_DIR_CLIENT_SECRET"):
        env.pop(name, None)
    return env


def login(cli: Path, config: Path, source: str, secret: str, env: dict[str, str]) -> None:
    """`bitkey-dir login SOURCE` with the secret on stdin; the config must allow plaintext."""
    proc = subprocess.run(
        [str(cli), "--config", str(config), "login", source],
        input=secret + "\n",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"login {source}: exit {proc.returncode}: {proc.stderr}")
